// `unclip bench --library`: the library at 100,000 images, with 128-wide and 1,024-wide (Karlo)
// embeddings. Rows are bulk-inserted straight into the schema (one shared tiny file: content
// addressing stores it once); each figure is the median of several runs after one warm-up.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Library } from '../library/library.ts';

const N = 100_000;
const WORDS = ['red', 'apple', 'cat', 'rocket', 'blue', 'ocean', 'tree', 'house', 'sun', 'guitar', 'smiling', 'dog'];
const TARGETS = { open: 200, page: 20, fts: 20, semantic128: 30, semantic1024: 100, insert: 5 };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
async function time(runs: number, fn: () => unknown): Promise<number> {
  await fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return median(out);
}

async function build(dir: string, dim: number): Promise<void> {
  const png = new Uint8Array(
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#888' } })
      .png()
      .toBuffer(),
  );
  const lib = Library.open(dir);
  const pack = { name: 'bench', sha256: 'b'.repeat(64) };
  const [first] = await lib.save([
    {
      kind: 'generated',
      prompt: 'seed row',
      settings: {},
      pack,
      width: 8,
      height: 8,
      bytes: png,
      embedding: { zi: new Float32Array(dim).fill(1) },
    },
  ]);
  const row = lib.db.prepare('SELECT * FROM images WHERE id = ?').get(first) as Record<string, unknown>;
  const img = lib.db
    .prepare(`INSERT INTO images (kind, prompt, settings, seed, pack_name, pack_sha256, width, height, file_sha256, file_bytes, mime, created_at, starred)
    VALUES (@kind, @prompt, '{}', @seed, 'bench', @pack, 8, 8, @sha, @bytes, 'image/png', @t, @starred)`);
  const emb = lib.db.prepare('INSERT INTO embeddings (image_id, pack_sha256, dim, z_i) VALUES (?, ?, ?, ?)');
  let s = 1;
  const rand = (): number => (s = (s * 1103515245 + 12345) >>> 0) / 4294967296;
  lib.db.transaction(() => {
    const v = new Float32Array(dim);
    for (let i = 1; i < N; i++) {
      const words = Array.from({ length: 5 }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ');
      const id = Number(
        img.run({
          kind: rand() < 0.8 ? 'generated' : 'variation',
          prompt: `${words} ${i}`,
          seed: i,
          pack: pack.sha256,
          sha: row.file_sha256,
          bytes: row.file_bytes,
          t: 1_700_000_000_000 + i * 1000,
          starred: rand() < 0.1 ? 1 : 0,
        }).lastInsertRowid,
      );
      for (let j = 0; j < dim; j++) v[j] = rand() - 0.5;
      emb.run(id, pack.sha256, dim, Buffer.from(v.buffer));
    }
  })();
  lib.close();
}

export async function benchLibrary(json: boolean): Promise<number> {
  const rows: {
    dim: number;
    open: number;
    page: number;
    fts: number;
    semantic: number;
    firstSemantic: number;
    insert: number;
    heapMiB: number;
    rssMiB: number;
  }[] = [];
  const png = new Uint8Array(
    await sharp({ create: { width: 64, height: 64, channels: 3, background: '#c33' } })
      .png()
      .toBuffer(),
  );
  for (const dim of [128, 1024]) {
    const dir = mkdtempSync(join(tmpdir(), `unclip-bench-library-${dim}-`));
    try {
      await build(dir, dim);
      const open = await time(5, () => Library.open(dir).close());
      const lib = Library.open(dir);
      const page = await time(9, () => lib.list({ kinds: ['generated'], starred: false, sort: 'oldest', limit: 200 }));
      const fts = await time(9, () => lib.list({ text: 'apple rocket', limit: 200 }));
      const q = Float32Array.from({ length: dim }, (_, i) => Math.sin(i));
      const heap0 = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
      let t = performance.now();
      lib.similar(q, 'b'.repeat(64), 50);
      const firstSemantic = performance.now() - t;
      const heapMiB = (process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers - heap0) / 2 ** 20;
      const semantic = await time(9, () => lib.similar(q, 'b'.repeat(64), 50, { kinds: ['generated'] }));
      const pack = { name: 'bench', sha256: 'b'.repeat(64) };
      let k = 0;
      const insert = await time(9, () => {
        t = performance.now();
        // distinct bytes each time (a new file), as a real save
        const bytes = png.slice();
        bytes[bytes.length - 20] = k++ & 0xff;
        return lib
          .save([
            {
              kind: 'generated',
              prompt: `insert ${k}`,
              settings: {},
              pack,
              width: 64,
              height: 64,
              bytes,
              embedding: { zi: q },
            },
          ])
          .catch(() => undefined);
      });
      rows.push({
        dim,
        open,
        page,
        fts,
        semantic,
        firstSemantic,
        insert,
        heapMiB,
        rssMiB: process.memoryUsage().rss / 2 ** 20,
      });
      lib.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (json) {
    console.log(JSON.stringify({ images: N, targets: TARGETS, rows }, null, 2));
    return 0;
  }
  const mark = (v: number, target: number): string =>
    `${v.toFixed(1).padStart(7)} ms ${v <= target ? 'PASS' : 'MISS'} (≤ ${target})`;
  console.log(`library bench: ${N.toLocaleString('en')} images, medians of 5–9 runs after a warm-up`);
  for (const r of rows) {
    console.log(`\nembeddings ${r.dim} wide`);
    console.log(`  open                          ${mark(r.open, TARGETS.open)}`);
    console.log(`  page of 200 (filter + sort)   ${mark(r.page, TARGETS.page)}`);
    console.log(`  full-text search              ${mark(r.fts, TARGETS.fts)}`);
    console.log(
      `  semantic top-50               ${mark(r.semantic, r.dim === 128 ? TARGETS.semantic128 : TARGETS.semantic1024)}  (first query, loading the index: ${r.firstSemantic.toFixed(0)} ms)`,
    );
    console.log(`  insert one image (+ thumbnail, fsyncs) ${mark(r.insert, TARGETS.insert)}`);
    console.log(`  index memory ${r.heapMiB.toFixed(0)} MiB, process RSS ${r.rssMiB.toFixed(0)} MiB`);
  }
  return 0;
}

// `unclip bench --library`: the library at 100,000 images, with 128-wide and 1,024-wide (Karlo) CLIP
// embeddings, against its targets. The libraries are built once (rows bulk-inserted into the schema
// in big transactions, every row sharing one tiny file: content addressing stores it once) and kept
// in the temp folder for the next run. Every figure is the median of several warm runs after one
// warm-up; the first semantic query, which loads the index from SQLite, is timed apart.

import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import sharp from 'sharp';
import { Library, THUMB_SIZE, type ListQuery, type NewImage } from '../library/library.ts';
import { SCHEMA_VERSION } from '../library/migrations.ts';
import { mulberry32 } from '../engine/rng.ts';

const N = 100_000;
/** Bump when the synthetic data changes, so cached libraries are rebuilt. */
const DATA_VERSION = 1;
const PACK = { name: 'bench', sha256: 'b'.repeat(64) };
const TRASHED = 0.02;
const STARRED = 0.1;

// Prompts from about a hundred words: two of them together match about a hundred rows; "photo" is in
// 1 prompt in 12, and "a" (as a prefix: a, an, at, …) and "of" in every one, the common-word cases.
const ADJ =
  'red blue green golden silver tiny giant ancient futuristic cozy misty neon wooden glass paper furry shiny dark bright pastel rusty frozen floating sleepy happy angry royal wild quiet broken'.split(
    ' ',
  );
const SUBJ =
  'fox cat dog owl rocket castle lighthouse robot dragon whale tree house city forest mountain river bicycle guitar teapot astronaut knight wizard tiger panda octopus sunflower mushroom train ship balloon lantern clock'.split(
    ' ',
  );
const PLACE =
  'in the snow|on the moon|under the sea|in a library|at sunset|in the rain|on a beach|in space|in a garden|on a rooftop|in the desert|at night|in a forest|in a cafe|on mars'.split(
    '|',
  );
const STYLE =
  'a photo|an oil painting|a watercolor|digital art|pixel art|a pencil sketch|3d render|an illustration|a cartoon|a woodcut|an emoji|a poster'.split(
    '|',
  );

/** CLIP-like vectors: around sqrt(N) random centres, within-cluster cosine about 0.8. */
function embeddings(dim: number, rand: () => number): () => Float32Array {
  const uniform = (v: Float32Array, scale: number): Float32Array => v.map(() => scale * (rand() * 2 - 1));
  const centres = Array.from({ length: Math.round(Math.sqrt(N)) }, () => uniform(new Float32Array(dim), 1));
  return () => {
    const c = centres[Math.floor(rand() * centres.length)]!;
    const v = uniform(new Float32Array(dim), 0.5);
    for (let j = 0; j < dim; j++) v[j]! += c[j]!;
    return v;
  };
}

async function png(w: number, h: number, colour: { r: number; g: number; b: number }): Promise<Uint8Array> {
  return new Uint8Array(
    await sharp({ create: { width: w, height: h, channels: 3, background: colour } })
      .png()
      .toBuffer(),
  );
}

/**
 * The library of `dim`-wide embeddings, built on the first run (buildMs: null when it was cached). Also
 * the 100,000 images of `unclip bench --studio`'s gallery.
 */
export async function syntheticLibrary(dim: number): Promise<{ dir: string; buildMs: number | null }> {
  const dir = join(tmpdir(), 'unclip-bench-library', `s${SCHEMA_VERSION}-d${DATA_VERSION}-n${N}-w${dim}`);
  const done = join(dir, 'built');
  if (existsSync(done)) return { dir, buildMs: null };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const lib = Library.open(dir);
  try {
    const [first] = await lib.save([
      {
        kind: 'generated',
        prompt: 'a photo of a fox',
        settings: {},
        pack: PACK,
        width: 8,
        height: 8,
        bytes: await png(8, 8, { r: 9, g: 9, b: 9 }),
      },
    ]);
    const file = lib.get(first!);
    const rand = mulberry32(dim);
    const vector = embeddings(dim, rand);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const image = lib.db.prepare(`INSERT INTO images (kind, prompt, settings, seed, pack_name, pack_sha256, width,
      height, file_sha256, file_bytes, mime, created_at, starred, trashed_at)
      VALUES (?, ?, '{"steps":25}', ?, ?, ?, 256, 256, ?, ?, 'image/png', ?, ?, ?)`);
    const embedding = lib.db.prepare('INSERT INTO embeddings (image_id, pack_sha256, dim, z_i) VALUES (?, ?, ?, ?)');
    const start = Date.now() - N * 60_000;
    for (let from = 1; from < N; from += 20_000)
      lib.db.transaction(() => {
        for (let i = from; i < Math.min(from + 20_000, N); i++) {
          const prompt = `${pick(STYLE)} of a ${pick(ADJ)} ${pick(SUBJ)} ${pick(PLACE)}`;
          const kind = rand() < 0.7 ? 'generated' : pick(['variation', 'interpolation', 'textdiff', 'import']);
          const at = start + i * 60_000;
          const id = image.run(
            kind,
            prompt,
            i,
            PACK.name,
            PACK.sha256,
            file.sha256,
            file.bytes,
            at,
            rand() < STARRED ? 1 : 0,
            rand() < TRASHED ? at + 1000 : null,
          ).lastInsertRowid;
          const v = vector();
          embedding.run(id, PACK.sha256, dim, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
        }
      })();
    lib.db.pragma('wal_checkpoint(TRUNCATE)');
    lib.db.exec('ANALYZE');
  } finally {
    lib.close();
  }
  writeFileSync(done, '');
  return { dir, buildMs: performance.now() - t0 };
}

/** Median of `runs` timed calls, after one untimed warm-up call. */
async function median(runs: number, fn: (i: number) => unknown): Promise<number> {
  await fn(-1);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn(i);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(runs / 2)]!;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const mib = (bytes: number): number => bytes / 2 ** 20;

interface Measure {
  what: string;
  ms: number;
  target: number | null;
  runs: number;
}

async function benchOne(
  dim: number,
  log: (line: string) => void,
): Promise<{ measures: Measure[]; memory: Record<string, number>; buildMs: number | null; dir: string }> {
  const { dir, buildMs } = await syntheticLibrary(dim);
  if (buildMs !== null) log(`built ${dir} in ${(buildMs / 1000).toFixed(1)} s`);
  const measures: Measure[] = [];
  const add = (what: string, target: number | null, runs: number, ms: number): void =>
    void measures.push({ what, ms, target, runs });
  add('open', 200, 9, await median(9, () => Library.open(dir).close()));
  const lib = Library.open(dir);
  try {
    const pageRuns = 21;
    add(
      'page of 200: kind filter, oldest first',
      20,
      pageRuns,
      await median(pageRuns, () => lib.list({ kinds: ['generated'], sort: 'oldest', limit: 200 })),
    );
    const first = lib.list({ starred: true, limit: 200 });
    const third = lib.list({ starred: true, limit: 200, cursor: first.nextCursor }).nextCursor;
    add(
      'page of 200: starred, newest first, 3rd page by cursor',
      20,
      pageRuns,
      await median(pageRuns, () => lib.list({ starred: true, limit: 200, cursor: third })),
    );
    const words = ['golden owl', 'neon robot', 'misty lighthouse', 'frozen whale', 'pixel cat'];
    add(
      'full-text search, two words',
      20,
      pageRuns,
      await median(pageRuns, (i) => lib.list({ text: words[(i + words.length) % words.length], limit: 200 })),
    );
    for (const [what, text] of [
      ['a common word ("photo", 1 prompt in 12)', 'photo'],
      ['"a photo of" ("a" and "of" are in every prompt)', 'a photo of'],
    ])
      add(`full-text search, ${what}`, 20, pageRuns, await median(pageRuns, () => lib.list({ text, limit: 200 })));

    const queries = Array.from({ length: 8 }, (_, k) => lib.latents(1 + Math.floor(((k + 1) * N) / 9)).zi);
    gc();
    const before = process.memoryUsage();
    const t0 = performance.now();
    lib.similar(queries[0]!, PACK.sha256, 50);
    add('first semantic query (loads the index)', null, 1, performance.now() - t0);
    gc();
    const after = process.memoryUsage();
    const semanticRuns = 21;
    add(
      `semantic top-50 (similar), exact`,
      dim <= 128 ? 30 : 100,
      semanticRuns,
      await median(semanticRuns, (i) => lib.similar(queries[(i + 8) % 8]!, PACK.sha256, 50)),
    );
    // Filters that pass few rows: similar() widens its candidate set round by round.
    const board = lib.createBoard(`bench ${Date.now()}`);
    lib.addToBoard(
      board.id,
      Array.from({ length: 30 }, (_, i) => 1 + i * 3_331),
    );
    const filters: [string, ListQuery, number][] = [
      ['kind filter (variations, 1 row in 13)', { kinds: ['variation'] }, semanticRuns],
      ['starred imports (1 row in 130)', { kinds: ['import'], starred: true }, 5],
      ['within a board of 30', { boardId: board.id }, 5],
    ];
    for (const [what, filter, runs] of filters)
      add(
        `semantic top-50, ${what}`,
        dim <= 128 ? 30 : 100,
        runs,
        await median(runs, (i) => lib.similar(queries[(i + 8) % 8]!, PACK.sha256, 50, filter)),
      );
    lib.deleteBoard(board.id);

    // One image's rows: save() of a file the library already has (no file written) with a thumbnail
    // of an 8×8 picture, minus that thumbnail; then a save end to end of a new 256×256 picture.
    const saveRuns = 15;
    const tiny = await png(8, 8, { r: 9, g: 9, b: 9 });
    const thumb = (bytes: Uint8Array): Promise<Buffer> =>
      sharp(bytes)
        .resize(THUMB_SIZE, THUMB_SIZE, { fit: 'inside', withoutEnlargement: true })
        .webp({ quality: 82 })
        .toBuffer();
    const item = (bytes: Uint8Array, size: number, i: number): NewImage => ({
      kind: 'generated',
      prompt: `a photo of a bench ${i}`,
      settings: { steps: 25 },
      seed: i,
      pack: PACK,
      width: size,
      height: size,
      bytes,
      embedding: { zi: queries[(i + 8) % 8]! },
    });
    const tinyThumb = await median(saveRuns, () => thumb(tiny));
    const rowsSave = await median(saveRuns, (i) => lib.save([item(tiny, 8, i)]));
    add("insert one image's rows (save(), file already stored, less its thumbnail)", 5, saveRuns, rowsSave - tinyThumb);
    const fresh = await Promise.all(
      Array.from({ length: saveRuns + 1 }, (_, i) => png(256, 256, { r: i, g: 255 - i, b: 77 })),
    );
    add('  its thumbnail of an 8×8 picture', null, saveRuns, tinyThumb);
    add(
      'save() of a new 256×256 PNG: thumbnail, 2 fsynced files, rows',
      null,
      saveRuns,
      await median(saveRuns, (i) => lib.save([item(fresh[i + 1]!, 256, i)])),
    );
    add('  its thumbnail alone', null, saveRuns, await median(saveRuns, (i) => thumb(fresh[i + 1]!)));
    // Leave the cached library as it was built: its rows are ids 1..N.
    const added = lib.db.prepare('SELECT DISTINCT file_sha256 AS sha FROM images WHERE id > ?').all(N) as {
      sha: string;
    }[];
    lib.db.prepare('DELETE FROM images WHERE id > ?').run(N);
    for (const { sha } of added)
      if (lib.hasFile(sha) === null)
        for (const path of [lib.files.pathOf(sha, 'png'), lib.files.thumbPathOf(sha)]) lib.files.remove(path);
    return {
      measures,
      dir,
      buildMs,
      memory: {
        indexHeapMiB: mib(after.heapUsed - before.heapUsed),
        indexBuffersMiB: mib(after.arrayBuffers - before.arrayBuffers),
        indexRssMiB: mib(after.rss - before.rss),
        rssMiB: mib(process.memoryUsage().rss),
      },
    };
  } finally {
    lib.close();
  }
}

export async function benchLibrary(json: boolean): Promise<number> {
  const log = (line: string): void => void (json ? console.error(line) : console.log(line));
  const results = [];
  for (const dim of [128, 1024]) results.push({ dim, ...(await benchOne(dim, log)) });
  if (json) {
    console.log(JSON.stringify({ images: N, results }, null, 2));
    return 0;
  }
  console.log(
    `library bench: ${N.toLocaleString('en')} images (${TRASHED * 100}% in the trash, ${STARRED * 100}% starred), medians of the runs shown after a warm-up`,
  );
  for (const r of results) {
    console.log(`\n${r.dim}-wide embeddings (${r.dir})`);
    console.log(`  ${'operation'.padEnd(74)} ${'target'.padStart(8)} ${'measured'.padStart(10)}  runs`);
    for (const m of r.measures)
      console.log(
        `  ${m.what.padEnd(74)} ${(m.target === null ? '' : `≤ ${m.target} ms`).padStart(8)} ${`${m.ms.toFixed(2)} ms`.padStart(10)}  ${String(m.runs).padStart(4)}  ${m.target === null ? '' : m.ms <= m.target ? 'PASS' : 'MISS'}`,
      );
    const mem = r.memory;
    console.log(
      `  loaded index: heap +${mem.indexHeapMiB!.toFixed(1)} MiB, array buffers (its rows) +${mem.indexBuffersMiB!.toFixed(1)} MiB, RSS +${mem.indexRssMiB!.toFixed(1)} MiB; process RSS ${mem.rssMiB!.toFixed(0)} MiB`,
    );
  }
  return 0;
}

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generate } from '../../../main/engine/pipeline.ts';
import { Pack } from '../../../main/engine/pack.ts';
import { decodeImage } from '../../../main/engine/image.ts';

// Issue 18 in CI: the Karlo-shaped builder at widths ×0.1 with the real layer structure (CLIP 12/24 layers, prior
// 20 layers, 4-level decoder and super-resolution UNets, 64 px → 256 px), exported with forced external data,
// loaded by the engine with every session kept and in low-memory mode, one image with 2 steps per stage.
const root = fileURLToPath(new URL('../../..', import.meta.url));
const python = join(root, 'models', '.venv', 'bin', 'python');
const skip = existsSync(python) ? false : 'models/.venv missing (npm run models:setup)';
const dir = mkdtempSync(join(tmpdir(), 'unclip-karlo-reduced-'));
const packDir = join(dir, 'pack');
after(() => rmSync(dir, { recursive: true, force: true }));

const REQUEST = {
  prompt: 'a red rocket',
  settings: { n: 1, seed: 7, stepsPrior: 2, stepsDecoder: 2, stepsSuperRes: 2 },
};

before(() => {
  if (skip) return;
  const run = (args: string[]) => {
    const r = spawnSync(python, args, { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  run(['-m', 'unclip_toolchain.karlo', 'build', '--out', dir, '--width-scale', '0.1', '--seed', '0']);
  run([
    '-m',
    'unclip_toolchain.export',
    '--pipeline',
    join(dir, 'karlo-v1-alpha'),
    '--image-variation',
    join(dir, 'karlo-v1-alpha-image-variations'),
    '--out',
    packDir,
    '--name',
    'karlo-v1-alpha',
    '--external-data',
    '--no-check',
  ]);
});

/** A copy of the pack (hard links would share truncation), changed by `edit`. */
function variant(name: string, edit: (d: string) => void): string {
  const d = join(dir, name);
  mkdirSync(d);
  for (const f of readdirSync(packDir)) copyFileSync(join(packDir, f), join(d, f));
  edit(d);
  return d;
}

async function loadError(d: string, options: Parameters<typeof Pack.load>[1] = {}): Promise<string> {
  try {
    const p = await Pack.load(d, options);
    await p.release();
  } catch (e) {
    return (e as Error).message;
  }
  return 'loaded';
}

test(
  'reduced Karlo pack: every graph has external data; one image end to end, all sessions vs low-memory mode',
  { skip, timeout: 600_000 },
  async () => {
    const manifest = JSON.parse(readFileSync(join(packDir, 'manifest.json'), 'utf8'));
    assert.equal(Object.keys(manifest.components).length, 7);
    for (const [role, c] of Object.entries<{ external_data?: string[] }>(manifest.components)) {
      assert.deepEqual(c.external_data, [`${role}.onnx.data`]);
    }
    const pngs: Buffer[] = [];
    for (const memory of ['all', 'low'] as const) {
      const notes: string[] = [];
      const pack = await Pack.load(packDir, { memory, threads: 2, warn: (m) => notes.push(m) });
      try {
        const out = await generate(pack, REQUEST);
        const img = out.images[0]!;
        assert.deepEqual([img.width, img.height], [256, 256]);
        const px = await decodeImage(img.png);
        assert.deepEqual([px.width, px.height], [256, 256]);
        pngs.push(Buffer.from(img.png));
        const stats = pack.memoryStats();
        assert.equal(stats.mode, memory);
        if (memory === 'low') {
          assert.match(notes.join('\n'), /low-memory mode/);
          // text encoder, prior, text_proj, decoder, super_res_first, super_res_last: each opened at least once,
          // never more than the budget open at a time
          assert.ok(stats.opens >= 6 && stats.closes >= 1, JSON.stringify(stats));
          assert.ok(stats.openBytes <= stats.budgetBytes);
        }
      } finally {
        await pack.release();
      }
    }
    assert.deepEqual(pngs[0], pngs[1], 'low-memory mode computes the same image');
  },
);

test(
  'memory: auto picks low-memory mode on a small machine and says so; too small a machine is refused with the numbers',
  { skip },
  async () => {
    const notes: string[] = [];
    const pack = await Pack.load(packDir, { machineBytes: 2.2e9, verify: false, warn: (m) => notes.push(m) });
    assert.equal(pack.memoryStats().mode, 'low');
    assert.equal(notes.length, 1);
    assert.match(notes[0]!, /^low-memory mode: the pack needs about [\d.]+ GB .* this machine has 2\.2 GB/);
    await pack.release();
    const big = await Pack.load(packDir, { verify: false });
    assert.equal(big.memoryStats().mode, 'all');
    await big.release();
    const err = await loadError(packDir, { machineBytes: 1e9, verify: false });
    assert.match(
      err,
      /needs about [\d.]+ GB of memory for its largest network \([\d.]+ GB for all of them\), this machine has 1\.0 GB/,
    );
    assert.ok(!err.includes('\n'));
  },
);

test(
  'bad packs: missing or truncated external data, files outside the folder → one line naming the file',
  { skip },
  async () => {
    const missing = variant('missing', (d) => rmSync(join(d, 'prior.onnx.data')));
    let err = await loadError(missing);
    assert.equal(err, `${join(missing, 'prior.onnx.data')}: missing (listed in manifest.json files)`);

    const truncated = variant('truncated', (d) => truncateSync(join(d, 'decoder.onnx.data'), 100_000));
    err = await loadError(truncated);
    assert.match(
      err,
      /decoder\.onnx\.data: sha256 does not match manifest\.json \(corrupt, truncated or modified file\)$/,
    );
    // without the sha256 check onnxruntime notices, and the error still names the data file
    err = await loadError(truncated, { verify: false });
    assert.ok(
      err.startsWith(`${join(truncated, 'decoder.onnx.data')}: truncated or unreadable: decoder.onnx needs more of it`),
      err,
    );
    assert.ok(!err.includes('\n'));

    const outside = variant('outside', (d) => {
      const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
      m.components.prior.external_data = ['../prior.onnx.data'];
      writeFileSync(join(d, 'manifest.json'), JSON.stringify(m));
    });
    err = await loadError(outside);
    assert.match(err, /manifest\.json: .*must be a plain file name in the pack folder/);

    const linked = variant('linked', (d) => {
      rmSync(join(d, 'text_proj.onnx.data'));
      symlinkSync(join(packDir, 'text_proj.onnx.data'), join(d, 'text_proj.onnx.data'));
    });
    err = await loadError(linked);
    assert.ok(err.startsWith(`${join(linked, 'text_proj.onnx.data')}: points outside the pack folder`), err);
  },
);

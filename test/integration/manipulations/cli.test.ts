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
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { decodeLatent, encodeLatent } from '../../../main/engine/manipulations/latent.ts';
import { hermeticEnv } from '../../cli-env.ts';

const BIN = fileURLToPath(new URL('../../../main/cli/bin.mjs', import.meta.url));
const IMAGES = fileURLToPath(new URL('../../fixtures/manip-images', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'unclip-manip-'));
after(() => rmSync(work, { recursive: true, force: true }));

function unclip(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 180_000,
    env: hermeticEnv(work, { UNCLIP_LIBRARY: join(work, 'default-library') }), // never the user's own library or settings
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const out = join(work, 'out');
const latent = join(out, 'noto-1f34e.latent.safetensors');

test('--no-save: invert → latent + reconstruction files; vary/textdiff/interpolate accept the latent; identity settings reproduce it', async () => {
  // --no-save: the direct path, files only (--out still writes them)
  const inv = unclip('invert', join(IMAGES, 'noto-1f34e.png'), '--steps', '4', '--out', out, '--no-save', '--json');
  assert.equal(inv.code, 0, inv.stderr);
  const j = JSON.parse(inv.stdout);
  assert.equal(j.latent, latent);
  assert.ok(existsSync(latent));
  assert.equal(typeof j.psnr, 'number');
  assert.deepEqual(j.inversion, { steps: 4, guidance: 1, refine: 2 });
  const recon = j.reconstruction;
  assert.equal(recon.file, join(out, 'noto-1f34e-reconstruction.png'));
  const meta = await sharp(recon.file).metadata();
  assert.deepEqual([meta.format, meta.width], ['png', recon.width]);

  // variation at η = 0 with seed 0 is the reconstruction, byte for byte
  const v = unclip('vary', latent, '--n', '2', '--eta', '0', '--out', out, '--json');
  assert.equal(v.code, 0, v.stderr);
  const vj = JSON.parse(v.stdout);
  assert.equal(vj.images[0].sha256, recon.sha256);
  assert.equal(vj.latent, latent);
  assert.equal(typeof vj.images[0].clipCosine, 'number');

  // text diff sweep: θ = 0 is the reconstruction; frames + GIF (3 pages) + strip
  const td = unclip(
    'textdiff',
    latent,
    '--from',
    'a red apple',
    '--to',
    'a green apple',
    '--frames',
    '3',
    '--max',
    '0.4',
    '--out',
    out,
    '--json',
  );
  assert.equal(td.code, 0, td.stderr);
  const tj = JSON.parse(td.stdout);
  assert.deepEqual(
    tj.frames.map((f: { theta: number }) => f.theta),
    [0, 0.2, 0.4],
  );
  assert.equal(tj.frames[0].sha256, recon.sha256);
  assert.notEqual(tj.frames[2].sha256, recon.sha256);
  const gif = await sharp(tj.gif, { pages: -1 }).metadata();
  assert.deepEqual([gif.format, gif.pages], ['gif', 3]);
  assert.equal((await sharp(tj.strip).metadata()).width, 3 * recon.width);

  // interpolation from the latent to a picture (inverted on the fly), nothing written with --no-save
  const before = readdirSync(out).length;
  const it = unclip(
    'interpolate',
    latent,
    join(IMAGES, 'drawing-sun.png'),
    '--frames',
    '2',
    '--steps',
    '4',
    '--no-save',
    '--json',
  );
  assert.equal(it.code, 0, it.stderr);
  const ij = JSON.parse(it.stdout);
  assert.equal(ij.frames[0].sha256, recon.sha256);
  assert.equal(ij.frames[0].file, null);
  assert.equal(ij.gif, null);
  assert.deepEqual(ij.latents, [latent, null]);
  assert.equal(readdirSync(out).length, before);
});

test('by default edits go through the library: pictures imported once, library ids as sources, lineage kept, --out writes the PNGs', () => {
  const lib = join(work, 'edit-library');
  const run = (...args: string[]) => {
    const r = unclip(...args, '--library', lib, '--steps', '4', '--json');
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const apple = join(IMAGES, 'noto-1f34e.png');
  const inv = run('invert', apple);
  const [src] = inv.sources;
  assert.equal(inv.library.saved, true);
  assert.ok(src.inverted && typeof src.psnr === 'number', JSON.stringify(src));
  // The same picture again is the same library image (found by its sha256), already inverted.
  const varyOut = join(work, 'vary-out');
  const v = run('vary', apple, '--n', '2', '--eta', '0.5', '--out', varyOut);
  assert.equal(v.sources[0].id, src.id);
  assert.equal(v.images.length, 2);
  assert.ok(v.images.every((i: { kind: string; file: string }) => i.kind === 'variation' && existsSync(i.file)));
  assert.deepEqual(
    readdirSync(varyOut).sort(),
    v.images.map((i: { seed: number }) => `noto-1f34e-variation-${i.seed}.png`).sort(),
  );
  // A library id as the source (with and without #), a picture imported on the way, the sweep files.
  const itOut = join(work, 'interp-out');
  const it = run('interpolate', `#${v.images[0].id}`, join(IMAGES, 'drawing-sun.png'), '--frames', '3', '--out', itOut);
  assert.equal(it.images.length, 3);
  assert.ok(it.sources[1].id > v.images[1].id);
  assert.ok(existsSync(it.gif) && existsSync(it.strip));
  const td = run('textdiff', String(src.id), '--from', 'a red apple', '--to', 'a green apple', '--theta', '0.4');
  assert.equal(td.images.length, 1);
  assert.equal(td.images[0].file, null);
  // The gallery shows the lineage.
  const show = unclip('gallery', 'show', String(it.images[1].id), '--library', lib, '--json');
  assert.equal(show.code, 0, show.stderr);
  const detail = JSON.parse(show.stdout);
  assert.deepEqual(
    detail.parents.map((p: { id: number }) => p.id).sort((a: number, b: number) => a - b),
    [v.images[0].id, it.sources[1].id],
  );
  const list = unclip('gallery', 'list', '--library', lib, '--json');
  const kinds = JSON.parse(list.stdout).items.map((i: { kind: string }) => i.kind);
  assert.deepEqual(kinds.sort(), [
    'import',
    'import',
    'interpolation',
    'interpolation',
    'interpolation',
    'textdiff',
    'variation',
    'variation',
  ]);
});

test('library sources: unknown ids, --no-save with an id, latent files beside ids → one line, exit 2', () => {
  const lib = join(work, 'edit-library-bad');
  const bad = (args: string[], pattern: RegExp) => {
    const r = unclip(...args, '--library', lib);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  };
  bad(['vary', '#999'], /no such image: 999/);
  bad(['vary', '#3', '--no-save'], /#3: a library image is edited in the library; drop --no-save/);
  bad(['interpolate', '#3', latent], /a latent file cannot be edited in the library beside library images/);
  bad(['vary', '#0'], /#0: library ids start at 1/);
  bad(['textdiff', '#1', '--to', 'a dog', '--caption', 'a cat'], /--caption: only with --no-save/);
});

test('bad input: one line on stderr, exit code 2', () => {
  const bad = (args: string[], pattern: RegExp) => {
    const r = unclip(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  };
  const notes = join(work, 'notes.png');
  writeFileSync(notes, 'not a picture');
  bad(['invert', notes, '--out', work], /notes.png: not a picture format this app reads; convert it to PNG/);
  bad(['invert', join(work, 'missing.png')], /picture: cannot read .*missing.png \(ENOENT\)/);
  bad(
    ['textdiff', latent, '--from', 'a cat', '--to', 'a cat'],
    /--to: is the same as --from, so the text diff is undefined/,
  );
  bad(
    ['textdiff', latent, '--from', 'a cat', '--to', 'a dog', '--theta', '1.5'],
    /--theta: must be a number in \[0, 1\]/,
  );
  bad(['interpolate', latent, latent, '--frames', '65'], /--frames: must be an integer in \[2, 64\]/);
  bad(['vary', latent, '--eta', '2'], /--eta: must be a number in \[0, 1\]/);
  bad(['invert', notes, '--refine', '9'], /--refine: must be an integer in \[0, 8\]/);
  const foreign = decodeLatent(readFileSync(latent));
  foreign.pack = { name: 'some-other-pack', fingerprint: 'f'.repeat(64) };
  const foreignFile = join(work, 'foreign.latent.safetensors');
  writeFileSync(foreignFile, encodeLatent(foreign));
  bad(
    ['vary', foreignFile, '--n', '1'],
    /foreign.latent.safetensors: saved by pack "some-other-pack" .*; invert the picture again with this pack/,
  );
  // negative numbers reach the range checks; the GIF delay is checked up front, as interpolate checks it
  bad(['vary', latent, '--n', '-1'], /--n: must be an integer in \[1, 64\] \(got -1\)/);
  bad(['invert', notes, '--seed', '-5'], /--seed: must be an integer in \[0, 4294967295\]/);
  const tdOut = join(work, 'td-out');
  for (const d of ['-5', '1e12', '1.5', '0'])
    bad(
      ['textdiff', latent, '--to', 'a dog', '--frames', '2', '--delay', d, '--out', tdOut],
      new RegExp(`--delay: must be an integer in \\[10, 10000\\] ms \\(got ${d.replace('.', '\\.')}\\)`),
    );
  bad(['interpolate', latent, latent, '--delay', '0'], /--delay: must be an integer in \[10, 10000\] ms/);
  assert.ok(!existsSync(tdOut));
});

/** `latent`'s file with its safetensors header edited by `edit`. */
function edited(edit: (header: Record<string, { data_offsets?: number[] } | null>) => void): Uint8Array {
  const bytes = readFileSync(latent);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
  edit(header);
  const head = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  return Buffer.concat([len, head, bytes.subarray(8 + n)]);
}

test('bad inputs leave nothing behind: every input is read and checked before anything is computed or written', () => {
  const dir = join(work, 'pair');
  mkdirSync(dir);
  copyFileSync(join(IMAGES, 'drawing-sun.png'), join(dir, 'good.png'));
  writeFileSync(join(dir, 'zero.png'), '');
  const nullMeta = join(dir, 'null.latent.safetensors');
  writeFileSync(
    nullMeta,
    edited((h) => (h.__metadata__ = null)),
  );
  const negative = join(dir, 'negative.latent.safetensors');
  writeFileSync(
    negative,
    edited((h) => (h.z_i!.data_offsets = [-64, 0])),
  );
  const cases: [string[], RegExp][] = [
    [['interpolate', join(dir, 'good.png'), join(dir, 'zero.png')], /zero.png: the file is empty \(0 bytes\)/],
    [
      ['interpolate', join(dir, 'good.png'), nullMeta],
      /null.latent.safetensors: not an unCLIP latent file \(__metadata__: must be an object of strings\)/,
    ],
    [
      ['vary', negative],
      /negative.latent.safetensors: not an unCLIP latent file \(tensor "z_i" data_offsets\[0\]: must be a non-negative integer\)/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = unclip(...args, '--steps', '4', '--out', dir);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, message);
  }
  assert.deepEqual(readdirSync(dir).sort(), [
    'good.png',
    'negative.latent.safetensors',
    'null.latent.safetensors',
    'zero.png',
  ]);
});

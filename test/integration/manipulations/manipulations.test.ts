// Identity settings of every manipulation reproduce the η = 0 reconstruction bit for bit (CPU), variations at
// η = 1 move in pixels and are reproducible per seed, and latents round-trip through their file. On the
// default pack, with few DDIM steps (the PSNR and η = 1 bars at 50 steps are in committed-set.test.ts).
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  interpolate,
  invert,
  loadLatent,
  reconstruct,
  saveLatent,
  textDiff,
  vary,
  VARIATION_GUIDED_SHARE,
  type Frame,
  type InvertResult,
} from '../../../main/engine/manipulations/index.ts';
import { Pack } from '../../../main/engine/pack.ts';
import { defaultPackDir, REPO_ROOT } from '../../../main/engine/packs.ts';

const IMAGES = join(REPO_ROOT, 'test', 'fixtures', 'manip-images');
const STEPS = 6;
let pack: Pack;
let a: InvertResult;
let b: InvertResult;
/** Three η = 1 variations of `a` (seeds 7–9). */
let etaOne: Frame[];
const same = (x: Float32Array, y: Float32Array): boolean => Buffer.from(x.buffer).equals(Buffer.from(y.buffer));

before(async () => {
  pack = await Pack.load(defaultPackDir(), { threads: 2 });
  a = await invert(pack, readFileSync(join(IMAGES, 'noto-1f600.png')), { steps: STEPS, name: 'noto-1f600.png' });
  b = await invert(pack, readFileSync(join(IMAGES, 'drawing-house.png')), { steps: STEPS, caption: 'a house' });
  etaOne = await vary(pack, a.latent, { n: 3, eta: 1, seed: 7 });
});
after(async () => pack.release());

test('invert: a latent of the pack, a finite PSNR; the η = 0 regeneration is deterministic', async () => {
  const m = pack.manifest;
  assert.equal(a.latent.zi.length, m.embedding_dim);
  assert.equal(a.latent.xT.length, 3 * m.resolution.decoder ** 2);
  assert.deepEqual(a.latent.inversion, { steps: STEPS, guidance: 1, refine: 2 });
  assert.ok(Number.isFinite(a.latent.psnr) && a.latent.psnr > 0);
  assert.equal(a.latent.zt, undefined);
  assert.equal(b.latent.caption, 'a house');
  assert.equal(b.latent.zt?.length, m.embedding_dim);
  assert.equal(a.reconstruction.size, m.resolution.output);
  const again = await reconstruct(pack, a.latent);
  assert.ok(same(again.decoder, a.reconstruction.decoder));
  assert.deepEqual(Buffer.from(again.png), Buffer.from(a.reconstruction.png));
});

test('identity settings reproduce the reconstruction bit for bit: variation η = 0, text diff θ = 0, interpolation ends', async () => {
  const [v0] = await vary(pack, a.latent, { n: 1, eta: 0 });
  assert.ok(same(v0!.decoder, a.reconstruction.decoder), 'variation at η = 0');
  assert.deepEqual(Buffer.from(v0!.png), Buffer.from(a.reconstruction.png)); // seed 0: same super-resolution noise
  const td = await textDiff(pack, a.latent, { from: 'a smiling face', to: 'a crying face', thetas: [0, 0.5] });
  assert.ok(same(td.frames[0]!.decoder, a.reconstruction.decoder), 'text diff at θ = 0');
  assert.ok(!same(td.frames[1]!.decoder, a.reconstruction.decoder), 'text diff at θ = 0.5 changes the picture');
  const it = await interpolate(pack, a.latent, b.latent, { frames: 3 });
  assert.deepEqual(it.ts, [0, 0.5, 1]);
  assert.ok(same(it.frames[0]!.decoder, a.reconstruction.decoder), 'interpolation start');
  assert.ok(same(it.frames[2]!.decoder, b.reconstruction.decoder), 'interpolation end');
  assert.ok(
    !same(it.frames[1]!.decoder, a.reconstruction.decoder) && !same(it.frames[1]!.decoder, b.reconstruction.decoder),
  );
  // x_T fixed to the first picture's: the start still reproduces it
  const fixed = await interpolate(pack, a.latent, b.latent, { frames: 2, noise: 'a' });
  assert.ok(same(fixed.frames[0]!.decoder, a.reconstruction.decoder));
});

test('variations at η = 1 differ in pixels and are reproducible per seed; fresh noise differs', async () => {
  const vs = etaOne;
  assert.deepEqual(
    vs.map((v) => v.seed),
    [7, 8, 9],
  );
  for (const v of vs) assert.ok(!same(v.decoder, a.reconstruction.decoder));
  const [alone] = await vary(pack, a.latent, { n: 1, eta: 1, seed: 8 });
  assert.deepEqual(Buffer.from(alone!.png), Buffer.from(vs[1]!.png));
  const [fresh] = await vary(pack, a.latent, { n: 1, eta: 0, fresh: true, seed: 7 });
  assert.ok(!same(fresh!.decoder, a.reconstruction.decoder));
});

test('guidance on a share of the steps: none of them is the unguided variation; the default share is the default', async () => {
  const o = { n: 1, eta: 1, seed: 8 };
  const [dflt] = await vary(pack, a.latent, { ...o, guidedShare: VARIATION_GUIDED_SHARE });
  assert.ok(same(dflt!.decoder, etaOne[1]!.decoder));
  const [none] = await vary(pack, a.latent, { ...o, guidedShare: 0 });
  const [unguided] = await vary(pack, a.latent, { ...o, guidance: 1 });
  assert.ok(same(none!.decoder, unguided!.decoder));
  const [all] = await vary(pack, a.latent, { ...o, guidedShare: 1 });
  const [part] = await vary(pack, a.latent, { ...o, guidedShare: 0.5 });
  assert.ok(
    !same(all!.decoder, none!.decoder) && !same(part!.decoder, all!.decoder) && !same(part!.decoder, none!.decoder),
  );
});

test('a saved latent is accepted back; one saved by another pack is refused with one line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'manip-'));
  const file = join(dir, 'noto-1f600.latent.safetensors');
  await saveLatent(file, a.latent);
  const back = await loadLatent(file);
  const frame = await reconstruct(pack, back);
  assert.ok(same(frame.decoder, a.reconstruction.decoder));
  const foreign = { ...back, pack: { name: 'emoji-other', fingerprint: '0'.repeat(64) } };
  await assert.rejects(
    reconstruct(pack, foreign),
    /^InputError: latent: saved by pack "emoji-other" \(manifest 000000000000\), not the loaded pack ".*" \([0-9a-f]{12}\); invert the picture again with this pack$/,
  );
});

test('bad manipulation settings fail with one line naming the setting', async () => {
  await assert.rejects(
    textDiff(pack, a.latent, { from: 'a cat', to: 'a cat', thetas: [0.3] }),
    /to: gives the same text embedding as --from/,
  );
  await assert.rejects(textDiff(pack, a.latent, { to: 'a cat', thetas: [0.3] }), /from: the latent has no caption/);
  await assert.rejects(
    textDiff(pack, b.latent, { to: 'a castle', thetas: [1.5] }),
    /^InputError: theta: must be a number in \[0, 1\] \(got 1.5\)$/,
  );
  await assert.rejects(
    interpolate(pack, a.latent, b.latent, { frames: 65 }),
    /frames: must be an integer in \[2, 64\]/,
  );
  await assert.rejects(interpolate(pack, a.latent, b.latent, { frames: 1 }), /frames: must be an integer in \[2, 64\]/);
  await assert.rejects(vary(pack, a.latent, { eta: -0.1 }), /eta: must be a number in \[0, 1\]/);
  await assert.rejects(vary(pack, a.latent, { guidedShare: 1.5 }), /guidedShare: must be a number in \[0, 1\]/);
  await assert.rejects(invert(pack, new Uint8Array(0), { name: 'empty.png' }), /empty.png: the file is empty/);
  await assert.rejects(
    invert(pack, new Uint8Array(8), { refine: 9 }),
    /^InputError: refine: must be an integer in \[0, 8\] \(got 9\)$/,
  );
});

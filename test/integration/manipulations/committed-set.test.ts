// Quality bars of issue #6 on the committed pictures (test/fixtures/manip-images: emoji of three styles and
// drawings that are not emoji), on the default pack at the real default of 50 DDIM steps:
// - inversion then η = 0 regeneration reproduces each picture at PSNR ≥ 30 dB at decoder resolution (with the
//   default two fixed-point refinements on the noisiest fifth of the steps; plain DDIM inversion gives ≈ 21–35 dB);
// - an η = 1 variation keeps CLIP cosine ≥ 0.8 to its source.
//
// On the tiny random reference pack the bars cannot hold and the tests are marked TODO (they still run and print
// the figures): its decoder's ε is a random function, not a denoiser, so the inverse ODE is ill-conditioned —
// a mismatch of ε between x_{t−Δ} and x_t is amplified by 1/√ᾱ_t (≈ 30 at t = 980) and the forward pass
// drifts away from the inversion's trajectory (measured ≈ 6 dB). A trained pack is held to the bars.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { clipCosine, invert, MANIP_LIMITS, vary, type InvertResult } from '../../../main/engine/manipulations/index.ts';
import { Pack } from '../../../main/engine/pack.ts';
import { defaultPackDir, REPO_ROOT } from '../../../main/engine/packs.ts';

const IMAGES = join(REPO_ROOT, 'test', 'fixtures', 'manip-images');
const files = readdirSync(IMAGES)
  .filter((f) => f.endsWith('.png'))
  .sort();
let pack: Pack;
before(async () => {
  pack = await Pack.load(defaultPackDir(), { threads: 2 });
});
after(async () => pack.release());

/** The 50-step inversions of the PSNR test, reused by the variation test. */
const inverted: InvertResult[] = [];
const RANDOM_PACK = JSON.parse(readFileSync(join(defaultPackDir(), 'manifest.json'), 'utf8')).name === 'tiny-reference';

test(
  'inversion at 50 DDIM steps then η = 0 regeneration: PSNR ≥ 30 dB at decoder resolution on every committed picture',
  {
    todo: RANDOM_PACK
      ? 'the default pack is the random tiny-reference pack: inversion is ill-conditioned there'
      : false,
  },
  async (t) => {
    assert.ok(files.length >= 20, `${files.length} pictures`);
    assert.equal(MANIP_LIMITS.steps.default, 50);
    const psnrs: number[] = [];
    for (const f of files) {
      // default steps (50) and guidance (none); no super-resolution: the bar is at decoder resolution
      const r = await invert(pack, readFileSync(join(IMAGES, f)), { name: f, superRes: false });
      assert.equal(r.latent.inversion.steps, 50);
      assert.equal(r.latent.inversion.refine, MANIP_LIMITS.refine.default);
      psnrs.push(r.latent.psnr);
      inverted.push(r);
    }
    const min = Math.min(...psnrs);
    const mean = psnrs.reduce((s, v) => s + v, 0) / psnrs.length;
    t.diagnostic(
      `pack ${pack.manifest.name}: PSNR min ${min.toFixed(2)} dB, mean ${mean.toFixed(2)} dB over ${psnrs.length} pictures (${files
        .map((f, i) => `${f.replace('.png', '')} ${psnrs[i]!.toFixed(1)}`)
        .join(', ')})`,
    );
    assert.ok(min >= 30, `min PSNR ${min.toFixed(2)} dB < 30 dB`);
  },
);

// Measured on emoji-tiny (seeds 7–9 per picture, default guidance on the less noisy half of the steps): cosines
// from 0.804, median 0.925, 60/60 ≥ 0.8; at seed 7 (this test's) the drawings that are not emoji score 0.91–0.96.
test(
  'an η = 1 variation of every committed picture keeps CLIP cosine ≥ 0.8 to its source',
  { todo: RANDOM_PACK ? 'the default pack is the random tiny-reference pack' : false },
  async (t) => {
    assert.equal(inverted.length, files.length, 'runs after the PSNR test, on its inversions');
    const cosines: number[] = [];
    for (const r of inverted) {
      // default η (1), guidance (rising with η to the pack's) and super-resolution
      const [v] = await vary(pack, r.latent, { n: 1, seed: 7 });
      assert.ok(!Buffer.from(v!.decoder.buffer).equals(Buffer.from(r.reconstruction.decoder.buffer)));
      cosines.push(await clipCosine(pack, v!, r.latent.zi));
    }
    const sorted = [...cosines].sort((x, y) => x - y);
    t.diagnostic(
      `pack ${pack.manifest.name}: η = 1 cosine min ${sorted[0]!.toFixed(3)}, median ${sorted[sorted.length >> 1]!.toFixed(3)}, ` +
        `${cosines.filter((c) => c >= 0.8).length}/${cosines.length} ≥ 0.8 (${files.map((f, i) => `${f.replace('.png', '')} ${cosines[i]!.toFixed(2)}`).join(', ')})`,
    );
    for (const [i, c] of cosines.entries()) assert.ok(c >= 0.8, `${files[i]}: cosine ${c.toFixed(3)}`);
  },
);

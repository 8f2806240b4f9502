import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Pack } from '../../../main/engine/pack.ts';
import {
  loadFixture,
  PARITY_TOLERANCE,
  runParity,
  type CaseReport,
  type StageError,
} from '../../../main/engine/parity.ts';

// test/fixtures/tiny-fixture: diffusers' UnCLIPPipeline / UnCLIPImageVariationPipeline on the tiny pack's
// weights with all noise injected; we replay the same noise and compare every stage.
let pack: Pack;
let reports: CaseReport[];
let batched: CaseReport[];
before(async () => {
  const fixture = await loadFixture(new URL('../../fixtures/tiny-fixture/fixture.json', import.meta.url).pathname);
  pack = await Pack.load(fixture.packDir);
  reports = await runParity(pack, fixture);
  batched = await runParity(pack, fixture, 3); // GPU-style batching: chunks of 3 images (+ a chunk of 1)
});
after(async () => pack?.release());

for (const [name, mode] of [
  ['text2img', 'one image per call'],
  ['variation', 'one image per call'],
  ['text2img', 'batches of 3'],
]) {
  test(`${name} (${mode}): every stage within ${PARITY_TOLERANCE} max abs of diffusers, or twice its float64 floor`, () => {
    const r = (mode === 'batches of 3' ? batched : reports).find((x) => x.name === name);
    assert.ok(r, `fixture has a ${name} case`);
    assert.ok(r.tokensMatch, 'token ids equal transformers');
    const expected =
      name === 'text2img'
        ? [
            'text_embeds',
            'last_hidden_state',
            'prior (image_embeddings)',
            'text_proj',
            'decoder (decoder_image)',
            'upscaled',
            'image',
          ]
        : [
            'text_embeds',
            'last_hidden_state',
            'pixel_values',
            'image_encoder (image_embeddings)',
            'text_proj',
            'decoder (decoder_image)',
            'upscaled',
            'image',
          ];
    assert.ok(r.ok, 'the case passes');
    for (const stage of expected) {
      const s: StageError | undefined = r.stages.find((x) => x.stage === stage);
      assert.ok(s, `stage ${stage} compared`);
      // the committed fixture records the reference's float32-vs-float64 floor of every stage
      const floor: number = s.floor ?? -1;
      assert.ok(floor >= 0, `${stage}: floor recorded`);
      assert.equal(s.limit, Math.max(PARITY_TOLERANCE, 2 * floor));
      assert.ok(s.ok && s.maxAbsError <= s.limit, `${stage}: ${s.maxAbsError} (limit ${s.limit})`);
      // where the reference is well-conditioned its floor is float32 rounding, far inside the tolerance
      if (stage !== 'image') assert.ok(floor < 1e-4, `${stage}: floor ${floor}`);
      // Only a handful of ill-conditioned elements (x0 unclipped at t=999) may be set aside.
      assert.ok((s.excluded ?? 0) <= 8, `${stage}: ${s.excluded} elements excluded`);
    }
  });
}

test('a fixture without float64 floors (format 1 as first committed) is judged on the tolerance alone', async () => {
  const fixture = await loadFixture(new URL('../../fixtures/tiny-fixture/fixture.json', import.meta.url).pathname);
  const bare = { ...fixture, cases: fixture.cases.map(({ float64_discrepancy: _, ...c }) => c) };
  const [r] = await runParity(pack, { ...bare, cases: bare.cases.slice(0, 1) });
  assert.ok(r!.ok);
  for (const s of r!.stages) {
    assert.equal(s.floor, undefined);
    assert.equal(s.limit, PARITY_TOLERANCE);
  }
  // and a tolerance below an error fails that stage
  const [strict] = await runParity(pack, { ...bare, cases: bare.cases.slice(0, 1) }, 1, 1e-6);
  assert.ok(!strict!.ok && strict!.stages.some((s) => !s.ok && s.stage === 'image'));
});

// The autoregressive prior of the default pack (models/emoji-tiny): the engine's sampling loop against the
// PyTorch original on the same injected uniforms (ar-prior-parity.json, written by
// `python -m unclip_toolchain.emoji ar-prior parity`), generation with --prior ar, and bad settings.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Pack } from '../../../main/engine/pack.ts';
import { TINY_PACK_DIR } from '../../../main/engine/packs.ts';
import { generate } from '../../../main/engine/pipeline.ts';
import { sampleArPrior, type ArDraws } from '../../../main/engine/stages/ar-prior.ts';
import { encodeTexts, textRows } from '../../../main/engine/stages/text.ts';

const EMOJI = fileURLToPath(new URL('../../../models/emoji-tiny', import.meta.url));
const fx = JSON.parse(readFileSync(new URL('./ar-prior-parity.json', import.meta.url), 'utf8')) as {
  captions: string[];
  settings: { guidance: number; temperature: number; top_k: number; top_p: number };
  uniforms: number[][];
  codes: number[][];
  image_embeddings: number[][];
};

let pack: Pack;
before(async () => {
  pack = await Pack.load(EMOJI, { threads: 1 });
});
after(async () => pack?.release());

for (const noCache of [false, true])
  test(`AR prior (${noCache ? 'whole-sequence graph' : 'KV-cache graphs'}): the engine reproduces the PyTorch codes and z_i on injected uniforms`, async () => {
    assert.ok(pack.nets.ar_prior_start && pack.nets.ar_prior_step, 'the default pack has the KV-cache pair');
    const E = pack.manifest.embedding_dim;
    const texts = await encodeTexts(pack, [...fx.captions, '']);
    const rows = textRows(pack, texts.slice(0, -1), texts.at(-1)!);
    const draws: ArDraws = { draws: (i, _s, out) => out.set(fx.uniforms[i]!) };
    const codes: number[][] = [];
    const K = pack.manifest.ar_prior!.sequence_length;
    const zi = await sampleArPrior(pack, rows, {
      guidance: fx.settings.guidance,
      temperature: fx.settings.temperature,
      topK: fx.settings.top_k,
      topP: fx.settings.top_p,
      samples: 1,
      draws,
      first: 0,
      noCache,
      capture: (_role, data) => {
        for (let j = 0; j < fx.captions.length; j++) codes.push(Array.from(data.subarray(j * K, (j + 1) * K)));
      },
    });
    assert.deepEqual(codes, fx.codes);
    let err = 0;
    fx.image_embeddings.forEach((z, j) => z.forEach((v, d) => (err = Math.max(err, Math.abs(v - zi[j * E + d]!)))));
    assert.ok(err < 1e-4, `z_i max abs error ${err}`);
  });

test('AR prior: generate with prior "ar" (and two samples) makes images; time per sample', async () => {
  const settings = { n: 1, seed: 3, stepsDecoder: 2, stepsSuperRes: 2, prior: 'ar' as const };
  const t0 = performance.now();
  const one = await generate(pack, { prompt: 'a red apple', settings: { ...settings, priorSamples: 1 } });
  const t1 = performance.now();
  const two = await generate(pack, { prompt: 'a red apple', settings }); // the pack's default: 2 samples
  assert.equal(one.images.length, 1);
  assert.equal(two.images.length, 1);
  assert.ok(one.timings.prior! > 0 && two.timings.prior! > one.timings.prior! * 1.3, JSON.stringify(two.timings));
  const again = await generate(pack, { prompt: 'a red apple', settings: { ...settings, priorSamples: 1 } });
  assert.deepEqual(again.images[0]!.imageEmbedding, one.images[0]!.imageEmbedding, 'same seed, same z_i');
  assert.equal(pack.manifest.ar_prior!.sampling.samples, 2);
  console.log(
    `ar prior: ${one.timings.prior} ms per image (1 sample), ${two.timings.prior} ms (2); total ${t1 - t0} ms`,
  );
});

test('AR prior: bad settings are one line naming the field', async () => {
  const bad = async (settings: object, re: RegExp) =>
    assert.rejects(generate(pack, { prompt: 'a cat', settings: { n: 1, stepsDecoder: 2, ...settings } }), re);
  await bad({ prior: 'ar', priorSamples: 0 }, /^InputError: settings\.priorSamples: must be an integer in \[1, 16\]$/);
  await bad({ prior: 'ar', arTemperature: 0 }, /^InputError: settings\.arTemperature: must be a number in/);
  await bad({ prior: 'ar', arTopK: 5000 }, /^InputError: settings\.arTopK: must be at most the prior's vocabulary/);
  await bad({ prior: 'autoregressive' }, /^InputError: settings\.prior: must be one of diffusion, ar$/);
  const tiny = await Pack.load(TINY_PACK_DIR, { threads: 1 });
  try {
    await assert.rejects(
      generate(tiny, { prompt: 'a cat', settings: { n: 1, prior: 'ar' } }),
      /^InputError: settings\.prior: the pack "tiny-reference" has no autoregressive prior$/,
    );
  } finally {
    await tiny.release();
  }
});

interface Case {
  caption: string;
  settings: { guidance: number; temperature: number; top_k: number; top_p: number };
  uniforms: number[];
  codes: number[];
  image_embedding: number[];
}

test('AR prior parity, more cases (unguided, top-k, top-p, temperatures), both graph paths', async () => {
  const cases = (fx as unknown as { cases: Case[] }).cases;
  assert.equal(cases.length, 4);
  const [empty] = await encodeTexts(pack, ['']);
  for (const c of cases) {
    const [cond] = await encodeTexts(pack, [c.caption]);
    const guided = c.settings.guidance !== 1;
    for (const noCache of [false, true]) {
      let codes: number[] = [];
      const zi = await sampleArPrior(pack, textRows(pack, [cond!], guided ? empty! : null), {
        guidance: c.settings.guidance,
        temperature: c.settings.temperature,
        topK: c.settings.top_k,
        topP: c.settings.top_p,
        samples: 1,
        draws: { draws: (_i, _s, out) => out.set(c.uniforms) },
        first: 0,
        noCache,
        capture: (_role, data) => (codes = Array.from(data)),
      });
      assert.deepEqual(codes, c.codes, `${c.caption} (${noCache ? 'no cache' : 'cache'})`);
      const err = Math.max(...c.image_embedding.map((v, d) => Math.abs(v - zi[d]!)));
      assert.ok(err < 1e-4, `${c.caption}: z_i max abs error ${err}`);
    }
  }
});

test('AR prior: broken tables are one line naming the file and tensor; the pack stays usable', async () => {
  const { cp, mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'ar-tables-'));
  try {
    await cp(EMOJI, dir, { recursive: true });
    const header = JSON.stringify({ pca_mean: { dtype: 'F32', shape: [128], data_offsets: [0, 512] } });
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    await writeFile(
      join(dir, 'ar_prior_codes.safetensors'),
      Buffer.concat([len, Buffer.from(header), Buffer.alloc(512)]),
    );
    const broken = await Pack.load(dir, { threads: 1, verify: false });
    try {
      const settings = { n: 1, stepsDecoder: 2, stepsSuperRes: 2 };
      await assert.rejects(
        generate(broken, { prompt: 'a cat', settings: { ...settings, prior: 'ar' } }),
        (e: Error) =>
          e.name === 'PackError' &&
          e.message === `${join(dir, 'ar_prior_codes.safetensors')}: pca_components is missing (ar_prior.tables)`,
      );
      const ok = await generate(broken, { prompt: 'a cat', settings: { ...settings, prior: 'diffusion' } });
      assert.equal(ok.images.length, 1);
    } finally {
      await broken.release();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('AR prior and image encoder: their sessions open on first use; a corrupt AR graph is one line at the first AR request, every time, and the pack keeps generating', async () => {
  const { cp, mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  // At load only the networks of a default generation are opened.
  assert.equal(pack.memoryStats().opens, Object.keys(pack.nets).length - 4);
  const dir = await mkdtemp(join(tmpdir(), 'ar-graph-'));
  try {
    await cp(EMOJI, dir, { recursive: true });
    await writeFile(join(dir, 'ar_prior_start.onnx'), 'not a graph');
    const broken = await Pack.load(dir, { threads: 1, verify: false });
    try {
      const settings = { n: 1, stepsDecoder: 2, stepsSuperRes: 2 };
      for (let attempt = 0; attempt < 2; attempt++)
        await assert.rejects(
          generate(broken, { prompt: 'a cat', settings: { ...settings, prior: 'ar' } }),
          (e: Error) =>
            e.name === 'PackError' &&
            e.message.startsWith(`${join(dir, 'ar_prior_start.onnx')}: onnxruntime cannot load this graph`) &&
            !e.message.includes('\n'),
        );
      const ok = await generate(broken, {
        prompt: 'a cat',
        settings: { ...settings, prior: 'diffusion', rerank: true },
      });
      assert.equal(ok.images.length, 1);
    } finally {
      await broken.release();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

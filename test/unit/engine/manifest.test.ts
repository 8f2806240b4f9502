import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { describeZodError, ManifestSchema } from '../../../main/engine/manifest.ts';

const tiny = JSON.parse(readFileSync(new URL('../../fixtures/tiny-pack/manifest.json', import.meta.url), 'utf8'));

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- free-form mutations of a JSON document
type Json = any;

function problem(mutate: (m: Json) => void): string {
  const m = structuredClone(tiny);
  mutate(m);
  const r = ManifestSchema.safeParse(m);
  assert.equal(r.success, false, 'mutated manifest must be refused');
  return describeZodError(r.error!);
}

test("the toolchain's tiny pack manifest is valid", () => {
  const r = ManifestSchema.safeParse(tiny);
  assert.ok(r.success, r.success ? '' : describeZodError(r.error));
});

test('invalid manifests are refused with the field named (mirrors models/pack.schema.json)', () => {
  assert.equal(
    problem((m) => (m.extra = 1)),
    '(top level): unknown key "extra"',
  );
  assert.match(
    problem((m) => delete m.components.prior.file),
    /^components\.prior\.file: /,
  );
  assert.match(
    problem((m) => (m.schema_version = 3)),
    /^schema_version: /,
  );
  assert.match(
    problem((m) => (m.name = 'Tiny Pack')),
    /^name: lower-case/,
  );
  assert.match(
    problem((m) => (m.source.kind = 'other')),
    /^source\.kind: /,
  );
  assert.match(
    problem((m) => (m.components.decoder.file = '../decoder.onnx')),
    /^components\.decoder\.file: must be a plain file name/,
  );
  assert.match(
    problem((m) => (m.components.decoder.inputs[0].shape = ['batch', 0])),
    /^components\.decoder\.inputs\.0\.shape\.1/,
  );
  assert.match(
    problem((m) => (m.files['decoder.onnx'] = 'ABC')),
    /^files\.decoder\.onnx: must be a lower-case sha256/,
  );
  assert.match(
    problem((m) => delete m.files['decoder.onnx']),
    /^files: has no sha256 for decoder\.onnx \(components\.decoder\)/,
  );
  assert.match(
    problem((m) => m.prior_stats.clip_std.pop()),
    /^prior_stats\.clip_std: must have embedding_dim = 16 values/,
  );
  assert.match(
    problem((m) => (m.defaults.decoder_steps = 1)),
    /^defaults\.decoder_steps: /,
  );
  assert.match(
    problem((m) => (m.image_preprocess.resample = 'lanczos')),
    /^image_preprocess\.resample: only bicubic/,
  );
  assert.match(
    problem((m) => delete m.components.super_res_last),
    /^components: super_res_first and super_res_last come together/,
  );
  assert.match(
    problem((m) => delete m.schedulers.super_res),
    /^schedulers\.super_res: /,
  );
});

function withAr(m: Json, k = 5, vocab = 32): Json {
  const { embedding_dim: E, text } = m;
  m.schema_version = 2;
  m.components.ar_prior = {
    file: 'ar_prior.onnx',
    flops: 1,
    inputs: [
      { name: 'encoder_hidden_states', dtype: 'float32', shape: ['batch', text.max_length, text.hidden_size] },
      { name: 'attention_mask', dtype: 'bool', shape: ['batch', text.max_length] },
      { name: 'text_embeds', dtype: 'float32', shape: ['batch', E] },
      { name: 'dot_token', dtype: 'int64', shape: ['batch'] },
      { name: 'codes', dtype: 'int64', shape: ['batch', k] },
    ],
    outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', k, vocab] }],
  };
  m.ar_prior = {
    tables: 'ar_prior_codes.safetensors',
    sequence_length: k,
    buckets: vocab,
    vocabulary: vocab,
    dot_buckets: 8,
    null_dot_token: 8,
    variance_kept: 0.99,
    sampling: { guidance: 2, temperature: 1, top_k: 0, top_p: 1, samples: 1 },
  };
  m.files['ar_prior.onnx'] = '0'.repeat(64);
  m.files['ar_prior_codes.safetensors'] = '0'.repeat(64);
  return m;
}

test('schema v2: an autoregressive prior is optional, v1 packs stay valid, broken AR entries name the field', () => {
  assert.ok(ManifestSchema.safeParse(withAr(structuredClone(tiny))).success);
  const v2 = structuredClone(tiny);
  v2.schema_version = 2;
  assert.ok(ManifestSchema.safeParse(v2).success);
  const bad = (mutate: (m: Json) => void): string => problem((m) => mutate(withAr(m)));
  assert.equal(
    bad((m) => (m.schema_version = 1)),
    'schema_version: must be 2 with an ar_prior',
  );
  assert.equal(
    bad((m) => delete m.components.ar_prior),
    'ar_prior: ar_prior and components.ar_prior come together',
  );
  assert.match(
    bad((m) => delete m.ar_prior.tables),
    /^ar_prior\.tables: /,
  );
  assert.match(
    bad((m) => (m.ar_prior.sampling.temperature = 0)),
    /^ar_prior\.sampling\.temperature: /,
  );
  assert.equal(
    bad((m) => (m.components.ar_prior.inputs[4].shape = ['batch', 4])),
    'components.ar_prior.codes: has shape ["batch",4], expected ["batch",5]',
  );
  assert.equal(
    bad((m) => (m.components.ar_prior_start = m.components.ar_prior)),
    'components: ar_prior_start and ar_prior_step come together, with ar_prior',
  );
  assert.equal(
    bad((m) => delete m.files['ar_prior_codes.safetensors']),
    'files: has no sha256 for ar_prior_codes.safetensors (ar_prior.tables)',
  );
});

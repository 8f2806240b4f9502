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
    problem((m) => (m.schema_version = 2)),
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

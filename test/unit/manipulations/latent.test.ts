import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeLatent,
  encodeLatent,
  isLatentPath,
  latentPathFor,
  loadLatent,
  saveLatent,
  type BipartiteLatent,
} from '../../../main/engine/manipulations/latent.ts';
import { readSafetensors } from '../../../main/engine/safetensors.ts';

const D = 4;
const E = 8;
const latent = (): BipartiteLatent => ({
  zi: Float32Array.from({ length: E }, (_, i) => i / 3),
  xT: Float32Array.from({ length: 3 * D * D }, (_, i) => Math.sin(i)),
  zt: Float32Array.from({ length: E }, (_, i) => -i),
  caption: 'a red rocket',
  inversion: { steps: 50, guidance: 1 },
  psnr: 31.5,
  decoderSize: D,
  embeddingDim: E,
  pack: { name: 'p', fingerprint: 'ab'.repeat(32) },
  source: 'rocket.png',
});

test('latent file: round trip, readable as plain safetensors, 8-byte aligned data', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latent-'));
  const file = join(dir, 'rocket.latent.safetensors');
  await saveLatent(file, latent());
  const back = await loadLatent(file);
  assert.deepEqual(back, latent());
  const tensors = await readSafetensors(file);
  assert.deepEqual(tensors.get('x_T')!.shape, [3, D, D]);
  assert.deepEqual(tensors.get('z_i')!.data, latent().zi);
  const bytes = encodeLatent(latent());
  assert.equal((8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))) % 8, 0);
  const { zt: _zt, ...noCaption } = latent();
  assert.equal(decodeLatent(encodeLatent({ ...noCaption, caption: '' })).zt, undefined);
});

test('latent file: other files fail with one line that says how to make one', async () => {
  assert.throws(
    () => decodeLatent(new Uint8Array(3), 'x'),
    /^InputError: x: not an unCLIP latent file \(too short\); make one with `unclip invert IMAGE`$/,
  );
  const dir = mkdtempSync(join(tmpdir(), 'latent-'));
  const file = join(dir, 'a.latent.safetensors');
  writeFileSync(file, Buffer.from('{"hello":1}'));
  await assert.rejects(loadLatent(file), /not an unCLIP latent file/);
  await assert.rejects(loadLatent(join(dir, 'missing.latent.safetensors')), /cannot read \(ENOENT\)/);
  const future = encodeLatent(latent());
  const text = Buffer.from(future).toString('latin1').replace('"version":"1"', '"version":"9"');
  assert.throws(() => decodeLatent(Buffer.from(text, 'latin1'), 'f'), /latent format version 9 is not supported/);
});

test('latent paths', () => {
  assert.equal(latentPathFor('/a/b/cat.png'), '/a/b/cat.latent.safetensors');
  assert.ok(isLatentPath('X.LATENT.safetensors'));
  assert.ok(!isLatentPath('x.safetensors'));
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { clipPixelValues, decodeImage, encodePng, toRgb8 } from '../../../main/engine/image.ts';
import { resizeBicubicAA, resizeUint8PIL } from '../../../main/engine/resize.ts';
import { readSafetensors } from '../../../main/engine/safetensors.ts';

const fixtureDir = new URL('../../fixtures/tiny-fixture/', import.meta.url);
const tensors = await readSafetensors(new URL('fixture.safetensors', fixtureDir).pathname);
const manifest = JSON.parse(readFileSync(new URL('../../fixtures/tiny-pack/manifest.json', import.meta.url), 'utf8'));

function maxAbs(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('bicubic antialias upsampling equals torch F.interpolate(antialias=True) on the fixture', () => {
  for (const c of ['text2img', 'variation']) {
    const dec = tensors.get(`${c}/decoder_image`)!;
    const up = tensors.get(`${c}/upscaled`)!;
    const [B, C, D] = dec.shape as [number, number, number];
    const O = up.shape[2]!;
    const ours = resizeBicubicAA(dec.data, B * C, D, D, O, O);
    assert.ok(maxAbs(ours, up.data) < 1e-5, `${c}: ${maxAbs(ours, up.data)}`);
  }
});

test('resampling keeps constants and renormalises at the borders', () => {
  const flat = new Float32Array(5 * 7).fill(0.25);
  const up = resizeBicubicAA(flat, 1, 5, 7, 13, 3);
  assert.ok(up.every((v) => Math.abs(v - 0.25) < 1e-7));
  const rgb = new Uint8Array(9 * 4 * 3).fill(77);
  assert.ok(resizeUint8PIL(rgb, 9, 4, 3, 5, 11).every((v) => v === 77));
});

test('CLIP preprocessing of the fixture picture equals transformers CLIPImageProcessor (PIL) pixel_values', async () => {
  const img = await decodeImage(readFileSync(new URL('variation_input.png', fixtureDir)));
  assert.deepEqual([img.width, img.height], [48, 40]); // non-square: resize and centre crop both matter
  const ours = clipPixelValues(img, manifest.image_preprocess);
  assert.ok(maxAbs(ours, tensors.get('variation/pixel_values')!.data) < 1e-6);
});

test('8-bit conversion rounds like numpy and PNG bytes are deterministic', async () => {
  const planes = Float32Array.from([-1, -0.5, 0, 1, 2, -3, 0.00196, 0.5, 0.2, 0.6, 0.7, 0.8]); // [1,3,2,2]
  const rgb = toRgb8(planes, 0, 2);
  // (x·0.5+0.5)·255 rounded half to even: −1→0, −0.5→64 (63.75), 0→128 (127.5→128 even), 1→255
  assert.deepEqual(Array.from(rgb.filter((_, i) => i % 3 === 0)), [0, 64, 128, 255]);
  assert.equal(rgb[1], 255); // 2 clamps to 1
  assert.equal(rgb[4], 0); // −3 clamps to 0
  const a = await encodePng(rgb, 2, 2);
  const b = await encodePng(rgb, 2, 2);
  assert.deepEqual(a, b);
  const back = await decodeImage(a);
  assert.deepEqual(back.rgb, rgb);
});

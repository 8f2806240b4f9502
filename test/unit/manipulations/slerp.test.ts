import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cosine, norm, normalisedDifference, slerp } from '../../../main/engine/manipulations/slerp.ts';

const angle = (a: Float32Array, b: Float32Array): number => Math.acos(Math.min(1, Math.max(-1, cosine(a, b))));

test('slerp: the ends are exact copies; in between the angle moves linearly and the norm is lerped', () => {
  const a = Float32Array.from([3, 0, 0, 1]);
  const b = Float32Array.from([0, 2, 1, 0]);
  assert.deepEqual(slerp(a, b, 0), a);
  assert.deepEqual(slerp(a, b, 1), b);
  assert.notEqual(slerp(a, b, 0), a); // a copy, not the same array
  const omega = angle(a, b);
  for (const t of [0.1, 0.25, 0.5, 0.9]) {
    const v = slerp(a, b, t);
    assert.ok(Math.abs(angle(a, v) - t * omega) < 1e-5, `angle at t=${t}`);
    assert.ok(Math.abs(angle(v, b) - (1 - t) * omega) < 1e-5);
    assert.ok(Math.abs(norm(v) - ((1 - t) * norm(a) + t * norm(b))) < 1e-5, `norm at t=${t}`);
  }
});

test('slerp: whole-vector, not the element-wise community quirk (which is not even on the great circle)', () => {
  const a = Float32Array.from([1, 0, 0]);
  const b = Float32Array.from([0, 1, 0]);
  const mid = slerp(a, b, 0.5);
  assert.ok(Math.abs(mid[0]! - Math.SQRT1_2) < 1e-6 && Math.abs(mid[1]! - Math.SQRT1_2) < 1e-6 && mid[2] === 0);
});

test('slerp: nearly parallel vectors fall back to lerp (finite, between the two); opposite ones are refused', () => {
  const a = Float32Array.from([1, 1e-5, 0]);
  const b = Float32Array.from([2, 0, 0]);
  const v = slerp(a, b, 0.5);
  assert.ok(v.every(Number.isFinite));
  assert.ok(Math.abs(norm(v) - 1.5) < 1e-5);
  assert.throws(() => slerp(Float32Array.from([1, 0]), Float32Array.from([-1, 0]), 0.5), /opposite/);
  assert.throws(() => slerp(a, b, 1.5), /t must be in \[0, 1\]/);
  assert.throws(() => slerp(Float32Array.from([0, 0]), Float32Array.from([1, 0]), 0.5), /zero vector/);
});

test('normalisedDifference: unit length, null when the two are equal', () => {
  const d = normalisedDifference(Float32Array.from([3, 4]), Float32Array.from([0, 0]))!;
  assert.ok(Math.abs(d[0]! - 0.6) < 1e-7 && Math.abs(d[1]! - 0.8) < 1e-7);
  assert.equal(normalisedDifference(Float32Array.from([1, 2]), Float32Array.from([1, 2])), null);
});

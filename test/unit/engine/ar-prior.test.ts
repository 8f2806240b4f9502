import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filteredProbs, normalCdf, pickId, SeededDraws } from '../../../main/engine/stages/ar-prior.ts';

const off = { guidance: 1, temperature: 1, topK: 0, topP: 1 };

test('AR sampling filters: temperature, top-k, top-p (as the toolchain sampler)', () => {
  const logits = Float32Array.from([0, 1, 2, 3]);
  const p = filteredProbs(logits, off);
  assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  assert.ok(Math.abs(p[3]! - Math.exp(3) / (1 + Math.E + Math.exp(2) + Math.exp(3))) < 1e-12);
  const k2 = filteredProbs(logits, { ...off, topK: 2 });
  assert.deepEqual([k2[0], k2[1]], [0, 0]);
  const p8 = filteredProbs(logits, { ...off, topP: 0.8 }); // 0.644 < 0.8: two ids needed
  assert.deepEqual([p8[0], p8[1]], [0, 0]);
  assert.ok(p8[2]! > 0 && p8[3]! > 0);
  const cold = filteredProbs(logits, { ...off, temperature: 0.1 });
  assert.ok(cold[3]! > 0.99);
});

test('AR draw: inverse CDF, never an id of probability 0', () => {
  const p = Float64Array.from([0.1, 0.2, 0, 0.7]);
  assert.equal(pickId(p, 0), 0);
  assert.equal(pickId(p, 0.1000001), 1);
  assert.equal(pickId(p, 0.31), 3);
  assert.equal(pickId(p, 0.9999999999), 3);
  assert.equal(pickId(Float64Array.from([0.5, 0.5, 0]), 1 - 1e-16), 1);
});

test('AR uniforms: Φ is accurate, seeded draws are in [0, 1) and repeat per (seed, sample)', () => {
  for (const [x, want] of [
    [0, 0.5],
    [1, 0.8413447460685429],
    [-1.96, 0.024997895148220435],
    [3, 0.9986501019683699],
  ] as const)
    assert.ok(Math.abs(normalCdf(x) - want) < 2e-7, `Φ(${x})`);
  const a = new Float64Array(42);
  const b = new Float64Array(42);
  new SeededDraws([7, 8]).draws(1, 0, a);
  new SeededDraws([8]).draws(0, 0, b);
  assert.deepEqual(a, b, 'image i draws from its own seed only');
  new SeededDraws([8]).draws(0, 1, b);
  assert.notDeepEqual(a, b, 'the second sample draws other uniforms');
  assert.ok(a.every((u) => u >= 0 && u < 1));
});

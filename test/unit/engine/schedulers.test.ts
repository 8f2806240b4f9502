import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DDIMScheduler } from '../../../main/engine/schedulers/ddim.ts';
import { roundHalfEven } from '../../../main/engine/schedulers/betas.ts';
import { UnCLIPScheduler, type UnCLIPSchedulerConfig } from '../../../main/engine/schedulers/unclip.ts';

// Reference values written by make_scheduler_reference.py from diffusers 0.42 (float32 torch).
const ref = JSON.parse(readFileSync(new URL('./scheduler-reference.json', import.meta.url), 'utf8'));
const f32 = (a: number[]) => Float32Array.from(a);

const base = { num_train_timesteps: 1000, beta_schedule: 'squaredcos_cap_v2', clip_sample: true } as const;
const CONFIGS: Record<string, UnCLIPSchedulerConfig> = {
  prior: { ...base, variance_type: 'fixed_small_log', prediction_type: 'sample', clip_sample_range: 5 },
  decoder: { ...base, variance_type: 'learned_range', prediction_type: 'epsilon', clip_sample_range: 1 },
  super_res: { ...base, variance_type: 'fixed_small_log', prediction_type: 'epsilon', clip_sample_range: 1 },
};

// torch's float32 sqrt/exp/log on CPU are vectorised approximations, not correctly rounded (e.g. 218 of the
// 1000 √ᾱ_t differ from the correctly rounded value by 1 ulp), so we match diffusers to a few float32 ulps of
// the values' scale rather than bit for bit.
function maxUlpDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const ulp = Math.max(Math.abs(b[i]!), 1) * 2 ** -23;
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / ulp);
  }
  return worst;
}

test('timesteps use numpy half-to-even rounding (dossier §2.7 table)', () => {
  const s = new UnCLIPScheduler(CONFIGS.prior!);
  assert.deepEqual(s.setTimesteps(2), [999, 0]);
  assert.deepEqual(s.setTimesteps(7), [999, 832, 666, 500, 333, 166, 0]);
  assert.deepEqual(
    s.setTimesteps(25),
    [
      999, 957, 916, 874, 832, 791, 749, 708, 666, 624, 583, 541, 500, 458, 416, 375, 333, 291, 250, 208, 166, 125, 83,
      42, 0,
    ],
  );
  const fifty = s.setTimesteps(50);
  assert.equal(fifty.length, 50);
  assert.deepEqual(fifty.slice(0, 6), [999, 979, 958, 938, 917, 897]);
  assert.deepEqual(fifty.slice(-6), [102, 82, 61, 41, 20, 0]);
  for (const n of ['2', '7', '25', '50']) assert.deepEqual(s.setTimesteps(Number(n)), ref.timesteps[n]);
  assert.equal(roundHalfEven(166.5), 166);
  assert.equal(roundHalfEven(832.5), 832);
  assert.equal(roundHalfEven(167.5), 168);
  assert.throws(() => s.setTimesteps(1), /steps must be an integer/);
  assert.throws(() => s.setTimesteps(1001), /steps must be an integer/);
});

test('betas and alphas_cumprod match the dossier anchors and diffusers bit for bit', () => {
  const s = new UnCLIPScheduler(CONFIGS.decoder!);
  assert.equal(s.betas[0], Math.fround(4.1284224e-5));
  assert.equal(s.betas[999], Math.fround(0.999));
  const anchors: [number, number][] = [
    [0, 0.99995869],
    [42, 0.99385148],
    [166, 0.92760009],
    [500, 0.49228504],
    [832, 0.06622054],
    [957, 0.00427823],
    [999, 2.428735e-9],
  ];
  // anchors are printed with 8 decimals (the last one with 7 significant digits)
  for (const [t, v] of anchors) {
    const tol = t === 999 ? 5e-16 : 5e-9;
    assert.ok(Math.abs(s.alphasCumprod[t]! - v) <= tol, `ᾱ_${t} = ${s.alphasCumprod[t]} vs ${v}`);
  }
  assert.deepEqual(Array.from(s.betas), ref.betas.map(Math.fround));
  // torch's cumprod and ours agree everywhere (double accumulation, float32 outputs)
  assert.deepEqual(Array.from(s.alphasCumprod), ref.alphas_cumprod.map(Math.fround));
});

test('step coefficients reproduce the float32 quirks (dossier §2.7 anchors)', () => {
  const s = new UnCLIPScheduler(CONFIGS.decoder!);
  const last = s.coefficients(0); // prev = -1: β' = β₀ but 1 − ᾱ₀ rounds differently → 0.99947232, not 1
  assert.ok(Math.abs(last.x0Coeff - 0.99947232) < 1e-7, `t=0 x0 coeff ${last.x0Coeff}`);
  assert.equal(last.sampleCoeff, 0);
  const c999 = s.coefficients(999, 0);
  assert.equal(c999.beta, 1);
  assert.ok(Math.abs(c999.x0Coeff - 0.99997932) < 1e-7);
  assert.equal(c999.sampleCoeff, 0);
  assert.ok(Math.abs(c999.sigma - 0.00642698) < 1e-8);
  assert.ok(Math.abs(c999.minLog - -10.0945) < 1e-4);
  assert.equal(c999.maxLog, 0);
  const c957 = s.coefficients(999, 957);
  assert.ok(Math.abs(c957.x0Coeff - 0.06540817) < 1e-8);
  assert.ok(Math.abs(c957.sampleCoeff - 0.00076874) < 1e-8);
  assert.ok(Math.abs(c957.sigma - 0.99785829) < 1e-7);
  const c166 = s.coefficients(166, 0);
  assert.ok(Math.abs(c166.x0Coeff - 0.99944997) < 1e-8);
  assert.ok(Math.abs(c166.sampleCoeff - 0.0005495) < 1e-8);
  assert.ok(Math.abs(c166.sigma - 0.00642528) < 1e-8);
});

test('UnCLIP step matches diffusers for prior, decoder (learned range) and super-res, 2/7/25 steps', () => {
  let count = 0;
  for (const r of ref.unclip) {
    const s = new UnCLIPScheduler(CONFIGS[r.config]!);
    s.setTimesteps(r.steps);
    assert.equal(s.timesteps[r.i], r.t);
    assert.equal(s.prevTimestep(r.i), r.prev ?? undefined);
    const predOriginal = new Float32Array(r.sample.length);
    const out = s.step({
      modelOutput: f32(r.model),
      timestep: r.t,
      sample: f32(r.sample),
      prevTimestep: s.prevTimestep(r.i),
      predictedVariance: f32(r.variance),
      noise: f32(r.noise),
      predOriginal,
    });
    assert.ok(maxUlpDiff(out, f32(r.prev_sample)) <= 4, `${r.config} N=${r.steps} i=${r.i}`);
    assert.ok(maxUlpDiff(predOriginal, f32(r.pred_original)) <= 4, `${r.config} x0 N=${r.steps} i=${r.i}`);
    count++;
  }
  assert.equal(count, 3 * (2 + 7 + 25));
});

test('UnCLIP step refuses missing noise or variance instead of guessing', () => {
  const s = new UnCLIPScheduler(CONFIGS.decoder!);
  s.setTimesteps(2);
  const x = new Float32Array(4);
  assert.throws(
    () => s.step({ modelOutput: x, timestep: 999, sample: x, prevTimestep: 0, predictedVariance: x }),
    /noise/,
  );
  assert.throws(() => s.step({ modelOutput: x, timestep: 999, sample: x, prevTimestep: 0, noise: x }), /variance/);
  // the last step (t = 0) draws no noise
  assert.doesNotThrow(() => s.step({ modelOutput: x, timestep: 0, sample: x }));
});

test('DDIM step (η = 0 and η = 0.5, leading and trailing) matches diffusers', () => {
  for (const r of ref.ddim) {
    const d = new DDIMScheduler({ timestep_spacing: r.spacing });
    assert.deepEqual(d.setTimesteps(r.steps), r.timesteps);
    const predOriginal = new Float32Array(r.sample.length);
    const out = d.step({
      modelOutput: f32(r.model),
      timestep: r.t,
      sample: f32(r.sample),
      eta: r.eta,
      noise: f32(r.noise),
      predOriginal,
    });
    assert.ok(maxUlpDiff(out, f32(r.prev_sample)) <= 8, `${r.spacing} η=${r.eta} t=${r.t}`);
    assert.ok(maxUlpDiff(predOriginal, f32(r.pred_original)) <= 8);
  }
});

test('DDIM inverse step matches diffusers DDIMInverseScheduler', () => {
  for (const r of ref.ddim_inverse) {
    const d = new DDIMScheduler();
    d.setTimesteps(r.steps);
    assert.deepEqual(d.inverseTimesteps(), r.timesteps);
    const out = d.inverseStep({ modelOutput: f32(r.model), timestep: r.t, sample: f32(r.sample) });
    assert.ok(maxUlpDiff(out, f32(r.prev_sample)) <= 8, `t=${r.t}`);
  }
});

test('DDIM maths: with a fixed ε, inversion undoes the η=0 step and x_t = √ᾱ x0 + √(1−ᾱ) ε', () => {
  const d = new DDIMScheduler();
  const ts = d.setTimesteps(20);
  const eps = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 1.7));
  const x0 = Float32Array.from({ length: 64 }, (_, i) => Math.cos(i * 0.3) * 0.8);
  // start from the exact forward-noised sample at the first timestep
  const a = d.alphasCumprod[ts[0]!]!;
  let x: Float32Array = x0.map((v, i) => Math.sqrt(a) * v + Math.sqrt(1 - a) * eps[i]!);
  const start = x.slice();
  for (const t of ts) {
    const est = new Float32Array(64);
    x = d.step({ modelOutput: eps, timestep: t, sample: x, predOriginal: est });
    for (let i = 0; i < 64; i++) assert.ok(Math.abs(est[i]! - x0[i]!) < 1e-3, 'x0 estimate is exact for the true ε');
  }
  // the deterministic chain ends on x0 (ᾱ = 1 after the last step)
  for (let i = 0; i < 64; i++) assert.ok(Math.abs(x[i]! - x0[i]!) < 1e-3);
  for (const t of d.inverseTimesteps()) x = d.inverseStep({ modelOutput: eps, timestep: t, sample: x });
  for (let i = 0; i < 64; i++) assert.ok(Math.abs(x[i]! - start[i]!) < 2e-3, `round trip ${i}`);
});

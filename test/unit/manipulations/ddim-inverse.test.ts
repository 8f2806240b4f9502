import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DDIMScheduler } from '../../../main/engine/schedulers/ddim.ts';

// DDIM inversion is exact when ε does not depend on x (the forward step at t uses the same ε the inverse
// step used): a check of the two steps' algebra and timestep pairing (dossier §5.2).
test('DDIM inverse steps then η = 0 steps return to x0 when ε is independent of x (50 steps, squaredcos)', () => {
  const s = new DDIMScheduler({ beta_schedule: 'squaredcos_cap_v2', clip_sample: false });
  s.setTimesteps(50);
  assert.deepEqual(s.inverseTimesteps().slice(0, 3), [0, 20, 40]);
  const n = 64;
  const x0 = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.9);
  const eps = (t: number) => Float32Array.from({ length: n }, (_, i) => 0.5 * Math.cos(i + t / 100));
  let x: Float32Array = x0.slice();
  for (const t of s.inverseTimesteps()) x = s.inverseStep({ modelOutput: eps(t), timestep: t, sample: x });
  // x_T is mostly noise: far from x0
  assert.ok(Math.max(...x.map((v, i) => Math.abs(v - x0[i]!))) > 0.3);
  for (const t of s.timesteps) x = s.step({ modelOutput: eps(t), timestep: t, sample: x, eta: 0 });
  const err = Math.max(...x.map((v, i) => Math.abs(v - x0[i]!)));
  assert.ok(err < 1e-4, `round-trip error ${err}`);
});

// Stage 2: the diffusion prior P(z_i | y) (paper §2.1). An x0-predicting transformer in the normalised CLIP
// image space, conditioned on z_t and the caption's token states, sampled with the UnCLIPScheduler and
// classifier-free guidance, then un-normalised (·std + mean) into a CLIP image embedding z_i.
import type { Pack } from '../pack.ts';
import { f32 } from '../schedulers/betas.ts';
import { UnCLIPScheduler } from '../schedulers/unclip.ts';
import { guide } from './guidance.ts';
import { boolt, f32t, i64t, runNet, type StageHooks } from './net.ts';
import { fillNoise, type NoiseSource } from './noise.ts';
import type { TextRows } from './text.ts';

export interface PriorOptions extends StageHooks {
  steps: number;
  /** Guidance scale (used when `text` is guided). */
  guidance: number;
  noise: NoiseSource;
  /** The noise source's index of this call's first image. */
  first: number;
}

/**
 * z_i [b,E] of the b images whose conditioning is `text`. Captures `prior_trajectory/<i>` (normalised latents
 * after step i).
 */
export async function samplePrior(pack: Pack, text: TextRows, o: PriorOptions): Promise<Float32Array> {
  const m = pack.manifest;
  const E = m.embedding_dim;
  const L = m.text.max_length;
  const H = m.text.hidden_size;
  const { b, rows, guided } = text;
  const net = pack.net('prior');
  const sched = new UnCLIPScheduler(m.schedulers.prior);
  const ts = sched.setTimesteps(o.steps);
  const lat = new Float32Array(b * E);
  fillNoise(o.noise, 'prior', -1, o.first, b, lat, E);
  const input = new Float32Array(rows * E);
  const timestep = new BigInt64Array(rows);
  const pred = new Float32Array(rows * E);
  const guidedPred = guided ? new Float32Array(b * E) : pred;
  const noise = new Float32Array(b * E);
  const feeds = {
    hidden_states: f32t(input, [rows, E]),
    timestep: i64t(timestep, [rows]),
    proj_embedding: f32t(text.embeds, [rows, E]),
    encoder_hidden_states: f32t(text.hidden, [rows, L, H]),
    attention_mask: boolt(text.mask, [rows, L]),
  };
  const fetches = { predicted_image_embedding: f32t(pred, [rows, E]) };
  for (let i = 0; i < ts.length; i++) {
    const t = ts[i]!;
    for (let r = 0; r < rows; r += b) input.set(lat, r * E);
    timestep.fill(BigInt(t));
    await runNet(net, feeds, fetches, o.signal);
    if (guided) guide(pred, pred, o.guidance, guidedPred, b * E, 0, b * E, 0);
    if (t > 0) fillNoise(o.noise, 'prior', i, o.first, b, noise, E);
    sched.step({
      modelOutput: guidedPred,
      timestep: t,
      sample: lat,
      prevTimestep: sched.prevTimestep(i),
      noise,
      out: lat,
    });
    o.capture?.(`prior_trajectory/${i}`, lat);
    o.onStep?.(i + 1, ts.length);
  }
  const { clip_mean: mean, clip_std: std } = m.prior_stats;
  const zi = new Float32Array(b * E);
  for (let j = 0; j < b * E; j++) {
    const d = j % E;
    zi[j] = f32(f32(lat[j]! * f32(std[d]!)) + f32(mean[d]!));
  }
  return zi;
}

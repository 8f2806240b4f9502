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

/** Noise-step offset between the draws of two-sample selection (prior steps are at most 1000). */
export const SAMPLE_STEP_OFFSET = 2000;

export interface PriorOptions extends StageHooks {
  steps: number;
  /** Guidance scale (used when `text` is guided). */
  guidance: number;
  noise: NoiseSource;
  /** The noise source's index of this call's first image. */
  first: number;
  /** Which draw of z_i this is (two-sample selection): draw s > 0 takes its noise from steps offset by s·2000. */
  sample?: number;
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
  const off = (o.sample ?? 0) * SAMPLE_STEP_OFFSET;
  fillNoise(o.noise, 'prior', off - 1, o.first, b, lat, E);
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
    if (t > 0) fillNoise(o.noise, 'prior', off + i, o.first, b, noise, E);
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

/**
 * Two-sample selection (paper §2.1): `samples` draws of z_i per image, keeping the one with the highest
 * cos(z_i, z_t), z_t being the image's caption embedding (the cond rows of `text`). samples = 1 is samplePrior.
 */
export async function sampleBestPrior(
  pack: Pack,
  text: TextRows,
  o: PriorOptions,
  samples: number,
): Promise<Float32Array> {
  if (samples <= 1) return samplePrior(pack, text, o);
  const E = pack.manifest.embedding_dim;
  const { b, guided } = text;
  const best = new Float32Array(b * E);
  const score = new Float64Array(b).fill(-Infinity);
  for (let s = 0; s < samples; s++) {
    const onStep = o.onStep && ((i: number, n: number) => o.onStep!(s * n + i, samples * n));
    const zi = await samplePrior(pack, text, { ...o, sample: s, onStep });
    for (let j = 0; j < b; j++) {
      const c = cosine(zi, j * E, text.embeds, (guided ? b + j : j) * E, E);
      if (c > score[j]!) {
        score[j] = c;
        best.set(zi.subarray(j * E, (j + 1) * E), j * E);
      }
    }
  }
  return best;
}

export function cosine(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let k = 0; k < n; k++) {
    d += a[ao + k]! * b[bo + k]!;
    na += a[ao + k]! * a[ao + k]!;
    nb += b[bo + k]! * b[bo + k]!;
  }
  return d / Math.sqrt(na * nb);
}

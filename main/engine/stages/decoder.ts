// Stage 3: the decoder P(x | z_i, y) (paper §2.1, GLIDE-style). text_proj turns z_i and the caption into the
// UNet's conditioning (four extra context tokens and an additive time embedding); the UNet predicts ε and a
// learned variance (6 channels), guided on ε. Generation samples it with the UnCLIPScheduler (`sampleDecoder`);
// the manipulations run the same conditioning and ε under DDIM (manipulations/decoder.ts).
import type * as ort from 'onnxruntime-node';
import type { Pack } from '../pack.ts';
import { UnCLIPScheduler } from '../schedulers/unclip.ts';
import { guide } from './guidance.ts';
import { boolt, f32t, i64t, runNet, type Feeds, type StageHooks } from './net.ts';
import { fillNoise, type NoiseSource } from './noise.ts';
import type { TextRows } from './text.ts';

/**
 * The decoder's conditioning for b pictures decoded together (one network call per step for all of them), rows
 * laid out as `text`'s, with the buffers every step reuses.
 */
export interface DecoderCond {
  frames: number;
  rows: number;
  /** Guidance scale (1 when unguided). */
  guidance: number;
  feeds: Feeds;
  /** The decoder's output [rows,6,D,D], bound once so every step writes into `out`. */
  fetches: Feeds;
  input: Float32Array;
  timestep: BigInt64Array;
  out: Float32Array;
  /** text_proj's outputs, rows as `text`'s: encoder hidden states [rows,ctx,·] and additive time embedding. */
  encoderHiddenStates: ort.Tensor;
  additiveTime: ort.Tensor;
}

/** text_proj on z_i [b,E] and the captions' rows; the uncond rows get a zero z_i and uncond_mask = 1. */
export async function decoderConditioning(
  pack: Pack,
  text: TextRows,
  zi: Float32Array,
  guidance: number,
  signal?: AbortSignal,
): Promise<DecoderCond> {
  const m = pack.manifest;
  const E = m.embedding_dim;
  const L = m.text.max_length;
  const H = m.text.hidden_size;
  const D = m.resolution.decoder;
  const { b, rows, guided } = text;
  const img = new Float32Array(rows * E);
  img.set(zi.subarray(0, b * E), (rows - b) * E);
  const uncondMask = new Uint8Array(rows);
  if (guided) uncondMask.fill(1, 0, b);
  const tp = await runNet(
    pack.net('text_proj'),
    {
      image_embeddings: f32t(img, [rows, E]),
      uncond_mask: boolt(uncondMask, [rows]),
      prompt_embeds: f32t(text.embeds, [rows, E]),
      text_encoder_hidden_states: f32t(text.hidden, [rows, L, H]),
    },
    undefined,
    signal,
  );
  const enc = tp.encoder_hidden_states!;
  const addT = tp.additive_clip_time_embeddings!;
  // decoder attention mask: the clip_extra_context_tokens (4) always attend, then the caption's mask
  const ctx = enc.dims[1]!;
  const extra = ctx - L;
  const dmask = new Uint8Array(rows * ctx);
  for (let r = 0; r < rows; r++) {
    dmask.fill(1, r * ctx, r * ctx + extra);
    dmask.set(text.mask.subarray(r * L, (r + 1) * L), r * ctx + extra);
  }
  const px = 3 * D * D;
  const input = new Float32Array(rows * px);
  const timestep = new BigInt64Array(rows);
  const out = new Float32Array(rows * 2 * px);
  return {
    frames: b,
    rows,
    guidance: guided ? guidance : 1,
    input,
    timestep,
    out,
    fetches: { out_sample: f32t(out, [rows, 6, D, D]) },
    feeds: {
      sample: f32t(input, [rows, 3, D, D]),
      timestep: i64t(timestep, [rows]),
      encoder_hidden_states: enc,
      class_labels: addT,
      attention_mask: boolt(dmask, [rows, ctx]),
    },
    encoderHiddenStates: enc,
    additiveTime: addT,
  };
}

/**
 * One decoder call on x [b,3,D,D] at timestep t: the guided ε (first 3 of 6 channels) into `eps`, and when asked
 * the learned variance (last 3, of the cond row) into `variance`.
 */
export async function decoderEpsilon(
  pack: Pack,
  c: DecoderCond,
  x: Float32Array,
  t: number,
  eps: Float32Array,
  variance?: Float32Array,
  signal?: AbortSignal,
): Promise<void> {
  const D = pack.manifest.resolution.decoder;
  const px = 3 * D * D;
  const guided = c.rows > c.frames;
  c.input.set(x, 0);
  if (guided) c.input.set(x, c.frames * px);
  c.timestep.fill(BigInt(t));
  await runNet(pack.net('decoder'), c.feeds, c.fetches, signal);
  for (let f = 0; f < c.frames; f++) {
    const cond = ((guided ? c.frames : 0) + f) * 2 * px; // the cond row (variance comes from it)
    if (guided) guide(c.out, c.out, c.guidance, eps, px, f * 2 * px, cond, f * px);
    else eps.set(c.out.subarray(cond, cond + px), f * px);
    variance?.set(c.out.subarray(cond + px, cond + 2 * px), f * px);
  }
}

export interface DecoderOptions extends StageHooks {
  steps: number;
  noise: NoiseSource;
  /** The noise source's index of this call's first image. */
  first: number;
  /** Also compute the x0 estimate of every step (handed to onStep, for previews). */
  predOriginal?: boolean;
  onStep?: (step: number, total: number, x0?: Float32Array) => void | Promise<void>;
}

/**
 * Ancestral sampling of the conditioning's b pictures with the UnCLIPScheduler (learned variance), x_T from the
 * noise source; returns x0 [b,3,D,D] clamped to [-1,1]. Captures `decoder_eps/<i>`, `decoder_trajectory/<i>`.
 */
export async function sampleDecoder(pack: Pack, c: DecoderCond, o: DecoderOptions): Promise<Float32Array> {
  const m = pack.manifest;
  const D = m.resolution.decoder;
  const px = 3 * D * D;
  const b = c.frames;
  const sched = new UnCLIPScheduler(m.schedulers.decoder);
  const ts = sched.setTimesteps(o.steps);
  const x = new Float32Array(b * px);
  fillNoise(o.noise, 'decoder', -1, o.first, b, x, px);
  const eps = new Float32Array(b * px);
  const variance = new Float32Array(b * px);
  const noise = new Float32Array(b * px);
  const x0 = o.predOriginal ? new Float32Array(b * px) : undefined;
  for (let i = 0; i < ts.length; i++) {
    const t = ts[i]!;
    await decoderEpsilon(pack, c, x, t, eps, variance, o.signal);
    o.capture?.(`decoder_eps/${i}`, eps);
    if (t > 0) fillNoise(o.noise, 'decoder', i, o.first, b, noise, px);
    sched.step({
      modelOutput: eps,
      timestep: t,
      sample: x,
      prevTimestep: sched.prevTimestep(i),
      predictedVariance: variance,
      noise,
      out: x,
      predOriginal: x0,
    });
    o.capture?.(`decoder_trajectory/${i}`, x);
    await o.onStep?.(i + 1, ts.length, x0);
  }
  for (let j = 0; j < x.length; j++) x[j] = Math.min(Math.max(x[j]!, -1), 1);
  return x;
}

// unCLIP sampling, following the paper's figure (Ramesh et al. 2022, fig. 2) and diffusers' UnCLIPPipeline:
//
//   caption ─CLIP text encoder─► z_t, token states ─prior (CFG)─► z_i ─text_proj─► decoder (CFG) ─► 32/64 px
//   ─bicubic ↑ + super-resolution─► final image
//
// Stage-major: every image goes through the prior, then every image through the decoder, then through
// super-resolution, so progress is monotone. Images are processed in chunks of `maxBatch` (1 on CPU, where
// batching buys nothing and per-image runs make image i reproducible alone, bit for bit); each image's
// noise comes only from its own seed (rng.ts) or from an injected source (parity fixtures).
import * as ort from 'onnxruntime-node';
import type { GenerateResult, GeneratedImage, ProgressEvent, Stage } from './api.ts';
import { CancelledError, throwIfAborted } from './errors.ts';
import { clipPixelValues, decodeImage, encodePng, hstack, toRgb8 } from './image.ts';
import type { Pack, Net } from './pack.ts';
import { resizeBicubicAA } from './resize.ts';
import { GaussianNoise, NoiseStage, noiseStream } from './rng.ts';
import { f32 } from './schedulers/betas.ts';
import { UnCLIPScheduler } from './schedulers/unclip.ts';
import { InputError, resolveRequest } from './settings.ts';

// ---------------------------------------------------------------------------------------------------------
// Inputs

/** One encoded caption: CLIP text embedding z_t, last hidden states, attention mask. */
export interface TextCond {
  embeds: Float32Array; // [E]
  hidden: Float32Array; // [L, H]
  mask: Uint8Array; // [L]
  truncated: boolean;
}

export type NoiseStageName = 'prior' | 'decoder' | 'super_res';

/** Where the Gaussian noise comes from: seeded per image, or injected (parity). */
export interface NoiseSource {
  /** Fills `out` with image `image`'s noise for (stage, step); step −1 = the initial latents. */
  fill(stage: NoiseStageName, step: number, image: number, out: Float32Array): void;
}

const STAGE_ID: Record<NoiseStageName, number> = {
  prior: NoiseStage.prior,
  decoder: NoiseStage.decoder,
  super_res: NoiseStage.superRes,
};

/** Image i draws from GaussianNoise(seeds[i]) only. */
export class SeededNoise implements NoiseSource {
  private readonly generators: GaussianNoise[];
  constructor(seeds: number[]) {
    this.generators = seeds.map((s) => new GaussianNoise(s));
  }
  fill(stage: NoiseStageName, step: number, image: number, out: Float32Array): void {
    this.generators[image]!.fill(noiseStream(STAGE_ID[stage], step), out);
  }
}

export interface UnclipJob {
  /** Distinct captions; `imageText[i]` says which one image i uses. */
  texts: TextCond[];
  imageText: number[];
  /** The "" caption for classifier-free guidance, or null when guidance is off. */
  uncond: TextCond | null;
  /** Given CLIP image embeddings [B,E] (image variation): the prior is skipped. */
  imageEmbeddings?: Float32Array;
  steps: { prior: number; decoder: number; superRes: number };
  guidance: { prior: number; decoder: number };
  noise: NoiseSource;
}

export interface RunOptions {
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  /** Emit a PNG of the decoder's x0 estimate every k decoder steps (0 = never). */
  previewEvery?: number;
  /** Images per network call (×2 with guidance). */
  maxBatch?: number;
  /** performance.now() when the job started (progress elapsedMs counts from there). */
  startedAt?: number;
  /** Receives intermediate tensors (parity): role, the global row index of each row, the rows' data. */
  capture?: (role: string, rows: number[], data: Float32Array) => void;
}

export interface UnclipOutput {
  /** z_i of every image [B,E]. */
  imageEmbeddings: Float32Array;
  /** Final images [B,3,S,S] in [-1,1] (unclamped, before ·0.5+0.5). */
  images: Float32Array;
  size: number;
  timings: Record<string, number>;
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

const now = (): number => performance.now();
const f32t = (data: Float32Array, dims: number[]): ort.Tensor => new ort.Tensor('float32', data, dims);
const i64t = (data: BigInt64Array, dims: number[]): ort.Tensor => new ort.Tensor('int64', data, dims);
const boolt = (data: Uint8Array, dims: number[]): ort.Tensor => new ort.Tensor('bool', data, dims);

async function run(
  net: Net,
  feeds: Record<string, ort.Tensor>,
  fetches: Record<string, ort.Tensor> | undefined,
  signal: AbortSignal | undefined,
): Promise<Record<string, ort.Tensor>> {
  throwIfAborted(signal);
  try {
    return (await net.session.run(feeds, fetches ?? {})) as Record<string, ort.Tensor>;
  } catch (e) {
    throw new Error(`${net.spec.file}: inference failed (${String((e as Error).message).split('\n')[0]})`, {
      cause: e,
    });
  }
}

/** out = u + g·(c − u) in float32 (diffusers' guidance, torch's op order). */
function guide(
  u: Float32Array,
  c: Float32Array,
  g: number,
  out: Float32Array,
  n: number,
  uOff = 0,
  cOff = 0,
  oOff = 0,
): void {
  const gs = f32(g);
  for (let k = 0; k < n; k++) {
    const uu = u[uOff + k]!;
    out[oOff + k] = f32(uu + f32(gs * f32(c[cOff + k]! - uu)));
  }
}

/**
 * Progress with an ETA: remaining calls × measured time per call for stages already seen; stages not yet
 * run are estimated from their FLOP counts at the throughput measured so far.
 */
class ProgressMeter {
  private last = now();
  private readonly seen = new Map<Stage, { calls: number; ms: number; flops: number }>();
  constructor(
    /** Calls and FLOPs per call of each diffusion stage in this job. */
    private readonly plan: { stage: Stage; calls: number; flops: number }[],
    private readonly onProgress?: (event: ProgressEvent) => void,
    private readonly t0 = now(),
  ) {}
  tick(stage: Stage, step: number, total: number, preview?: Uint8Array): void {
    const t = now();
    const s = this.seen.get(stage) ?? { calls: 0, ms: 0, flops: 0 };
    s.calls++;
    s.ms += t - this.last;
    this.last = t;
    this.seen.set(stage, s);
    if (!this.onProgress) return;
    let msSeen = 0;
    let flopsSeen = 0;
    for (const [st, v] of this.seen) {
      const p = this.plan.find((x) => x.stage === st);
      msSeen += v.ms;
      flopsSeen += v.calls * (p?.flops ?? 0);
    }
    const msPerFlop = flopsSeen > 0 ? msSeen / flopsSeen : 0;
    let etaMs = 0;
    for (const p of this.plan) {
      const v = this.seen.get(p.stage);
      const left = p.calls - (v?.calls ?? 0);
      if (left <= 0) continue;
      etaMs += left * (v ? v.ms / v.calls : p.flops * msPerFlop);
    }
    const event: ProgressEvent = {
      stage,
      step,
      total,
      elapsedMs: Math.round(t - this.t0),
      etaMs: Math.round(etaMs),
    };
    if (preview) event.preview = preview;
    this.onProgress(event);
  }
}

const costOf = (net: Net | undefined, rows: number): number => (net ? Math.max(net.spec.flops, 1e6) * rows : 0);

function chunks(count: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < count; s += size) out.push([s, Math.min(s + size, count)]);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Stage 0: CLIP text encoder

export async function encodeTexts(pack: Pack, captions: string[], signal?: AbortSignal): Promise<TextCond[]> {
  const { embedding_dim: E, text } = pack.manifest;
  const L = text.max_length;
  const H = text.hidden_size;
  const tokens = captions.map((c) => pack.tokenizer.encode(c));
  const ids = new BigInt64Array(captions.length * L);
  tokens.forEach((t, r) => t.ids.forEach((id, k) => (ids[r * L + k] = BigInt(id))));
  const net = pack.net('text_encoder');
  const out = await run(net, { input_ids: i64t(ids, [captions.length, L]) }, undefined, signal);
  const embeds = out.text_embeds!.data as Float32Array;
  const hidden = out.last_hidden_state!.data as Float32Array;
  return tokens.map((t, r) => ({
    embeds: embeds.slice(r * E, (r + 1) * E),
    hidden: hidden.slice(r * L * H, (r + 1) * L * H),
    mask: Uint8Array.from(t.mask),
    truncated: t.truncated,
  }));
}

/** CLIP image embeddings of planar pixel_values [B,3,S,S]. */
export async function encodePixels(
  pack: Pack,
  pixels: Float32Array,
  count: number,
  signal?: AbortSignal,
): Promise<Float32Array> {
  const S = pack.manifest.image_preprocess.crop_size;
  const net = pack.net('image_encoder');
  const out = await run(net, { pixel_values: f32t(pixels, [count, 3, S, S]) }, undefined, signal);
  return (out.image_embeds!.data as Float32Array).slice();
}

// ---------------------------------------------------------------------------------------------------------
// The three diffusion stages

export async function runUnclip(pack: Pack, job: UnclipJob, opts: RunOptions = {}): Promise<UnclipOutput> {
  const m = pack.manifest;
  const E = m.embedding_dim;
  const L = m.text.max_length;
  const H = m.text.hidden_size;
  const D = m.resolution.decoder;
  const O = m.resolution.output;
  const B = job.imageText.length;
  const cfg = job.uncond !== null;
  const maxBatch = Math.max(1, opts.maxBatch ?? 1);
  const parts = chunks(B, maxBatch);
  const { signal, capture } = opts;
  const rowsOf = (s: number, e: number): number[] => Array.from({ length: e - s }, (_, k) => s + k);
  const timings: Record<string, number> = {};
  const withSR = pack.hasSuperRes;
  const k = cfg ? 2 : 1;

  const variation = job.imageEmbeddings !== undefined;
  const calls = parts.length;
  const progress = new ProgressMeter(
    [
      ...(variation
        ? []
        : [{ stage: 'prior' as Stage, calls: job.steps.prior * calls, flops: costOf(pack.nets.prior, k * maxBatch) }]),
      { stage: 'decoder', calls: job.steps.decoder * calls, flops: costOf(pack.nets.decoder, k * maxBatch) },
      ...(withSR
        ? [
            {
              stage: 'super_res' as Stage,
              calls: job.steps.superRes * calls,
              flops: costOf(pack.nets.super_res_first, maxBatch),
            },
          ]
        : []),
    ],
    opts.onProgress,
    opts.startedAt,
  );

  // Conditioning rows of a chunk: [uncond × b, cond × b] with guidance, [cond × b] without.
  const condRows = (s: number, e: number) => {
    const b = e - s;
    const rows = k * b;
    const embeds = new Float32Array(rows * E);
    const hidden = new Float32Array(rows * L * H);
    const mask = new Uint8Array(rows * L);
    for (let j = 0; j < b; j++) {
      const c = job.texts[job.imageText[s + j]!]!;
      const r = cfg ? b + j : j;
      embeds.set(c.embeds, r * E);
      hidden.set(c.hidden, r * L * H);
      mask.set(c.mask, r * L);
      if (cfg) {
        embeds.set(job.uncond!.embeds, j * E);
        hidden.set(job.uncond!.hidden, j * L * H);
        mask.set(job.uncond!.mask, j * L);
      }
    }
    return { b, rows, embeds, hidden, mask };
  };

  // ── Prior: x0-predicting transformer in normalised CLIP-image space, then ·std + mean ──────────────
  let imageEmbeddings: Float32Array;
  if (variation) {
    imageEmbeddings = job.imageEmbeddings!;
  } else {
    const t0 = now();
    imageEmbeddings = new Float32Array(B * E);
    const net = pack.net('prior');
    const sched = new UnCLIPScheduler(m.schedulers.prior);
    const ts = sched.setTimesteps(job.steps.prior);
    const { clip_mean: mean, clip_std: std } = m.prior_stats;
    let stepCount = 0;
    for (const [s, e] of parts) {
      const c = condRows(s, e);
      const lat = new Float32Array(c.b * E);
      for (let j = 0; j < c.b; j++) job.noise.fill('prior', -1, s + j, lat.subarray(j * E, (j + 1) * E));
      const input = new Float32Array(c.rows * E);
      const timestep = new BigInt64Array(c.rows);
      const pred = new Float32Array(c.rows * E);
      const guided = cfg ? new Float32Array(c.b * E) : pred;
      const noise = new Float32Array(c.b * E);
      const feeds = {
        hidden_states: f32t(input, [c.rows, E]),
        timestep: i64t(timestep, [c.rows]),
        proj_embedding: f32t(c.embeds, [c.rows, E]),
        encoder_hidden_states: f32t(c.hidden, [c.rows, L, H]),
        attention_mask: boolt(c.mask, [c.rows, L]),
      };
      const fetches = { predicted_image_embedding: f32t(pred, [c.rows, E]) };
      for (let i = 0; i < ts.length; i++) {
        const t = ts[i]!;
        for (let r = 0; r < k; r++) input.set(lat, r * c.b * E);
        timestep.fill(BigInt(t));
        await run(net, feeds, fetches, signal);
        if (cfg) guide(pred, pred, job.guidance.prior, guided, c.b * E, 0, c.b * E, 0);
        if (t > 0) for (let j = 0; j < c.b; j++) job.noise.fill('prior', i, s + j, noise.subarray(j * E, (j + 1) * E));
        sched.step({
          modelOutput: guided,
          timestep: t,
          sample: lat,
          prevTimestep: sched.prevTimestep(i),
          noise,
          out: lat,
        });
        capture?.(`prior_trajectory/${i}`, rowsOf(s, e), lat);
        progress.tick('prior', ++stepCount, ts.length * parts.length);
      }
      for (let j = 0; j < c.b * E; j++) {
        const d = j % E;
        imageEmbeddings[s * E + j] = f32(f32(lat[j]! * f32(std[d]!)) + f32(mean[d]!));
      }
    }
    timings.prior = now() - t0;
  }
  capture?.('image_embeddings', rowsOf(0, B), imageEmbeddings);

  // ── Decoder: text_proj conditioning, then the ε + learned-variance UNet with guidance ───────────────
  const t1 = now();
  const decoded = new Float32Array(B * 3 * D * D);
  {
    const proj = pack.net('text_proj');
    const net = pack.net('decoder');
    const sched = new UnCLIPScheduler(m.schedulers.decoder);
    const ts = sched.setTimesteps(job.steps.decoder);
    const px = 3 * D * D;
    let stepCount = 0;
    for (const [s, e] of parts) {
      const c = condRows(s, e);
      const img = new Float32Array(c.rows * E);
      img.set(imageEmbeddings.subarray(s * E, e * E), (k - 1) * c.b * E);
      const uncondMask = new Uint8Array(c.rows);
      if (cfg) uncondMask.fill(1, 0, c.b);
      const tp = await run(
        proj,
        {
          image_embeddings: f32t(img, [c.rows, E]),
          uncond_mask: boolt(uncondMask, [c.rows]),
          prompt_embeds: f32t(c.embeds, [c.rows, E]),
          text_encoder_hidden_states: f32t(c.hidden, [c.rows, L, H]),
        },
        undefined,
        signal,
      );
      const enc = tp.encoder_hidden_states!;
      const addT = tp.additive_clip_time_embeddings!;
      if (capture) {
        const rows = cfg ? [...rowsOf(s, e), ...rowsOf(B + s, B + e)] : rowsOf(s, e);
        capture('text_proj_encoder_hidden_states', rows, enc.data as Float32Array);
        capture('text_proj_additive_time', rows, addT.data as Float32Array);
      }
      const ctx = enc.dims[1]!;
      const extra = ctx - L; // clip_extra_context_tokens (4)
      const dmask = new Uint8Array(c.rows * ctx);
      for (let r = 0; r < c.rows; r++) {
        dmask.fill(1, r * ctx, r * ctx + extra);
        dmask.set(c.mask.subarray(r * L, (r + 1) * L), r * ctx + extra);
      }
      const x = new Float32Array(c.b * px);
      for (let j = 0; j < c.b; j++) job.noise.fill('decoder', -1, s + j, x.subarray(j * px, (j + 1) * px));
      const input = new Float32Array(c.rows * px);
      const timestep = new BigInt64Array(c.rows);
      const out = new Float32Array(c.rows * 2 * px);
      const eps = new Float32Array(c.b * px);
      const variance = new Float32Array(c.b * px);
      const noise = new Float32Array(c.b * px);
      const x0 = opts.previewEvery ? new Float32Array(c.b * px) : undefined;
      const feeds = {
        sample: f32t(input, [c.rows, 3, D, D]),
        timestep: i64t(timestep, [c.rows]),
        encoder_hidden_states: enc,
        class_labels: addT,
        attention_mask: boolt(dmask, [c.rows, ctx]),
      };
      const fetches = { out_sample: f32t(out, [c.rows, 6, D, D]) };
      for (let i = 0; i < ts.length; i++) {
        const t = ts[i]!;
        for (let r = 0; r < k; r++) input.set(x, r * c.b * px);
        timestep.fill(BigInt(t));
        await run(net, feeds, fetches, signal);
        for (let j = 0; j < c.b; j++) {
          const cond = ((k - 1) * c.b + j) * 2 * px; // the cond row (variance comes from it)
          if (cfg) guide(out, out, job.guidance.decoder, eps, px, j * 2 * px, cond, j * px);
          else eps.set(out.subarray(cond, cond + px), j * px);
          variance.set(out.subarray(cond + px, cond + 2 * px), j * px);
        }
        capture?.(`decoder_eps/${i}`, rowsOf(s, e), eps);
        if (t > 0)
          for (let j = 0; j < c.b; j++) job.noise.fill('decoder', i, s + j, noise.subarray(j * px, (j + 1) * px));
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
        capture?.(`decoder_trajectory/${i}`, rowsOf(s, e), x);
        stepCount++;
        let preview: Uint8Array | undefined;
        if (x0 && opts.previewEvery && stepCount % opts.previewEvery === 0) {
          const tiles = Array.from({ length: c.b }, (_, j) => toRgb8(x0, j, D));
          preview = await encodePng(hstack(tiles, D), D * c.b, D);
        }
        progress.tick('decoder', stepCount, ts.length * parts.length, preview);
      }
      for (let j = 0; j < x.length; j++) decoded[s * px + j] = Math.min(Math.max(x[j]!, -1), 1);
    }
  }
  timings.decoder = now() - t1;
  capture?.('decoder_image', rowsOf(0, B), decoded);
  if (!withSR) return { imageEmbeddings, images: decoded, size: D, timings };

  // ── Super-resolution: bicubic ↑ (PIL-style antialias) as conditioning, noise first; last step own UNet ─
  const t2 = now();
  const images = new Float32Array(B * 3 * O * O);
  {
    const first = pack.net('super_res_first');
    const last = pack.net('super_res_last');
    const sched = new UnCLIPScheduler(m.schedulers.super_res);
    const ts = sched.setTimesteps(job.steps.superRes);
    const px = 3 * O * O;
    let stepCount = 0;
    for (const [s, e] of parts) {
      const b = e - s;
      const up = resizeBicubicAA(decoded.subarray(s * 3 * D * D, e * 3 * D * D), b * 3, D, D, O, O);
      capture?.('upscaled', rowsOf(s, e), up);
      const y = new Float32Array(b * px);
      for (let j = 0; j < b; j++) job.noise.fill('super_res', -1, s + j, y.subarray(j * px, (j + 1) * px));
      const input = new Float32Array(b * 2 * px);
      for (let j = 0; j < b; j++) input.set(up.subarray(j * px, (j + 1) * px), (2 * j + 1) * px);
      const timestep = new BigInt64Array(b);
      const eps = new Float32Array(b * px);
      const noise = new Float32Array(b * px);
      const feeds = { sample: f32t(input, [b, 6, O, O]), timestep: i64t(timestep, [b]) };
      const fetches = { out_sample: f32t(eps, [b, 3, O, O]) };
      for (let i = 0; i < ts.length; i++) {
        const t = ts[i]!;
        for (let j = 0; j < b; j++) input.set(y.subarray(j * px, (j + 1) * px), 2 * j * px);
        timestep.fill(BigInt(t));
        const net = i === ts.length - 1 ? last : first;
        await run(net, feeds, fetches, signal);
        capture?.(`super_res_eps/${i}`, rowsOf(s, e), eps);
        if (t > 0)
          for (let j = 0; j < b; j++) job.noise.fill('super_res', i, s + j, noise.subarray(j * px, (j + 1) * px));
        sched.step({ modelOutput: eps, timestep: t, sample: y, prevTimestep: sched.prevTimestep(i), noise, out: y });
        capture?.(`super_res_trajectory/${i}`, rowsOf(s, e), y);
        progress.tick('super_res', ++stepCount, ts.length * parts.length);
      }
      images.set(y, s * px);
    }
  }
  timings.superRes = now() - t2;
  capture?.('image', rowsOf(0, B), images);
  return { imageEmbeddings, images, size: O, timings };
}

// ---------------------------------------------------------------------------------------------------------
// The request-level pipeline: validation → text → unCLIP → PNG → optional CLIP reranking

export interface GenerateOptions {
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  maxBatch?: number;
  /** Replace the seeded noise (parity). */
  noise?: NoiseSource;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / (Math.sqrt(na * nb) || 1);
}

export async function generate(pack: Pack, request: unknown, opts: GenerateOptions = {}): Promise<GenerateResult> {
  const tStart = now();
  const { prompt, settings, image } = resolveRequest(request, pack.info().defaults);
  const { signal } = opts;
  if ((settings.rerank || image) && !pack.nets.image_encoder) {
    throw new InputError(
      `${image ? 'image' : 'settings.rerank'}: the pack "${pack.manifest.name}" has no image encoder`,
    );
  }
  // image i's noise comes only from seed + i (wrapping at 2^32), so it can be re-made alone
  const seeds = Array.from({ length: settings.n }, (_, i) => (settings.seed + i) >>> 0);
  const E = pack.manifest.embedding_dim;
  const timings: Record<string, number> = {};
  const emit = (event: ProgressEvent): void => {
    if (signal?.aborted) return; // nothing more for a cancelled request
    opts.onProgress?.(event);
  };

  // Text (and, for a variation, the picture's CLIP embedding)
  const t0 = now();
  const guidance = image ? settings.guidanceDecoder > 1 : settings.guidancePrior > 1 || settings.guidanceDecoder > 1; // diffusers: one flag for both stages
  const [cond, uncond] = await encodeTexts(pack, [image ? '' : prompt, ''], signal);
  let imageEmbeddings: Float32Array | undefined;
  if (image) {
    const pixels = clipPixelValues(await decodeImage(image), pack.manifest.image_preprocess);
    const z = await encodePixels(pack, pixels, 1, signal);
    imageEmbeddings = new Float32Array(settings.n * E);
    for (let i = 0; i < settings.n; i++) imageEmbeddings.set(z, i * E);
  }
  timings.text = now() - t0;
  emit({ stage: 'text', step: 1, total: 1, elapsedMs: Math.round(now() - tStart), etaMs: 0 });

  const job: UnclipJob = {
    texts: [cond!],
    imageText: seeds.map(() => 0),
    uncond: guidance ? uncond! : null,
    steps: { prior: settings.stepsPrior, decoder: settings.stepsDecoder, superRes: settings.stepsSuperRes },
    guidance: { prior: settings.guidancePrior, decoder: settings.guidanceDecoder },
    noise: opts.noise ?? new SeededNoise(seeds),
  };
  if (imageEmbeddings) job.imageEmbeddings = imageEmbeddings;
  const out = await runUnclip(pack, job, {
    signal,
    onProgress: emit,
    previewEvery: settings.previewEvery,
    maxBatch: opts.maxBatch ?? 1,
    startedAt: tStart,
  });
  Object.assign(timings, out.timings);

  // 8-bit RGB → PNG
  const t3 = now();
  const S = out.size;
  const rgb = seeds.map((_, i) => toRgb8(out.images, i, S));
  const images: GeneratedImage[] = [];
  for (let i = 0; i < seeds.length; i++) {
    throwIfAborted(signal);
    images.push({
      seed: seeds[i]!,
      png: await encodePng(rgb[i]!, S, S),
      width: S,
      height: S,
      imageEmbedding: out.imageEmbeddings.slice(i * E, (i + 1) * E),
    });
  }
  timings.png = now() - t3;

  // CLIP reranking: cosine between z_t and the CLIP image embedding of each finished picture
  if (settings.rerank) {
    const t4 = now();
    const pre = pack.manifest.image_preprocess;
    const Sc = pre.crop_size;
    const per = 3 * Sc * Sc;
    for (const [s, e] of chunks(images.length, Math.max(1, opts.maxBatch ?? 1))) {
      const pixels = new Float32Array((e - s) * per);
      for (let i = s; i < e; i++) {
        clipPixelValues({ rgb: rgb[i]!, width: S, height: S }, pre, pixels.subarray((i - s) * per, (i - s + 1) * per));
      }
      const z = await encodePixels(pack, pixels, e - s, signal);
      for (let i = s; i < e; i++) images[i]!.score = cosine(cond!.embeds, z.subarray((i - s) * E, (i - s + 1) * E));
    }
    images.sort((a, b) => b.score! - a.score!);
    timings.rerank = now() - t4;
    emit({ stage: 'rerank', step: 1, total: 1, elapsedMs: Math.round(now() - tStart), etaMs: 0 });
  }
  throwIfAborted(signal);
  timings.total = now() - tStart;
  for (const key of Object.keys(timings)) timings[key] = Math.round(timings[key]! * 10) / 10;
  return {
    prompt,
    settings,
    truncated: !image && cond!.truncated,
    textEmbedding: cond!.embeds,
    images,
    timings,
  };
}

export { CancelledError };

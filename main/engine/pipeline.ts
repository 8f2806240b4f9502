// unCLIP sampling, following the paper's figure (Ramesh et al. 2022, fig. 2) and diffusers' UnCLIPPipeline:
//
//   caption ─tokenize─► CLIP text encoder ─► z_t, token states ─prior (CFG)─► z_i ─text_proj─► decoder (CFG)
//   ─► 32/64 px ─bicubic ↑ + super-resolution─► final image ─(CLIP rerank)
//
// Each stage is one module under stages/ (text, prior, decoder, super-resolution, rerank), shared with the
// manipulations; this file only orders them. Stage-major: every image goes through the prior, then every
// image through the decoder, then through super-resolution, so progress is monotone. Images are processed in
// chunks of `maxBatch` (1 on CPU, where batching buys nothing and per-image runs make image i reproducible
// alone, bit for bit); each image's noise comes only from its own seed (rng.ts) or from an injected source
// (parity fixtures).
import type { GenerateResult, GenerateSettings, GeneratedImage, ProgressEvent, Stage } from './api.ts';
import { CancelledError, throwIfAborted } from './errors.ts';
import { clipPixelValues, decodeImage, encodePng, hstack, toRgb8 } from './image.ts';
import type { Pack } from './pack.ts';
import { costOf, ProgressMeter } from './progress.ts';
import { InputError, resolveRequest } from './settings.ts';
import { decoderConditioning, sampleDecoder } from './stages/decoder.ts';
import { encodePixels } from './stages/image-encoder.ts';
import { chunks } from './stages/net.ts';
import { SeededNoise, type NoiseSource } from './stages/noise.ts';
import { sampleArPrior, SeededDraws, type ArDraws, type ArSampling } from './stages/ar-prior.ts';
import { sampleBestPrior } from './stages/prior.ts';
import { clipScores } from './stages/rerank.ts';
import { superResolve } from './stages/super-resolution.ts';
import { encodeTexts, textRows, type TextCond } from './stages/text.ts';

export { encodeTexts, encodePixels, SeededNoise, CancelledError };
export type { TextCond, NoiseSource };
export type { NoiseStageName } from './stages/noise.ts';

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
  /** Which prior and how many z_i draws per image (default: the diffusion prior, one draw). */
  prior?: { kind: 'diffusion' | 'ar'; samples: number; ar?: ArSampling; draws?: ArDraws };
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

const now = (): number => performance.now();
const range = (s: number, e: number): number[] => Array.from({ length: e - s }, (_, k) => s + k);

// ---------------------------------------------------------------------------------------------------------
// Prior → decoder → super-resolution over a batch of encoded captions

export async function runUnclip(pack: Pack, job: UnclipJob, opts: RunOptions = {}): Promise<UnclipOutput> {
  const m = pack.manifest;
  const E = m.embedding_dim;
  const D = m.resolution.decoder;
  const O = m.resolution.output;
  const B = job.imageText.length;
  const maxBatch = Math.max(1, opts.maxBatch ?? 1);
  const parts = chunks(B, maxBatch);
  const { signal, capture } = opts;
  const variation = job.imageEmbeddings !== undefined;
  const withSR = pack.hasSuperRes;
  const k = job.uncond !== null ? 2 : 1;
  const calls = parts.length;
  const choice = job.prior ?? { kind: 'diffusion' as const, samples: 1 };
  const useAr = choice.kind === 'ar';
  const priorCalls = useAr
    ? pack.manifest.ar_prior!.sequence_length * choice.samples
    : job.steps.prior * choice.samples;
  const progress = new ProgressMeter(
    [
      ...(variation
        ? []
        : [
            {
              stage: 'prior' as Stage,
              calls: priorCalls * calls,
              flops: costOf(useAr ? pack.net('ar_prior') : pack.nets.prior, k * maxBatch),
            },
          ]),
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
  const timings: Record<string, number> = {};
  // chunk [s, e): its captions' rows, its rows' hooks (capture by global image index, progress over all chunks)
  const text = (s: number, e: number) =>
    textRows(
      pack,
      range(s, e).map((i) => job.texts[job.imageText[i]!]!),
      job.uncond,
    );
  const tap = (s: number, e: number) =>
    capture && ((role: string, data: Float32Array) => capture(role, range(s, e), data));
  const counter = (stage: Stage) => {
    let done = 0;
    return (_step: number, total: number, preview?: Uint8Array) =>
      progress.tick(stage, ++done, total * parts.length, preview);
  };

  // 1. Prior: z_t, token states → z_i (skipped for an image variation: z_i is the picture's)
  let imageEmbeddings = job.imageEmbeddings!;
  if (!variation) {
    const t0 = now();
    const onStep = counter('prior');
    imageEmbeddings = new Float32Array(B * E);
    for (const [s, e] of parts) {
      const zi = useAr
        ? await sampleArPrior(pack, text(s, e), {
            ...choice.ar!,
            samples: choice.samples,
            draws: choice.draws!,
            first: s,
            signal,
            onStep,
            capture: tap(s, e),
          })
        : await sampleBestPrior(
            pack,
            text(s, e),
            {
              steps: job.steps.prior,
              guidance: job.guidance.prior,
              noise: job.noise,
              first: s,
              signal,
              onStep,
              capture: tap(s, e),
            },
            choice.samples,
          );
      imageEmbeddings.set(zi, s * E);
    }
    timings.prior = now() - t0;
  }
  capture?.('image_embeddings', range(0, B), imageEmbeddings);

  // 2. Decoder: text_proj(z_i, caption) → guided UNet → D px
  const t1 = now();
  const decoded = new Float32Array(B * 3 * D * D);
  {
    const tick = counter('decoder');
    const every = opts.previewEvery ?? 0;
    let step = 0;
    for (const [s, e] of parts) {
      const c = await decoderConditioning(
        pack,
        text(s, e),
        imageEmbeddings.subarray(s * E, e * E),
        job.guidance.decoder,
        signal,
      );
      if (capture) {
        const rows = k === 2 ? [...range(s, e), ...range(B + s, B + e)] : range(s, e);
        capture('text_proj_encoder_hidden_states', rows, c.encoderHiddenStates.data as Float32Array);
        capture('text_proj_additive_time', rows, c.additiveTime.data as Float32Array);
      }
      const x = await sampleDecoder(pack, c, {
        steps: job.steps.decoder,
        noise: job.noise,
        first: s,
        predOriginal: every > 0,
        signal,
        capture: tap(s, e),
        onStep: async (i, total, x0) => {
          const preview = x0 && ++step % every === 0 ? await previewPng(x0, e - s, D) : undefined;
          tick(i, total, preview);
        },
      });
      decoded.set(x, s * 3 * D * D);
    }
  }
  timings.decoder = now() - t1;
  capture?.('decoder_image', range(0, B), decoded);
  if (!withSR) return { imageEmbeddings, images: decoded, size: D, timings };

  // 3. Super-resolution: D px → O px
  const t2 = now();
  const images = new Float32Array(B * 3 * O * O);
  const onStep = counter('super_res');
  for (const [s, e] of parts) {
    const y = await superResolve(pack, decoded.subarray(s * 3 * D * D, e * 3 * D * D), {
      steps: job.steps.superRes,
      noise: job.noise,
      first: s,
      signal,
      onStep,
      capture: tap(s, e),
    });
    images.set(y, s * 3 * O * O);
  }
  timings.superRes = now() - t2;
  capture?.('image', range(0, B), images);
  return { imageEmbeddings, images, size: O, timings };
}

/** The generate settings' prior, checked against the pack (one line naming the setting). */
export function priorChoice(pack: Pack, settings: GenerateSettings, seeds: number[]): NonNullable<UnclipJob['prior']> {
  const m = pack.manifest;
  const kind = settings.prior ?? 'diffusion';
  const ar = m.ar_prior;
  if (kind === 'ar' && !ar) throw new InputError(`settings.prior: the pack "${m.name}" has no autoregressive prior`);
  const samples = settings.priorSamples ?? (kind === 'ar' ? ar!.sampling.samples : DIFFUSION_SAMPLES);
  if (kind === 'diffusion') return { kind, samples };
  const topK = settings.arTopK ?? ar!.sampling.top_k;
  if (topK > ar!.vocabulary)
    throw new InputError(`settings.arTopK: must be at most the prior's vocabulary (${ar!.vocabulary}), 0 = off`);
  return {
    kind,
    samples,
    ar: {
      guidance: ar!.sampling.guidance,
      temperature: settings.arTemperature ?? ar!.sampling.temperature,
      topK,
      topP: settings.arTopP ?? ar!.sampling.top_p,
    },
    draws: new SeededDraws(seeds),
  };
}

/** Diffusion-prior draws per image by default (models/emoji-tiny/MODEL_CARD.md, "Priors"). */
export const DIFFUSION_SAMPLES = 1;

/** The b images' x0 estimates side by side, as a PNG. */
function previewPng(x0: Float32Array, b: number, D: number): Promise<Uint8Array> {
  const tiles = Array.from({ length: b }, (_, j) => toRgb8(x0, j, D));
  return encodePng(hstack(tiles, D), D * b, D);
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
  const maxBatch = opts.maxBatch ?? 1;
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
  job.prior = priorChoice(pack, settings, seeds);
  const out = await runUnclip(pack, job, {
    signal,
    onProgress: emit,
    previewEvery: settings.previewEvery,
    maxBatch,
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
    const scores = await clipScores(pack, rgb, S, cond!.embeds, maxBatch, signal);
    images.forEach((img, i) => (img.score = scores[i]!));
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

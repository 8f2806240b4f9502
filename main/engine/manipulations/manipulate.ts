// Image manipulations over the bipartite latent (z_i, x_T) (Ramesh et al. 2022, §3): invert a picture once,
// then make variations (η > 0 around its x_T), interpolations (slerp of z_i, x_T fixed or slerped) and text
// diffs (z_i turned towards normalise(z_t(y) − z_t(y0))), each frame decoded with DDIM and super-resolved.
import { encodeImage } from './encode.ts';
import { encodePng, toRgb8 } from '../image.ts';
import type { Pack } from '../pack.ts';
import { InputError } from '../settings.ts';
import { SeededNoise } from '../stages/noise.ts';
import { embedPictures } from '../stages/rerank.ts';
import { superResolve } from '../stages/super-resolution.ts';
import { encodeTexts, type TextCond } from '../stages/text.ts';
import { ddimInvert, ddimSample, decoderCond, freshNoise, type StepListener } from './decoder.ts';
import { checkLatentPack, packFingerprint, type BipartiteLatent } from './latent.ts';
import { psnr, readPicture, rgbToPlanes, squareRgb } from './picture.ts';
import { cosine, normalisedDifference, norm, slerp } from './slerp.ts';

export const MANIP_LIMITS = {
  steps: { min: 2, max: 1000, default: 50 },
  /** Fixed-point refinements per step on the noisiest fifth of the inversion (see refinedSteps): ≈ 26 → 40 dB. */
  refine: { min: 0, max: 8, default: 2 },
  guidance: { min: 0, max: 100 },
  eta: { min: 0, max: 1 },
  frames: { min: 2, max: 64 },
  n: { min: 1, max: 64 },
  theta: { min: 0, max: 1 },
  guidedShare: { min: 0, max: 1 },
} as const;

function checkInt(field: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi)
    throw new InputError(`${field}: must be an integer in [${lo}, ${hi}] (got ${v})`);
}
function checkReal(field: string, v: number, lo: number, hi: number): void {
  if (!Number.isFinite(v) || v < lo || v > hi)
    throw new InputError(`${field}: must be a number in [${lo}, ${hi}] (got ${v})`);
}

export interface CommonOptions {
  /** DDIM steps (default: the latent's inversion steps, so η = 0 reproduces the picture). */
  steps?: number;
  /** Decoder guidance (default: the latent's inversion guidance; for variations see variationGuidance). */
  guidance?: number;
  /** Run the pack's super-resolution stage (default: when the pack has one). */
  superRes?: boolean;
  stepsSuperRes?: number;
  /** Seed of the super-resolution noise (and of η > 0 / fresh noise). */
  seed?: number;
  /** Fixed-point refinements per step on the noisiest fifth of a new inversion (0 = plain DDIM inversion). */
  refine?: number;
  signal?: AbortSignal;
  onStep?: StepListener;
}

/** One decoded picture. */
export interface Frame {
  /** Decoder output [3,D,D] in [-1,1]. */
  decoder: Float32Array;
  /** Final 8-bit RGB (after super-resolution when run) and its PNG. */
  rgb: Uint8Array;
  png: Uint8Array;
  size: number;
  /** The z_i it was decoded from. */
  zi: Float32Array;
  seed: number;
}

const checkCommon = (o: CommonOptions): void => {
  if (o.steps !== undefined) checkInt('steps', o.steps, MANIP_LIMITS.steps.min, MANIP_LIMITS.steps.max);
  if (o.guidance !== undefined) checkReal('guidance', o.guidance, MANIP_LIMITS.guidance.min, MANIP_LIMITS.guidance.max);
  if (o.stepsSuperRes !== undefined) checkInt('stepsSuperRes', o.stepsSuperRes, 2, 1000);
  if (o.seed !== undefined) checkInt('seed', o.seed, 0, 0xffffffff);
  if (o.refine !== undefined) checkInt('refine', o.refine, MANIP_LIMITS.refine.min, MANIP_LIMITS.refine.max);
};

/** Caches the text conditioning of captions within one operation. */
class Texts {
  private readonly cache = new Map<string, Promise<TextCond>>();
  constructor(
    private readonly pack: Pack,
    private readonly signal?: AbortSignal,
  ) {}
  get(caption: string): Promise<TextCond> {
    let p = this.cache.get(caption);
    if (!p) {
      p = encodeTexts(this.pack, [caption], this.signal).then((r) => r[0]!);
      this.cache.set(caption, p);
    }
    return p;
  }
}

/** Pictures decoded per network call: on 2 CPU cores a batch of 4 runs at ≈ 130 GFLOP/s against ≈ 95 for one. */
export const FRAMES_PER_CALL = 4;

/** One frame to decode: its image embedding, x_T, caption and seed (η noise and super-resolution). */
interface FrameJob {
  zi: Float32Array;
  xT: Float32Array;
  text: TextCond;
  seed: number;
}

/** What all frames of one manipulation share. */
interface RenderSettings {
  uncond: TextCond;
  steps: number;
  guidance: number;
  eta: number;
  /** Share of the steps, least noisy first, that are guided (default all); the noisiest rest run unguided, half the rows. */
  guidedShare?: number;
}

/** Decodes frames FRAMES_PER_CALL at a time; each frame is the same as if it were decoded alone. */
async function render(pack: Pack, jobs: FrameJob[], r: RenderSettings, o: CommonOptions): Promise<Frame[]> {
  const withSR = o.superRes ?? pack.hasSuperRes;
  if (withSR && !pack.hasSuperRes)
    throw new InputError(`superRes: the pack "${pack.manifest.name}" has no super-resolution stage`);
  const D = pack.manifest.resolution.decoder;
  const size = withSR ? pack.manifest.resolution.output : D;
  const out: Frame[] = [];
  for (let s = 0; s < jobs.length; s += FRAMES_PER_CALL) {
    const batch = jobs.slice(s, s + FRAMES_PER_CALL);
    const seeds = batch.map((j) => j.seed);
    const c = await decoderCond(pack, batch, r.uncond, r.guidance, o.signal);
    const share = c.rows > c.frames ? (r.guidedShare ?? 1) : 1;
    const unguided = share < 1 ? await decoderCond(pack, batch, null, 1, o.signal) : undefined;
    const xT = new Float32Array(batch.length * 3 * D * D);
    batch.forEach((j, f) => xT.set(j.xT, f * 3 * D * D));
    const decoded = await ddimSample(pack, c, xT, r.steps, {
      eta: r.eta,
      seeds,
      ...(unguided ? { unguided, unguidedSteps: r.steps - Math.round(share * r.steps) } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.onStep ? { onStep: o.onStep } : {}),
    });
    const planes = withSR
      ? await superResolve(pack, decoded, {
          steps: o.stepsSuperRes ?? pack.manifest.defaults.super_res_steps,
          noise: new SeededNoise(seeds),
          first: 0,
          signal: o.signal,
          onStep: o.onStep && ((i, total) => o.onStep!('super_res', i, total)),
        })
      : decoded;
    for (const [f, j] of batch.entries()) {
      const rgb = toRgb8(planes, f, size);
      out.push({
        decoder: decoded.slice(f * 3 * D * D, (f + 1) * 3 * D * D),
        rgb,
        png: await encodePng(rgb, size, size),
        size,
        zi: j.zi,
        seed: j.seed,
      });
    }
  }
  return out;
}

// ── Encode ──────────────────────────────────────────────────────────────────────────────────────────────
export { encodeImage };

// ── Invert ──────────────────────────────────────────────────────────────────────────────────────────────

export interface InvertOptions extends CommonOptions {
  /** Caption of the picture, when known ("" otherwise). */
  caption?: string;
  /** File name, for errors and the latent's `source`. */
  name?: string;
}

export interface InvertResult {
  latent: BipartiteLatent;
  /** The η = 0 regeneration from (z_i, x_T). */
  reconstruction: Frame;
  /** The source at decoder resolution (8-bit RGB), what the PSNR compares against. */
  source: Uint8Array;
}

export async function invert(pack: Pack, bytes: Uint8Array, o: InvertOptions = {}): Promise<InvertResult> {
  checkCommon(o);
  const name = o.name ?? 'image';
  const caption = o.caption ?? '';
  const steps = o.steps ?? MANIP_LIMITS.steps.default;
  const guidance = o.guidance ?? 1;
  const refine = o.refine ?? MANIP_LIMITS.refine.default;
  const m = pack.manifest;
  const D = m.resolution.decoder;
  const img = await readPicture(bytes, name);
  const zi = await encodeImage(pack, img, o.signal);
  const source = squareRgb(img, D);
  const texts = new Texts(pack, o.signal);
  const [text, uncond] = await Promise.all([texts.get(caption), texts.get('')]);
  const c = await decoderCond(pack, [{ zi, text }], uncond, guidance, o.signal);
  const xT = await ddimInvert(pack, c, rgbToPlanes(source, D), steps, { ...o, refine });
  const seed = o.seed ?? 0;
  const [reconstruction] = await render(pack, [{ zi, xT, text, seed }], { uncond, steps, guidance, eta: 0 }, o);
  const latent: BipartiteLatent = {
    zi,
    xT,
    ...(caption ? { zt: text.embeds } : {}),
    caption,
    inversion: { steps, guidance, refine },
    psnr: psnr(source, toRgb8(reconstruction.decoder, 0, D)),
    decoderSize: D,
    embeddingDim: m.embedding_dim,
    pack: { name: m.name, fingerprint: await packFingerprint(pack) },
    ...(o.name ? { source: name.replace(/^.*[\\/]/, '') } : {}),
  };
  return { latent, reconstruction, source };
}

async function conditioning(pack: Pack, latent: BipartiteLatent, o: CommonOptions, name: string) {
  checkCommon(o);
  await checkLatentPack(pack, latent, name);
  const texts = new Texts(pack, o.signal);
  const [text, uncond] = await Promise.all([texts.get(latent.caption), texts.get('')]);
  return {
    texts,
    text,
    uncond,
    steps: o.steps ?? latent.inversion.steps,
    guidance: o.guidance ?? latent.inversion.guidance,
    seed: o.seed ?? 0,
  };
}

/** The η = 0 regeneration of a saved latent (what every manipulation reduces to at its identity setting). */
export async function reconstruct(pack: Pack, latent: BipartiteLatent, o: CommonOptions = {}): Promise<Frame> {
  const k = await conditioning(pack, latent, o, 'latent');
  const [frame] = await render(
    pack,
    [{ zi: latent.zi, xT: latent.xT, text: k.text, seed: k.seed }],
    { ...k, eta: 0 },
    o,
  );
  return frame!;
}

// ── Variations ──────────────────────────────────────────────────────────────────────────────────────────

export interface VaryOptions extends CommonOptions {
  n?: number;
  /** DDIM η (0 reproduces the picture; 1 ≈ DDPM). */
  eta?: number;
  /** Ignore x_T: fresh noise per variation (diffusers' image-variation pipeline). */
  fresh?: boolean;
  /** Share of the DDIM steps, least noisy first, that are guided (see VARIATION_GUIDED_SHARE). */
  guidedShare?: number;
}

/**
 * Decoder guidance of a variation when none is asked for: the inversion's at η = 0, where the picture must come
 * back exactly, rising linearly to the pack's generation guidance at η = 1, where ancestral sampling has all but
 * forgotten x_T and a variation is a fresh sample of z_i (fresh x_T: always the generation guidance, as diffusers'
 * image-variation pipeline). On the 20 committed pictures × 3 seeds at η = 1 (the previous emoji-tiny weights),
 * guidance 8 instead of 1 lifts the CLIP cosine to the source from median 0.874 (83 % ≥ 0.8) to 0.923 (93 %).
 */
export function variationGuidance(pack: Pack, latent: BipartiteLatent, eta: number, fresh: boolean): number {
  const g0 = latent.inversion.guidance;
  const g1 = pack.manifest.defaults.decoder_guidance;
  return fresh ? g1 : g0 + eta * (g1 - g0);
}

/**
 * Share of a variation's DDIM steps, least noisy first, that are guided; the noisiest half runs unguided, with
 * half the rows per call (guidance in a limited interval, Kynkäänniemi et al. 2024). η = 1 CLIP cosine to the
 * source on the 20 committed pictures × seeds 7–9 (emoji-tiny, 50 steps): guidance on every step mean 0.921,
 * min 0.834, 60/60 ≥ 0.8, 493 ms a variation; on the less noisy half 0.918, min 0.804, 60/60, 442 ms. On the
 * previous emoji pack skipping the noisiest steps scored higher than guiding all (share 0.6, seeds 8–9: mean 0.924
 * vs 0.911), while guiding only the noisiest half scored lower (seed 7: 0.876 vs 0.900): the late steps need the
 * guidance, the early ones not.
 */
export const VARIATION_GUIDED_SHARE = 0.5;

/** Variation k uses seed + k for its DDIM noise (and fresh x_T, and super-resolution). */
export async function vary(pack: Pack, latent: BipartiteLatent, o: VaryOptions = {}): Promise<Frame[]> {
  const n = o.n ?? 4;
  const eta = o.eta ?? 1;
  checkInt('n', n, MANIP_LIMITS.n.min, MANIP_LIMITS.n.max);
  checkReal('eta', eta, MANIP_LIMITS.eta.min, MANIP_LIMITS.eta.max);
  if (o.guidedShare !== undefined)
    checkReal('guidedShare', o.guidedShare, MANIP_LIMITS.guidedShare.min, MANIP_LIMITS.guidedShare.max);
  const fresh = o.fresh === true;
  const k = await conditioning(
    pack,
    latent,
    { ...o, guidance: o.guidance ?? variationGuidance(pack, latent, eta, fresh) },
    'latent',
  );
  const jobs = Array.from({ length: n }, (_, i) => {
    const seed = (k.seed + i) >>> 0;
    return { zi: latent.zi, xT: fresh ? freshNoise(pack, seed) : latent.xT, text: k.text, seed };
  });
  return render(pack, jobs, { ...k, eta, guidedShare: o.guidedShare ?? VARIATION_GUIDED_SHARE }, o);
}

// ── Interpolations ──────────────────────────────────────────────────────────────────────────────────────

export type NoiseMode = 'slerp' | 'a' | 'b' | 'random';

export interface InterpolateOptions extends CommonOptions {
  frames?: number;
  /** x_T of the in-between frames: slerped (default; both ends reproduce their pictures), one of the two, or a shared random one. */
  noise?: NoiseMode;
}

/** Blends two text conditionings: the ends are exact copies; in between, lerp embeddings and states, union of masks. */
function blendText(a: TextCond, b: TextCond, t: number): TextCond {
  if (t === 0 || (a.embeds.every((v, i) => v === b.embeds[i]) && a.hidden.every((v, i) => v === b.hidden[i]))) return a;
  if (t === 1) return b;
  const lerp = (x: Float32Array, y: Float32Array) => x.map((v, i) => (1 - t) * v + t * y[i]!);
  return {
    embeds: lerp(a.embeds, b.embeds),
    hidden: lerp(a.hidden, b.hidden),
    mask: a.mask.map((v, i) => v | b.mask[i]!),
    truncated: a.truncated || b.truncated,
  };
}

export async function interpolate(
  pack: Pack,
  a: BipartiteLatent,
  b: BipartiteLatent,
  o: InterpolateOptions = {},
): Promise<{ ts: number[]; frames: Frame[] }> {
  const frames = o.frames ?? 8;
  checkInt('frames', frames, MANIP_LIMITS.frames.min, MANIP_LIMITS.frames.max);
  const mode = o.noise ?? 'slerp';
  if (!['slerp', 'a', 'b', 'random'].includes(mode))
    throw new InputError(`noise: must be slerp, a, b or random (got ${mode})`);
  const ka = await conditioning(pack, a, o, 'first latent');
  await checkLatentPack(pack, b, 'second latent');
  const textB = await ka.texts.get(b.caption);
  const steps = o.steps ?? a.inversion.steps;
  const guidance = o.guidance ?? a.inversion.guidance;
  const fixed = mode === 'a' ? a.xT : mode === 'b' ? b.xT : mode === 'random' ? freshNoise(pack, ka.seed) : null;
  const ts = Array.from({ length: frames }, (_, i) => (i === frames - 1 ? 1 : i / (frames - 1)));
  const jobs = ts.map((t) => ({
    zi: slerp(a.zi, b.zi, t),
    xT: fixed ?? slerp(a.xT, b.xT, t),
    text: blendText(ka.text, textB, t),
    seed: ka.seed,
  }));
  return { ts, frames: await render(pack, jobs, { uncond: ka.uncond, steps, guidance, eta: 0 }, o) };
}

// ── Text diffs ──────────────────────────────────────────────────────────────────────────────────────────

export interface TextDiffOptions extends CommonOptions {
  /** Caption y0 of the picture (default: the latent's caption). */
  from?: string;
  /** Target caption y. */
  to: string;
  /** θ values to decode (each in [0, 1]; the paper uses up to ~0.25–0.5). */
  thetas: number[];
}

/** z_θ = slerp(z_i, z_d·|z_i|, θ), z_d = normalise(z_t(y) − z_t(y0)), decoded with the picture's x_T. */
export async function textDiff(
  pack: Pack,
  latent: BipartiteLatent,
  o: TextDiffOptions,
): Promise<{ thetas: number[]; frames: Frame[]; from: string }> {
  const from = o.from ?? latent.caption;
  if (!from.trim()) throw new InputError('from: the latent has no caption; say what the picture shows (--from "…")');
  if (typeof o.to !== 'string' || !o.to.trim()) throw new InputError('to: must not be empty (--to "…")');
  for (const th of o.thetas) checkReal('theta', th, MANIP_LIMITS.theta.min, MANIP_LIMITS.theta.max);
  const k = await conditioning(pack, latent, o, 'latent');
  const [y0, y] = await Promise.all([k.texts.get(from), k.texts.get(o.to)]);
  const zd = normalisedDifference(y.embeds, y0.embeds);
  if (!zd)
    throw new InputError(
      'to: gives the same text embedding as --from, so the text diff is undefined; change one of them',
    );
  const len = norm(latent.zi);
  const target = zd.map((v) => v * len);
  const jobs = o.thetas.map((theta) => ({
    zi: slerp(latent.zi, target, theta),
    xT: latent.xT,
    text: k.text,
    seed: k.seed,
  }));
  return { thetas: o.thetas, frames: await render(pack, jobs, { ...k, eta: 0 }, o), from };
}

/** θ sweep of `frames` values from 0 to max. */
export function thetaSweep(frames: number, max: number): number[] {
  checkInt('frames', frames, MANIP_LIMITS.frames.min, MANIP_LIMITS.frames.max);
  checkReal('theta', max, MANIP_LIMITS.theta.min, MANIP_LIMITS.theta.max);
  return Array.from({ length: frames }, (_, i) => (i === frames - 1 ? max : (max * i) / (frames - 1)));
}

/** CLIP cosine between a frame's picture and a reference embedding. */
export async function clipCosine(
  pack: Pack,
  frame: Frame,
  reference: Float32Array,
  signal?: AbortSignal,
): Promise<number> {
  return cosine(await embedPictures(pack, [frame.rgb], frame.size, 1, signal), reference);
}

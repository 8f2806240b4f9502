// The manipulations as one engine operation, for the worker protocol (serve.ts / client.ts): a validated,
// structured-clone-able request in, PNG frames and latent files (bytes) out. Sources are picture bytes
// (inverted on the way) or the bytes of a saved `.latent.safetensors` file.
import { z } from 'zod';
import type { ManipulationRequest, ManipulationResult, ProgressEvent } from '../api.ts';
import type { Pack } from '../pack.ts';
import { InputError } from '../settings.ts';
import type { StepListener } from './decoder.ts';
import { decodeLatent, encodeLatent, LATENT_FORMAT, type BipartiteLatent } from './latent.ts';
import { interpolate, invert, MANIP_LIMITS, textDiff, vary, type CommonOptions, type Frame } from './manipulate.ts';
import { animatedGif, stripPng } from './media.ts';

const bytes = z.instanceof(Uint8Array, { error: 'must be the bytes of a picture or a .latent.safetensors file' });
const common = {
  steps: z.number().int().min(MANIP_LIMITS.steps.min).max(MANIP_LIMITS.steps.max).optional(),
  guidance: z.number().min(0).max(100).optional(),
  seed: z.number().int().min(0).max(0xffffffff).optional(),
  superRes: z.boolean().optional(),
  caption: z.string().max(10_000).optional(),
  refine: z.number().int().min(MANIP_LIMITS.refine.min).max(MANIP_LIMITS.refine.max).optional(),
};
const frames = z.number().int().min(MANIP_LIMITS.frames.min).max(MANIP_LIMITS.frames.max);
const theta = z.number().min(0).max(1);

export const ManipulationRequestSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('invert'), image: bytes, ...common }),
  z.strictObject({
    op: z.literal('vary'),
    source: bytes,
    n: z.number().int().min(1).max(64).optional(),
    eta: z.number().min(0).max(1).optional(),
    fresh: z.boolean().optional(),
    ...common,
  }),
  z.strictObject({
    op: z.literal('interpolate'),
    a: bytes,
    b: bytes,
    frames: frames.optional(),
    noise: z.enum(['slerp', 'a', 'b', 'random']).optional(),
    ...common,
  }),
  z.strictObject({
    op: z.literal('textdiff'),
    source: bytes,
    from: z.string().max(10_000).optional(),
    to: z.string().min(1).max(10_000),
    thetas: z.array(theta).min(1).max(MANIP_LIMITS.frames.max),
    ...common,
  }),
]);

/** A `.latent.safetensors` file (by its metadata) rather than a picture? */
export function isLatentBytes(b: Uint8Array): boolean {
  if (b.byteLength < 16 || b[8] !== 0x7b /* { */) return false;
  const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  return n <= b.byteLength - 8 && Buffer.from(b.subarray(8, 8 + n)).includes(`"${LATENT_FORMAT}"`);
}

export async function runManipulation(
  pack: Pack,
  request: unknown,
  opts: { signal?: AbortSignal; onProgress?: (e: ProgressEvent) => void } = {},
): Promise<ManipulationResult> {
  const t0 = performance.now();
  const parsed = ManipulationRequestSchema.safeParse(request);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(`${issue.path.join('.') || 'request'}: ${issue.message}`);
  }
  const r: ManipulationRequest = parsed.data;
  const onStep: StepListener | undefined = opts.onProgress
    ? (stage, step, total) =>
        opts.onProgress!({
          stage: stage === 'super_res' ? 'super_res' : 'decoder',
          step,
          total,
          elapsedMs: Math.round(performance.now() - t0),
          etaMs: 0,
          manipulation: { phase: stage === 'invert' ? 'invert' : 'decode' },
        })
    : undefined;
  const o: CommonOptions = {
    ...(r.steps !== undefined ? { steps: r.steps } : {}),
    ...(r.guidance !== undefined ? { guidance: r.guidance } : {}),
    ...(r.seed !== undefined ? { seed: r.seed } : {}),
    ...(r.superRes !== undefined ? { superRes: r.superRes } : {}),
    ...(r.refine !== undefined ? { refine: r.refine } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(onStep ? { onStep } : {}),
  };
  const sources: ManipulationResult['sources'] = [];
  const source = async (b: Uint8Array, field: string): Promise<[BipartiteLatent, Frame | undefined]> => {
    let latent: BipartiteLatent;
    let recon: Frame | undefined;
    if (isLatentBytes(b)) latent = decodeLatent(b, field);
    else {
      const inv = await invert(pack, b, {
        ...o,
        name: field,
        ...(r.caption !== undefined ? { caption: r.caption } : {}),
      });
      latent = inv.latent;
      recon = inv.reconstruction;
    }
    sources.push({
      latent: encodeLatent(latent),
      psnr: latent.psnr,
      caption: latent.caption,
      inverted: recon !== undefined,
    });
    return [latent, recon];
  };
  let out: { frames: Frame[]; t?: number[]; theta?: number[] };
  switch (r.op) {
    case 'invert': {
      if (isLatentBytes(r.image)) throw new InputError('image: is already a latent; give the picture');
      const [, recon] = await source(r.image, 'image');
      out = { frames: [recon!] };
      break;
    }
    case 'vary': {
      const [l] = await source(r.source, 'source');
      out = {
        frames: await vary(pack, l, {
          ...o,
          ...(r.n !== undefined ? { n: r.n } : {}),
          ...(r.eta !== undefined ? { eta: r.eta } : {}),
          ...(r.fresh !== undefined ? { fresh: r.fresh } : {}),
        }),
      };
      break;
    }
    case 'interpolate': {
      const [a] = await source(r.a, 'a');
      const [b] = await source(r.b, 'b');
      const res = await interpolate(pack, a, b, {
        ...o,
        ...(r.frames !== undefined ? { frames: r.frames } : {}),
        ...(r.noise !== undefined ? { noise: r.noise } : {}),
      });
      out = { frames: res.frames, t: res.ts };
      break;
    }
    case 'textdiff': {
      const [l] = await source(r.source, 'source');
      const res = await textDiff(pack, l, {
        ...o,
        to: r.to,
        thetas: r.thetas,
        ...(r.from !== undefined ? { from: r.from } : {}),
      });
      out = { frames: res.frames, theta: res.thetas };
      break;
    }
  }
  const frameList = out.frames.map((f, i) => ({
    png: f.png,
    width: f.size,
    height: f.size,
    seed: f.seed,
    zi: f.zi,
    ...(out.t ? { t: out.t[i]! } : {}),
    ...(out.theta ? { theta: out.theta[i]! } : {}),
  }));
  const result: ManipulationResult = {
    op: r.op,
    frames: frameList,
    sources,
    timings: { total: Math.round(performance.now() - t0) },
  };
  if (out.frames.length > 1 && r.op !== 'vary') {
    const size = out.frames[0]!.size;
    result.gif = await animatedGif(
      out.frames.map((f) => f.rgb),
      size,
    );
    result.strip = await stripPng(
      out.frames.map((f) => f.rgb),
      size,
    );
  }
  return result;
}

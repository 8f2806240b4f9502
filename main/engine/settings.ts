// Validation of generation requests, shared by the worker, the CLI and the service/IPC layer: every bad
// value becomes one line that names the field ("settings.stepsDecoder: must be an integer in [2, 1000]").
import { z } from 'zod';
import type { Backend, GenerateSettings, PackInfo } from './api.ts';

export const LIMITS = {
  n: { min: 1, max: 64 },
  steps: { min: 2, max: 1000 },
  guidance: { min: 0, max: 100 },
  previewEvery: { min: 0, max: 1000 },
  /** z_i drawn per image (the one with the highest cos(z_i, z_t) is kept, paper §2.1). */
  priorSamples: { min: 1, max: 16 },
  arTemperature: { min: 0.05, max: 10 },
  arTopK: { min: 0, max: 65536 },
  arTopP: { min: 0.01, max: 1 },
  promptChars: 10_000,
} as const;

export const PRIORS = ['diffusion', 'ar'] as const;

export const BACKENDS = ['cpu', 'webgpu', 'cuda', 'dml', 'coreml'] as const satisfies readonly Backend[];

/** Raised for bad caller input; its message is the one line to show. */
export class InputError extends Error {
  override name = 'InputError';
}

const int = (lo: number, hi: number) =>
  z
    .number({ error: `must be a number` })
    .refine((v) => Number.isInteger(v) && v >= lo && v <= hi, { message: `must be an integer in [${lo}, ${hi}]` });
const real = (lo: number, hi: number) =>
  z
    .number({ error: `must be a number` })
    .refine((v) => Number.isFinite(v) && v >= lo && v <= hi, { message: `must be a number in [${lo}, ${hi}]` });

export const GenerateSettingsSchema = z
  .object({
    n: int(LIMITS.n.min, LIMITS.n.max),
    seed: int(0, 0xffffffff),
    stepsPrior: int(LIMITS.steps.min, LIMITS.steps.max),
    stepsDecoder: int(LIMITS.steps.min, LIMITS.steps.max),
    stepsSuperRes: int(LIMITS.steps.min, LIMITS.steps.max),
    guidancePrior: real(LIMITS.guidance.min, LIMITS.guidance.max),
    guidanceDecoder: real(LIMITS.guidance.min, LIMITS.guidance.max),
    rerank: z.boolean({ error: 'must be true or false' }),
    previewEvery: int(LIMITS.previewEvery.min, LIMITS.previewEvery.max),
    /** Which prior turns z_t into z_i: the diffusion prior, or the autoregressive one (packs that have it). */
    // optional even when resolved: absent = the pack's defaults (pipeline.ts priorChoice)
    prior: z.enum(PRIORS, { error: `must be one of ${PRIORS.join(', ')}` }).optional(),
    priorSamples: int(LIMITS.priorSamples.min, LIMITS.priorSamples.max).optional(),
    /** Autoregressive prior only: softmax temperature, top-k (0 = off), top-p (1 = off). */
    arTemperature: real(LIMITS.arTemperature.min, LIMITS.arTemperature.max).optional(),
    arTopK: int(LIMITS.arTopK.min, LIMITS.arTopK.max).optional(),
    arTopP: real(LIMITS.arTopP.min, LIMITS.arTopP.max).optional(),
  })
  .strict();

export const PromptSchema = z
  .string({ error: 'must be a string' })
  .max(LIMITS.promptChars, `must be at most ${LIMITS.promptChars} characters`)
  .refine((s) => s.trim().length > 0, { message: 'must not be empty' });

export const MAX_IMAGE_BYTES = 64 * 1024 * 1024;

export const GenerateRequestSchema = z
  .object({
    prompt: z
      .string({ error: 'must be a string' })
      .max(LIMITS.promptChars, `must be at most ${LIMITS.promptChars} characters`),
    settings: GenerateSettingsSchema.partial().default({}),
    image: z
      .instanceof(Uint8Array, { error: 'must be the bytes of a PNG, JPEG or WebP picture' })
      .refine((b) => b.byteLength > 0 && b.byteLength <= MAX_IMAGE_BYTES, {
        message: `must be between 1 byte and ${MAX_IMAGE_BYTES / 1024 / 1024} MiB`,
      })
      .optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    // A variation has no prompt (diffusers uses "" on both guidance branches); text-to-image needs one.
    if (!r.image && r.prompt.trim().length === 0)
      ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'must not be empty' });
  });

export const BackendSchema = z.enum(BACKENDS, { error: `must be one of ${BACKENDS.join(', ')}` });

function firstIssue(prefix: string, error: z.ZodError): string {
  const issue = error.issues[0]!;
  const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  if (issue.code === 'unrecognized_keys') return `${path}: unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return `${path || 'request'}: ${issue.message}`;
}

/** A fresh random seed (uint32) for requests that don't give one. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0x100000000) >>> 0;
}

/** Validates a request and fills in the pack's defaults; throws InputError naming the field. */
export function resolveRequest(
  request: unknown,
  defaults: PackInfo['defaults'],
): { prompt: string; settings: GenerateSettings; image?: Uint8Array } {
  const parsed = GenerateRequestSchema.safeParse(request);
  if (!parsed.success) throw new InputError(firstIssue('', parsed.error));
  const settings = resolveSettings(parsed.data.settings, defaults);
  return parsed.data.image
    ? { prompt: parsed.data.prompt, settings, image: parsed.data.image }
    : { prompt: parsed.data.prompt, settings };
}

/** Checks the given settings without a pack (callers that want to fail before loading one). */
export function checkPartialSettings(partial: unknown): Partial<GenerateSettings> {
  const p = GenerateSettingsSchema.partial().safeParse(partial ?? {});
  if (!p.success) throw new InputError(firstIssue('settings', p.error));
  return p.data;
}

export function resolveSettings(partial: unknown, defaults: PackInfo['defaults']): GenerateSettings {
  const p = GenerateSettingsSchema.partial().safeParse(partial ?? {});
  if (!p.success) throw new InputError(firstIssue('settings', p.error));
  const full = {
    n: 1,
    seed: randomSeed(),
    rerank: false,
    previewEvery: 0,
    ...defaults,
    ...Object.fromEntries(Object.entries(p.data).filter(([, v]) => v !== undefined)),
  };
  const checked = GenerateSettingsSchema.safeParse(full);
  if (!checked.success) throw new InputError(firstIssue('settings', checked.error));
  return checked.data;
}

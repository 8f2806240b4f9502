// Shared CLI plumbing: usage errors (exit 2, one line), flag parsing, strict number flags, output helpers.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BackendSchema } from '../engine/settings.ts';
import type { Backend } from '../engine/api.ts';

/** Bad command-line input: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * node's parseArgs, except that a negative number after a flag that takes a value is that value ("--n -1" is
 * "--n=-1"), so it reaches the flag's range check instead of failing as "argument is ambiguous".
 */
export function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  const given = config.args ?? [];
  const args: string[] = [];
  for (let i = 0; i < given.length; i++) {
    const a = given[i]!;
    const next = given[i + 1];
    if (a === '--') {
      args.push(...given.slice(i));
      break;
    }
    const takesValue = a.startsWith('--') && config.options?.[a.slice(2)]?.type === 'string';
    if (takesValue && next?.startsWith('-') && NUMBER.test(next)) {
      args.push(`${a}=${next}`);
      i++;
    } else args.push(a);
  }
  return parseArgs<T>({ ...config, args });
}

/** Parses a numeric flag strictly ("12", "7.5", "1e3"); anything else names the flag. */
export function num(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!NUMBER.test(value.trim())) throw new UsageError(`--${flag}: must be a number (got "${value}")`);
  return Number(value);
}

export function backend(value: string | undefined): Backend | undefined {
  if (value === undefined) return undefined;
  const parsed = BackendSchema.safeParse(value);
  if (!parsed.success)
    throw new UsageError(`--backend: must be one of cpu, webgpu, cuda, dml, coreml (got "${value}")`);
  return parsed.data;
}

export function threads(value: string | undefined): number | undefined {
  const n = num('threads', value);
  if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > 256))
    throw new UsageError('--threads: must be an integer in [1, 256]');
  return n;
}

/** Frame delay of a sweep's GIF (ms): one rule for interpolate and textdiff. */
export const GIF_DELAY_MS = { min: 10, max: 10_000, default: 150 } as const;

export function gifDelay(value: string | undefined): number {
  const { min, max } = GIF_DELAY_MS;
  const ms = num('delay', value) ?? GIF_DELAY_MS.default;
  if (!Number.isInteger(ms) || ms < min || ms > max)
    throw new UsageError(`--delay: must be an integer in [${min}, ${max}] ms (got ${value})`);
  return ms;
}

/** Engine setting names → the flags that set them, so range errors name what the user typed. */
export const FLAG_OF: Record<string, string> = {
  n: '--n',
  seed: '--seed',
  stepsPrior: '--steps-prior',
  stepsDecoder: '--steps-decoder',
  stepsSuperRes: '--steps-sr',
  guidancePrior: '--guidance-prior',
  guidanceDecoder: '--guidance-decoder',
  rerank: '--rerank',
  prior: '--prior',
  priorSamples: '--prior-samples',
  arTemperature: '--temperature',
  arTopK: '--top-k',
  arTopP: '--top-p',
  prompt: 'prompt',
  image: '--image',
  // image manipulations (invert, vary, interpolate, textdiff)
  steps: '--steps',
  guidance: '--guidance',
  eta: '--eta',
  frames: '--frames',
  theta: '--theta',
  from: '--from',
  to: '--to',
  noise: '--noise',
};

/** "settings.stepsDecoder: must be …" → "--steps-decoder: must be …". */
export function flagMessage(message: string): string {
  const m = /^(?:settings\.)?([A-Za-z]+): (.*)$/.exec(message);
  if (m && FLAG_OF[m[1]!]) return `${FLAG_OF[m[1]!]}: ${m[2]}`;
  return message;
}

export function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

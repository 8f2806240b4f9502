// The flags every manipulation command (invert, vary, interpolate, textdiff) takes, checked before
// anything is read or loaded, on the library path and the direct path alike.
import { basename } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { isLatentPath, LATENT_SUFFIX, MANIP_LIMITS, type CommonOptions } from '../engine/manipulations/index.ts';
import { num, UsageError } from './args.ts';

export const COMMON_FLAGS = {
  pack: { type: 'string' },
  backend: { type: 'string' },
  threads: { type: 'string' },
  steps: { type: 'string' },
  guidance: { type: 'string' },
  seed: { type: 'string' },
  'steps-sr': { type: 'string' },
  refine: { type: 'string' },
  'no-sr': { type: 'boolean' },
  caption: { type: 'string' },
  out: { type: 'string' },
  'no-save': { type: 'boolean' },
  library: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export type CommonValues = {
  [K in keyof typeof COMMON_FLAGS]?: (typeof COMMON_FLAGS)[K]['type'] extends 'boolean' ? boolean : string;
};

function intFlag(flag: string, v: string | undefined): number | undefined {
  const n = num(flag, v);
  if (n !== undefined && !Number.isInteger(n)) throw new UsageError(`--${flag}: must be an integer`);
  return n;
}

/** The common flags as engine options, each range checked with a one-line message. */
export function commonOptions(values: CommonValues): CommonOptions {
  const options: CommonOptions = {};
  const steps = intFlag('steps', values.steps);
  const guidance = num('guidance', values.guidance);
  const seed = intFlag('seed', values.seed);
  const stepsSr = intFlag('steps-sr', values['steps-sr']);
  const refine = intFlag('refine', values.refine);
  if (steps !== undefined && (steps < 2 || steps > 1000))
    throw new UsageError('--steps: must be an integer in [2, 1000]');
  if (guidance !== undefined && (guidance < 0 || guidance > 100))
    throw new UsageError('--guidance: must be a number in [0, 100]');
  if (seed !== undefined && (seed < 0 || seed > 0xffffffff))
    throw new UsageError('--seed: must be an integer in [0, 4294967295]');
  if (stepsSr !== undefined && (stepsSr < 2 || stepsSr > 1000))
    throw new UsageError('--steps-sr: must be an integer in [2, 1000]');
  if (refine !== undefined && (refine < MANIP_LIMITS.refine.min || refine > MANIP_LIMITS.refine.max))
    throw new UsageError(`--refine: must be an integer in [${MANIP_LIMITS.refine.min}, ${MANIP_LIMITS.refine.max}]`);
  if (steps !== undefined) options.steps = steps;
  if (refine !== undefined) options.refine = refine;
  if (guidance !== undefined) options.guidance = guidance;
  if (seed !== undefined) options.seed = seed;
  if (stepsSr !== undefined) options.stepsSuperRes = stepsSr;
  if (values['no-sr']) options.superRes = false;
  return options;
}

/** File stem of a picture or latent path ("photos/cat.latent.safetensors" → "cat"). */
export function stemOf(path: string): string {
  const b = basename(path);
  return isLatentPath(b) ? b.slice(0, -LATENT_SUFFIX.length) : b.replace(/\.[^.]*$/, '') || 'image';
}

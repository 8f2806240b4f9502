// The recipe every PNG the studio writes carries: an A1111-style `parameters` text (what other tools
// and image sites read) and an `unclip` JSON chunk with everything needed to make the image again and
// to find its lineage — parents by library id and by sha256, since ids mean nothing in another library.

import type { PackRef, ParentRef } from '../library/library.ts';
import { a1111Parameters, embedPngMetadata } from '../library/png-metadata.ts';

export const RECIPE_VERSION = 1;

export interface Recipe {
  kind: string;
  prompt: string;
  settings: Record<string, unknown>;
  seed: number | null;
  pack: PackRef;
  width: number;
  height: number;
  parents: (ParentRef & { sha256: string })[];
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export function parametersText(r: Recipe): string {
  const s = r.settings;
  const extra: Record<string, string | number> = { Kind: r.kind, 'Model hash': r.pack.sha256.slice(0, 10) };
  for (const [key, label] of [
    ['stepsPrior', 'Prior steps'],
    ['guidancePrior', 'Prior CFG scale'],
    ['stepsSuperRes', 'Upscale steps'],
    ['eta', 'Eta'],
    ['theta', 'Theta'],
    ['t', 'Interpolation t'],
  ] as const) {
    const v = num(s[key]);
    if (v !== undefined) extra[label] = v;
  }
  if (typeof s.to === 'string') extra['Text diff to'] = s.to;
  if (r.parents.length) extra.Parents = r.parents.map((p) => p.sha256.slice(0, 12)).join(' ');
  const steps = num(s.stepsDecoder) ?? num(s.steps);
  const guidance = num(s.guidanceDecoder) ?? num(s.guidance);
  return a1111Parameters({
    prompt: r.prompt,
    ...(steps !== undefined ? { steps } : {}),
    ...(guidance !== undefined ? { guidance } : {}),
    // Generation samples with the unCLIP (DDPM) scheduler; the edits decode with DDIM.
    sampler: r.kind === 'generated' ? 'DDPM' : 'DDIM',
    seed: r.seed,
    width: r.width,
    height: r.height,
    model: r.pack.name,
    extra,
  });
}

export function recipeJson(r: Recipe): Record<string, unknown> {
  return {
    format: 'unclip-studio',
    version: RECIPE_VERSION,
    kind: r.kind,
    prompt: r.prompt,
    settings: r.settings,
    seed: r.seed,
    pack: r.pack,
    parents: r.parents.map(({ id, sha256, role, op, params }) => ({
      id,
      sha256,
      role: role ?? 'source',
      op,
      params: params ?? {},
    })),
  };
}

/** The PNG with its recipe chunks (replacing any it had). */
export function withRecipe(png: Uint8Array, r: Recipe): Uint8Array {
  return embedPngMetadata(png, { parameters: parametersText(r), unclip: recipeJson(r) });
}

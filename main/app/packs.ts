// Which pack the desktop app's engine loads. The engine's own default (main/engine/packs.ts) is
// relative to the repository, which a bundled/packaged main process is not, so main resolves the
// pack itself and passes it as --pack: the --pack flag, else $UNCLIP_PACK, else the first pack
// folder under the models directory (resources/models when packaged, <app>/models in
// development), else (development only) the tiny test pack.

import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Sub-folders of `modelsDir` holding a manifest.json, sorted by name. */
export function packsIn(modelsDir: string): string[] {
  if (!existsSync(modelsDir)) return [];
  return readdirSync(modelsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.') && existsSync(join(modelsDir, d.name, 'manifest.json')))
    .map((d) => join(modelsDir, d.name))
    .sort();
}

export function resolvePackDir(options: {
  flag: string | undefined;
  env: string | undefined;
  modelsDir: string;
  devFallback: string | null;
}): string | undefined {
  if (options.flag) return resolve(options.flag);
  if (options.env?.trim()) return resolve(options.env);
  return packsIn(options.modelsDir)[0] ?? options.devFallback ?? undefined;
}

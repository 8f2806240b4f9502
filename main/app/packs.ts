// Which pack the desktop app's engine loads. The engine's own default (main/engine/packs.ts) is
// relative to the repository, which a bundled/packaged main process is not, so main resolves the
// pack itself and passes it as --pack: the --pack flag, else $UNCLIP_PACK, else the pack chosen in
// the Models view (settings.json, while its folder still holds a manifest), else the first pack
// folder under the models directory (resources/models when packaged, <app>/models in
// development), else (development only) the tiny test pack.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { packFoldersIn } from '../engine/packs.ts';

/** Sub-folders of `modelsDir` holding a manifest.json, sorted by name. */
export const packsIn = packFoldersIn;

export function resolvePackDir(options: {
  flag: string | undefined;
  env: string | undefined;
  /** The pack chosen in the Models view (settings.json). */
  saved?: string | undefined;
  modelsDir: string;
  devFallback: string | null;
}): string | undefined {
  if (options.flag) return resolve(options.flag);
  if (options.env?.trim()) return resolve(options.env);
  if (options.saved && existsSync(join(options.saved, 'manifest.json'))) return resolve(options.saved);
  return packsIn(options.modelsDir)[0] ?? options.devFallback ?? undefined;
}

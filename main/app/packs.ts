// Which pack the desktop app's engine loads when nothing names one. The engine's own default
// (main/engine/packs.ts) is relative to the repository, which a bundled/packaged main process is not,
// so main resolves the pack itself and passes it as --pack. The choice follows the one rule of
// main/service/startup.ts (--pack, else $UNCLIP_PACK, else the pack saved by the Models view while its
// folder still holds a manifest); this is its default: the first pack folder under the models
// directory (resources/models when packaged, <app>/models in development), else (development only)
// the tiny test pack.

import { packFoldersIn } from '../engine/packs.ts';

/** Sub-folders of `modelsDir` holding a manifest.json, sorted by name. */
export const packsIn = packFoldersIn;

export function defaultAppPack(modelsDir: string, devFallback: string | null): string | undefined {
  return packsIn(modelsDir)[0] ?? devFallback ?? undefined;
}

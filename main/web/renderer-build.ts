// Web mode serves the same renderer the desktop app loads: out/renderer, built by Vite from
// renderer/ with the config in vite.renderer.config.mjs. Building only the renderer takes seconds,
// so web mode builds it on start when it is missing or older than its sources.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const rendererOutDir = join(repoRoot, 'out', 'renderer');

/** Sources the renderer bundle is made from. */
const SOURCES = [
  'renderer',
  'preload/contract.ts',
  'preload/wire.ts',
  'main/engine/api.ts',
  'main/engine/settings.ts',
  'vite.renderer.config.mjs',
  'svelte.config.js',
];

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const info = statSync(path);
  if (!info.isDirectory()) return info.mtimeMs;
  let newest = info.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** True when out/renderer is missing or older than one of its sources. */
export function rendererIsStale(): boolean {
  const built = join(rendererOutDir, 'index.html');
  if (!existsSync(built)) return true;
  const builtAt = statSync(built).mtimeMs;
  return SOURCES.some((s) => newestMtime(join(repoRoot, s)) > builtAt);
}

/** Builds out/renderer if needed (or always, with force); returns its path. */
export async function ensureRendererBuilt(
  options: { force?: boolean; log?: (line: string) => void } = {},
): Promise<string> {
  if (!options.force && !rendererIsStale()) return rendererOutDir;
  options.log?.('building the renderer (vite) ...');
  // The config by its path at run time (not bundled into out/node): its paths are the repository's.
  const config = pathToFileURL(join(repoRoot, 'vite.renderer.config.mjs')).href;
  const [{ build }, { rendererConfig }] = await Promise.all([import('vite'), import(config)]);
  await build({ ...rendererConfig, configFile: false, logLevel: 'warn', mode: 'production' });
  return rendererOutDir;
}

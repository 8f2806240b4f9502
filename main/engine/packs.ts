// Where the engine finds its pack when none is given: $UNCLIP_PACK, else the pack embedded under
// models/<name>/ (issue #5), else the tiny reference pack the tests use.
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is main/engine/packs.ts). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const TINY_PACK_DIR = join(REPO_ROOT, 'test', 'fixtures', 'tiny-pack');

/** The packs shipped with the repository (the packaged app's are in resources/models). */
export const BUNDLED_MODELS_DIR = join(REPO_ROOT, 'models');

/** Sub-folders of `modelsDir` holding a manifest.json, sorted by name (hidden ones, e.g. imports in progress, left out). */
export function packFoldersIn(modelsDir: string): string[] {
  if (!existsSync(modelsDir)) return [];
  return readdirSync(modelsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.') && existsSync(join(modelsDir, d.name, 'manifest.json')))
    .map((d) => join(modelsDir, d.name))
    .sort();
}

/** The first pack shipped under models/, else the tiny reference pack (the default when nothing names one). */
export function bundledPackDir(): string {
  return packFoldersIn(BUNDLED_MODELS_DIR)[0] ?? TINY_PACK_DIR;
}

export function defaultPackDir(): string {
  const env = process.env.UNCLIP_PACK;
  if (env && env.trim()) return resolve(env);
  return bundledPackDir();
}

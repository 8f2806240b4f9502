// Where the engine finds its pack when none is given: $UNCLIP_PACK, else the pack embedded under
// models/<name>/ (issue #5), else the tiny reference pack the tests use.
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is main/engine/packs.ts). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const TINY_PACK_DIR = join(REPO_ROOT, 'test', 'fixtures', 'tiny-pack');

export function defaultPackDir(): string {
  const env = process.env.UNCLIP_PACK;
  if (env && env.trim()) return resolve(env);
  const models = join(REPO_ROOT, 'models');
  const embedded = existsSync(models)
    ? readdirSync(models, { withFileTypes: true })
        .filter((d) => d.isDirectory() && !d.name.startsWith('.') && existsSync(join(models, d.name, 'manifest.json')))
        .map((d) => d.name)
        .sort()
    : [];
  return embedded.length ? join(models, embedded[0]!) : TINY_PACK_DIR;
}

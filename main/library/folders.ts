// Folders given by the user (library, --out, export targets), checked before anything is computed:
// kernel pseudo-filesystems are refused, also through a link (Node's recursive mkdir loops forever at
// 100 % of a core under /proc), a file in the way fails at once, and a missing folder is made one
// level at a time (no recursive mkdir, wherever a procfs is mounted). One place for the CLI, the
// library and the service; each words the failure for its own caller.

import { accessSync, constants, mkdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';

export class FolderError extends Error {
  override name = 'FolderError';
}

const PSEUDO = ['/proc', '/sys', '/dev'];

function refusePseudo(path: string, shown: string): void {
  const root = PSEUDO.find((r) => path === r || path.startsWith(r + sep));
  if (root) throw new FolderError(`${shown} is under ${root}, not an ordinary folder; choose another`);
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new FolderError(`cannot use ${path} (${code})`);
  }
}

/**
 * Checks `dir` and returns its absolute path: never a file, nor under a pseudo-filesystem. With
 * `create` it is made if missing; with `write`, it must be writable (when it exists).
 */
export function checkFolderPath(dir: string, { create = false, write = false } = {}): string {
  const abs = resolve(dir);
  refusePseudo(abs, abs);
  // the nearest part that exists, and the names below it still to make
  let base = abs;
  const missing: string[] = [];
  let st = statOrNull(base);
  while (!st) {
    missing.unshift(basename(base));
    base = dirname(base);
    st = statOrNull(base);
  }
  if (!st.isDirectory()) throw new FolderError(`${base} is not a folder`);
  refusePseudo(join(realpathSync(base), ...missing), abs); // a link into /proc
  if (missing.length > 0 && !create) return abs;
  for (let i = 1; i <= missing.length; i++) {
    const sub = join(base, ...missing.slice(0, i));
    try {
      mkdirSync(sub);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new FolderError(`cannot create ${sub} (${code ?? (e as Error).message})`);
    }
  }
  if (write)
    try {
      accessSync(abs, constants.W_OK | constants.X_OK);
    } catch (e) {
      throw new FolderError(`${abs} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  return abs;
}

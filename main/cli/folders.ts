// Output and library folders, checked before any computation: kernel pseudo-filesystems are refused
// (Node's recursive mkdir loops forever at 100 % of a core under /proc), a file in the way fails at once,
// and the folder is created up front one level at a time (no recursive mkdir, wherever a procfs is mounted)
// and must be writable.
import { access, constants, mkdir, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { UsageError } from './args.ts';

const PSEUDO = ['/proc', '/sys', '/dev'];

function refusePseudo(flag: string, path: string, shown: string): void {
  const root = PSEUDO.find((r) => path === r || path.startsWith(r + sep));
  if (root) throw new UsageError(`${flag}: ${shown} is under ${root}, not an ordinary folder; choose another`);
}

async function statOrNull(flag: string, path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new UsageError(`${flag}: cannot use ${path} (${code})`);
  }
}

/**
 * Checks the folder `dir` (given by `flag`) and returns its absolute path: never a file, nor under a pseudo-
 * filesystem. With `create` it is made if missing; with `write`, one that exists must be writable.
 */
export async function checkFolder(
  flag: string,
  dir: string,
  { create, write }: { create: boolean; write: boolean },
): Promise<string> {
  const abs = resolve(dir);
  refusePseudo(flag, abs, abs);
  // the nearest part that exists, and the names below it still to make
  let base = abs;
  const missing: string[] = [];
  let st = await statOrNull(flag, base);
  while (!st) {
    missing.unshift(basename(base));
    base = dirname(base);
    st = await statOrNull(flag, base);
  }
  if (!st.isDirectory()) throw new UsageError(`${flag}: ${base} is not a folder`);
  refusePseudo(flag, join(await realpath(base), ...missing), abs); // a link into /proc
  if (missing.length > 0 && !create) return abs;
  for (let i = 1; i <= missing.length; i++) {
    const sub = join(base, ...missing.slice(0, i));
    await mkdir(sub).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw new UsageError(`${flag}: cannot create ${sub} (${e.code ?? e.message})`);
    });
  }
  if (write)
    await access(abs, constants.W_OK | constants.X_OK).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`${flag}: ${abs} is not writable (${e.code ?? e.message})`);
    });
  return abs;
}

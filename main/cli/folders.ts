// Output and library folders for the CLI: checked by the library's folder rules (folders.ts there),
// each failure one line naming the flag, before any computation.
import { checkFolderPath, FolderError } from '../library/folders.ts';
import { UsageError } from './args.ts';

/**
 * Checks the folder `dir` (given by `flag`) and returns its absolute path: never a file, nor under a pseudo-
 * filesystem. With `create` it is made if missing; with `write`, one that exists must be writable.
 */
export async function checkFolder(
  flag: string,
  dir: string,
  options: { create: boolean; write: boolean },
): Promise<string> {
  try {
    return checkFolderPath(dir, options);
  } catch (err) {
    if (err instanceof FolderError) throw new UsageError(`${flag}: ${err.message}`);
    throw err;
  }
}

// Library errors: one line that says what happened and what to do, and a kind the service maps
// onto the contract's error codes.

export type LibraryErrorKind =
  | 'not_found' // no such image / board / job
  | 'invalid' // bad input (a name, a prompt, a file that is not an image)
  | 'conflict' // e.g. a board name taken, a job no longer queued
  | 'corrupt' // not a library, or damaged
  | 'newer' // written by a newer build
  | 'io'; // read-only folder, full disk, ...

export class LibraryError extends Error {
  override name = 'LibraryError';
  constructor(
    readonly kind: LibraryErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** SQLite's and the file system's errors, as one line a user can act on. */
export function sqliteMessage(err: unknown): string {
  const code = (err as { code?: string }).code ?? '';
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') return 'the disk is full; free some space and try again';
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === 'EACCES' || code === 'EPERM')
    return `the library folder is read-only (${code}); make it writable, or choose another library folder (Settings, or --library)`;
  if (code.startsWith('SQLITE_IOERR') || code === 'EIO')
    return `the library's disk could not be read or written (${code}); is it unplugged, full or failing? Put it back and try again`;
  if (code === 'SQLITE_CANTOPEN') return `cannot open the database file (${message})`;
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') return `the database is damaged (${message})`;
  if (code === 'SQLITE_BUSY') return 'the library is busy in another process; try again';
  return code ? `${message} (${code})` : message;
}

/** The library's folder (its database file) is no longer where it was opened. */
export function goneMessage(dir: string): string {
  return `the library folder ${dir} is gone (deleted, moved, or on a disk that was unplugged); put it back and try again, or choose another library folder (Settings, or --library)`;
}

// Opening a library's SQLite file: refuse what we must not touch (not SQLite, corrupt, written by a
// newer build), back the file up before migrating, then WAL + foreign keys + a busy timeout so the
// desktop app, web mode and the CLI can share one library.

import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LibraryError, sqliteMessage } from './errors.ts';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.ts';

export type DB = Database.Database;

export const DB_FILE = 'library.sqlite';
const SQLITE_MAGIC = 'SQLite format 3\0';

/** The first 16 bytes of a SQLite database file; a non-empty file without them is refused untouched. */
function checkHeader(file: string): void {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return; // a new library
  }
  if (size === 0) return; // SQLite treats an empty file as an empty database
  const head = Buffer.alloc(16);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (head.toString('latin1') !== SQLITE_MAGIC)
    throw new LibraryError(
      'corrupt',
      `${file} is not an unCLIP Studio library (not a SQLite database); left untouched`,
    );
}

function userVersion(db: DB, file: string): number {
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } catch (err) {
    throw new LibraryError('corrupt', `${file} is damaged (${sqliteMessage(err)}); left untouched`);
  }
}

export interface OpenedDb {
  db: DB;
  /** The schema version the file had before this open (0: new). */
  fromVersion: number;
  /** Where the pre-migration backup went, when one was made. */
  backup?: string;
}

/** Opens (creating or migrating) the database of the library folder `dir`. */
export function openDatabase(dir: string, options: { readonly?: boolean } = {}): OpenedDb {
  const file = join(dir, DB_FILE);
  checkHeader(file);
  let db: DB;
  try {
    db = new Database(file, { readonly: options.readonly === true, fileMustExist: options.readonly === true });
  } catch (err) {
    throw new LibraryError('io', `cannot open ${file}: ${sqliteMessage(err)}`);
  }
  try {
    db.pragma('busy_timeout = 5000');
    const version = userVersion(db, file);
    if (version > SCHEMA_VERSION)
      throw new LibraryError(
        'newer',
        `${dir} was written by a newer unCLIP Studio (library schema ${version}; this version reads up to ${SCHEMA_VERSION}); left untouched — update the studio to open it`,
      );
    if (options.readonly) return { db, fromVersion: version };
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    const migrated = migrate(db, dir, version);
    return { db, fromVersion: version, ...migrated };
  } catch (err) {
    db.close();
    if (err instanceof LibraryError) throw err;
    throw new LibraryError('io', `cannot open ${file}: ${sqliteMessage(err)}`);
  }
}

/** Applies the missing migrations; a library that had data is copied to backups/ first. */
function migrate(db: DB, dir: string, version: number): { backup?: string } {
  if (version === SCHEMA_VERSION) return {};
  let backup: string | undefined;
  if (version > 0) {
    mkdirSync(join(dir, 'backups'), { recursive: true });
    backup = join(dir, 'backups', `library-v${version}-${new Date().toISOString().replace(/[:.]/g, '-')}.sqlite`);
    // VACUUM INTO writes a consistent snapshot, even while another process writes.
    db.prepare('VACUUM INTO ?').run(backup);
  }
  // Two processes may open an old library at once: the immediate transaction serialises them, and
  // the version is read again inside it.
  db.transaction(() => {
    const now = db.pragma('user_version', { simple: true }) as number;
    for (let v = now; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!.sql);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
  return backup ? { backup } : {};
}

// The library's files: content-addressed (sha256 names in 256 shard folders) and written so that a
// kill at any moment leaves either no file or the whole file: temp name → fsync → rename → fsync
// the folder. Temp files carry their writer's id, so an open can tell a dead writer's leftovers
// from a live process's file in progress.

import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import { LibraryError, sqliteMessage } from './errors.ts';

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

const SHA = /^[0-9a-f]{64}$/;

/** This process's id in temp names and journals: host, pid and a per-process nonce. */
export function newOwnerId(): string {
  return `${hostname().replace(/[^\w.-]/g, '_')}~${process.pid}~${randomBytes(4).toString('hex')}`;
}

/** Owners of the libraries open in this process (a count each): alive, whatever their nonce. */
const openHere = new Map<string, number>();

export function holdOwner(owner: string): void {
  openHere.set(owner, (openHere.get(owner) ?? 0) + 1);
}

export function releaseOwner(owner: string): void {
  const n = (openHere.get(owner) ?? 0) - 1;
  if (n > 0) openHere.set(owner, n);
  else openHere.delete(owner);
}

/** Whether the process that wrote `owner` may still be running (another host's: assume so). */
export function ownerAlive(owner: string, self: string): boolean {
  if (owner === self || openHere.has(owner)) return true;
  const [host, pid] = owner.split('~');
  if (host !== hostname().replace(/[^\w.-]/g, '_')) return true;
  const n = Number(pid);
  if (!Number.isInteger(n) || n <= 0) return false;
  if (n === process.pid) return false; // our pid, a nonce not open here: an earlier process that died
  try {
    process.kill(n, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function fsyncDir(dir: string): void {
  // Windows cannot open a folder for fsync; its renames are durable through NTFS's journal.
  if (process.platform === 'win32') return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class FileStore {
  readonly filesDir: string;
  readonly thumbsDir: string;
  readonly tmpDir: string;

  constructor(
    readonly root: string,
    readonly owner: string,
  ) {
    this.filesDir = join(root, 'files');
    this.thumbsDir = join(root, 'thumbs');
    this.tmpDir = join(root, 'tmp');
  }

  ensureFolders(): void {
    for (const d of [this.filesDir, this.thumbsDir, this.tmpDir]) mkdirSync(d, { recursive: true });
  }

  /** files/ab/abcdef….png */
  pathOf(sha: string, ext: string): string {
    if (!SHA.test(sha)) throw new LibraryError('invalid', `not a sha256: ${sha.slice(0, 80)}`);
    return join(this.filesDir, sha.slice(0, 2), `${sha}.${ext}`);
  }

  thumbPathOf(sha: string): string {
    if (!SHA.test(sha)) throw new LibraryError('invalid', `not a sha256: ${sha.slice(0, 80)}`);
    return join(this.thumbsDir, sha.slice(0, 2), `${sha}.webp`);
  }

  /** Writes `bytes` at `path` atomically and durably (no-op when a file is already there: same content). */
  writeAtomic(path: string, bytes: Uint8Array): void {
    if (existsSync(path)) return;
    const dir = join(path, '..');
    const tmp = join(this.tmpDir, `${this.owner}~${randomBytes(6).toString('hex')}.tmp`);
    try {
      const madeShard = !existsSync(dir);
      // One level at a time, never the library folder itself (a folder that vanished is not made
      // again here), and so that a read-only disk says EROFS (a recursive mkdir says ENOENT).
      if (madeShard) for (const d of [join(dir, '..'), dir]) mkdirOnce(d);
      const fd = openSync(tmp, 'wx');
      try {
        let off = 0;
        while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
      fsyncDir(dir);
      if (madeShard) fsyncDir(join(dir, '..'));
    } catch (err) {
      rmSync(tmp, { force: true });
      throw new LibraryError('io', `cannot write ${relative(this.root, path)} in ${this.root}: ${sqliteMessage(err)}`);
    }
  }

  remove(path: string): void {
    try {
      unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /** Removes temp files left by writers that are gone; returns how many. */
  sweepTemps(): number {
    let removed = 0;
    let names: string[];
    try {
      names = readdirSync(this.tmpDir);
    } catch {
      return 0;
    }
    for (const name of names) {
      const owner = name.split('~').slice(0, 3).join('~');
      const stale = !ownerAlive(owner, this.owner) || Date.now() - safeMtime(join(this.tmpDir, name)) > 24 * 3600e3;
      if (stale) {
        rmSync(join(this.tmpDir, name), { force: true });
        removed++;
      }
    }
    return removed;
  }

  /** Every content file on disk: sha256 → path (for `check`). */
  *walk(dir = this.filesDir): Generator<{ sha: string; path: string }> {
    let shards: string[];
    try {
      shards = readdirSync(dir);
    } catch {
      return;
    }
    for (const shard of shards) {
      let names: string[];
      try {
        names = readdirSync(join(dir, shard));
      } catch {
        continue;
      }
      for (const name of names) {
        const sha = name.split('.')[0] ?? '';
        yield { sha, path: join(dir, shard, name) };
      }
    }
  }
}

function mkdirOnce(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

function safeMtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

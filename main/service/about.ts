// The About box's data: the app's name and version, the pack the engine runs, and the attribution
// and licence texts of both (issue: "ATTRIBUTION/NOTICE text for every source goes into the pack
// and the app's About box"). Pack files are read from the pack's folder; a hostile pack gets no
// more than ABOUT_DOCUMENT_MAX_BYTES per file, a bounded number of licence files, only regular
// files, and nothing that resolves outside its folder.

import { constants } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ABOUT_DOCUMENT_MAX_BYTES, type AboutDocument, type AboutView } from '../../preload/contract.ts';
import type { PackInfo } from '../engine/api.ts';

/** Where package.json, LICENSE and THIRD_PARTY_NOTICES.md live when running from the repository. */
export const REPOSITORY_APP_DIR = fileURLToPath(new URL('../../', import.meta.url));

/** Pack documents shown by name, in this order; then the LICENSE-*.txt files, sorted. */
export const PACK_DOCUMENTS = ['ATTRIBUTION.md', 'NOTICE.md'] as const;
export const PACK_LICENSE_FILE = /^LICENSE-[\w.+-]{1,64}\.txt$/;
/** At most this many LICENSE-*.txt files of one pack are shown. */
export const MAX_PACK_LICENSES = 32;
/** The app's own documents, after the pack's. */
export const APP_DOCUMENTS = ['THIRD_PARTY_NOTICES.md', 'LICENSE'] as const;

// Opening a FIFO would block; O_NONBLOCK (where the platform has it) makes that fail fast.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/**
 * Reads the first `maxBytes` bytes of a regular file as UTF-8 (a character cut by the limit is
 * dropped). Null when the file is missing, not a regular file or unreadable.
 */
export async function readCapped(
  file: string,
  maxBytes = ABOUT_DOCUMENT_MAX_BYTES,
): Promise<{ text: string; truncated: boolean } | null> {
  const info = await stat(file).catch(() => null);
  if (!info?.isFile()) return null;
  const handle = await open(file, OPEN_FLAGS).catch(() => null);
  if (!handle) return null;
  try {
    if (!(await handle.stat()).isFile()) return null;
    // One byte more than the cap tells whether the file is longer.
    const buffer = Buffer.alloc(maxBytes + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    const truncated = filled > maxBytes;
    const bytes = buffer.subarray(0, Math.min(filled, maxBytes));
    // stream: true holds back a multi-byte character the cap cut in half instead of writing U+FFFD.
    const text = new TextDecoder('utf-8').decode(bytes, { stream: truncated });
    return { text, truncated };
  } catch {
    return null;
  } finally {
    await handle.close();
  }
}

/** True when `file` (after symlinks) lies inside `root` (already real). */
async function inside(root: string, file: string): Promise<boolean> {
  const real = await realpath(file).catch(() => null);
  return real !== null && real.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** The pack's attribution documents: ATTRIBUTION.md, NOTICE.md, then LICENSE-*.txt sorted. */
export async function packDocuments(packDir: string, maxBytes = ABOUT_DOCUMENT_MAX_BYTES): Promise<AboutDocument[]> {
  const root = await realpath(packDir).catch(() => null);
  if (root === null) return [];
  const names = await readdir(root).catch(() => [] as string[]);
  const present = new Set(names);
  const licenses = names
    .filter((name) => PACK_LICENSE_FILE.test(name))
    .sort()
    .slice(0, MAX_PACK_LICENSES);
  const documents: AboutDocument[] = [];
  for (const name of [...PACK_DOCUMENTS.filter((n) => present.has(n)), ...licenses]) {
    const file = join(root, name);
    if (!(await inside(root, file))) continue;
    const read = await readCapped(file, maxBytes);
    if (read) documents.push({ name, source: 'pack', ...read });
  }
  return documents;
}

/** Name, version and licence from the app's package.json (productName preferred). */
export async function appInfo(appDir: string): Promise<AboutView['app']> {
  const read = await readCapped(join(appDir, 'package.json'), 64 * 1024);
  let json: Record<string, unknown> = {};
  try {
    const parsed: unknown = read && !read.truncated ? JSON.parse(read.text) : {};
    if (parsed !== null && typeof parsed === 'object') json = parsed as Record<string, unknown>;
  } catch {
    // An unreadable package.json leaves the fallbacks below.
  }
  const field = (key: string): string | undefined => (typeof json[key] === 'string' ? json[key] : undefined);
  return {
    name: field('productName') ?? field('name') ?? 'unCLIP Studio',
    version: field('version') ?? 'unknown',
    license: field('license') ?? 'unknown',
  };
}

export interface AboutOptions {
  /** The app's folder: package.json, THIRD_PARTY_NOTICES.md, LICENSE. */
  appDir: string;
  /** The pack the engine runs (engine.info), or null when it has none. */
  pack: PackInfo | null;
  /** Why `pack` is null. */
  packError?: string;
  maxBytes?: number;
}

export async function aboutView({ appDir, pack, packError, maxBytes }: AboutOptions): Promise<AboutView> {
  const app = await appInfo(appDir);
  const documents = pack ? await packDocuments(pack.dir, maxBytes) : [];
  for (const name of APP_DOCUMENTS) {
    const read = await readCapped(join(appDir, name), maxBytes);
    if (read) documents.push({ name, source: 'app', ...read });
  }
  return {
    app,
    pack: pack ? { name: pack.name, title: pack.title, license: pack.license, attribution: pack.attribution } : null,
    ...(pack === null && packError !== undefined ? { packError } : {}),
    documents,
  };
}

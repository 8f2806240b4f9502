// Model packs on this computer: the bundled ones (models/<name>/ in a checkout, resources/models
// when packaged) and those the user imported into <app data>/models. Listing reads each manifest
// with the engine's own validation; verifying re-hashes every file the manifest lists; importing
// checks a folder the same way, copies it under a hidden temporary name (hashing the bytes as they
// are written) and renames it into place, so a failed or interrupted import leaves no pack behind.

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { readManifest, sha256 } from '../engine/pack-files.ts';
import { packFoldersIn } from '../engine/packs.ts';
import type { Manifest } from '../engine/manifest.ts';
import { checkFolderPath, FolderError } from '../library/folders.ts';
import { StudioError, type PackSource, type PackVerifyView, type PackView } from '../../preload/contract.ts';
import { oneLine } from './errors.ts';

/** Where packs are looked for. */
export interface PackFolders {
  /** Folders of bundled packs (each sub-folder with a manifest.json is one). */
  bundled: string[];
  /** The user's packs (imports go here). */
  user: string;
}

/** A pack folder found on disk, its manifest read (or why it could not be). */
export type FoundPack =
  { dir: string; source: PackSource; manifest: Manifest } | { dir: string; source: PackSource; error: string };

/** Files an import brings along besides those the manifest lists: notices, licences, model card, configs. */
const DOCUMENT = /\.(md|txt|json)$/i;
/** A hidden import folder older than this was left by a process that died; it is removed. */
const STALE_IMPORT_MS = 60 * 60 * 1000;
const IMPORT_PREFIX = '.import-';

async function found(dir: string, source: PackSource): Promise<FoundPack> {
  try {
    return { dir, source, manifest: await readManifest(dir) };
  } catch (err) {
    return { dir, source, error: oneLine(err) };
  }
}

/** Every pack folder: bundled first, then the user's; `extra` (the running pack, when elsewhere) last. */
export async function findPacks(folders: PackFolders, extra?: string): Promise<FoundPack[]> {
  const dirs: [string, PackSource][] = [
    ...folders.bundled.flatMap((d) => packFoldersIn(d).map((p): [string, PackSource] => [p, 'bundled'])),
    ...packFoldersIn(folders.user).map((p): [string, PackSource] => [p, 'user']),
  ];
  if (extra && !dirs.some(([d]) => resolve(d) === resolve(extra))) dirs.push([resolve(extra), 'other']);
  return Promise.all(dirs.map(([d, source]) => found(resolve(d), source)));
}

/** The manifest and every file it lists, in bytes (what the pack occupies). */
async function packBytes(dir: string, manifest: Manifest): Promise<number> {
  const names = ['manifest.json', ...Object.keys(manifest.files)];
  const sizes = await Promise.all(
    names.map((n) =>
      stat(join(dir, n)).then(
        (s) => s.size,
        () => 0,
      ),
    ),
  );
  return sizes.reduce((a, b) => a + b, 0);
}

export async function packView(p: FoundPack & { manifest: Manifest }, activeDir: string | null): Promise<PackView> {
  const m = p.manifest;
  const c = m.components;
  return {
    name: m.name,
    title: m.title,
    description: m.description,
    dir: p.dir,
    source: p.source,
    bytes: await packBytes(p.dir, m),
    schemaVersion: m.schema_version,
    exporterVersion: m.source.exporter_version,
    precision: m.source.precision ?? 'fp32',
    pipeline: m.source.pipeline,
    networks: Object.keys(c).filter((role) => c[role as keyof typeof c]),
    optional: {
      arPrior: Boolean(c.ar_prior),
      imageEncoder: Boolean(c.image_encoder),
      superRes: Boolean(c.super_res_first && c.super_res_last),
    },
    resolution: { decoder: m.resolution.decoder, output: m.resolution.output },
    license: m.license,
    attribution: m.attribution,
    active: activeDir !== null && resolve(activeDir) === p.dir,
  };
}

/** Re-hashes every file the manifest lists; each file's result, and one line that sums them up. */
export async function verifyPack(dir: string, manifest: Manifest): Promise<PackVerifyView> {
  const realDir = await realpath(dir);
  const files: PackVerifyView['files'] = [];
  for (const [name, digest] of Object.entries(manifest.files)) {
    const file = join(dir, name);
    const st = await stat(file).catch(() => null);
    if (!st?.isFile()) {
      files.push({ name, bytes: null, ok: false, problem: 'missing' });
      continue;
    }
    const real = await realpath(file);
    if (!real.startsWith(realDir + sep)) {
      files.push({ name, bytes: st.size, ok: false, problem: `points outside the pack folder (to ${real})` });
      continue;
    }
    const actual = await sha256(file);
    files.push(
      actual === digest
        ? { name, bytes: st.size, ok: true }
        : { name, bytes: st.size, ok: false, problem: 'sha256 differs from manifest.json (corrupt or modified)' },
    );
  }
  const bad = files.filter((f) => !f.ok);
  const summary = bad.length
    ? `${bad.length} of ${files.length} files fail: ${bad.map((f) => `${f.name}: ${f.problem}`).join('; ')}`
    : `all ${files.length} files match manifest.json`;
  return { name: manifest.name, dir, ok: bad.length === 0, files, summary };
}

/** Copies `from` to `to` (a new file), hashing what is written; fsynced. Returns the sha256. */
async function copyHashed(from: string, to: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(
    createReadStream(from),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        hash.update(chunk);
        yield chunk;
      }
    },
    createWriteStream(to, { flags: 'wx' }),
  );
  const handle = await open(to, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

async function removeStaleImports(userDir: string): Promise<void> {
  const entries = await readdir(userDir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isDirectory() || !e.name.startsWith(IMPORT_PREFIX)) continue;
    const dir = join(userDir, e.name);
    const st = await stat(dir).catch(() => null);
    if (st && Date.now() - st.mtimeMs > STALE_IMPORT_MS) await rm(dir, { recursive: true, force: true });
  }
}

const invalid = (message: string): StudioError => new StudioError('invalid_argument', `packs.import: ${message}`);

/**
 * Imports the pack folder `source` into `userDir`/<name>. Refused, with nothing written: a folder
 * that is not a pack, a name already installed (`installed`), a listed file that is missing or
 * whose bytes do not match their sha256. Returns the new pack's folder.
 */
export async function importPack(
  source: string,
  userDir: string,
  installed: FoundPack[],
): Promise<{ dir: string; manifest: Manifest }> {
  let from: string;
  try {
    from = checkFolderPath(source);
  } catch (err) {
    if (err instanceof FolderError) throw invalid(err.message);
    throw err;
  }
  const st = await stat(from).catch(() => null);
  if (!st?.isDirectory()) throw invalid(`${from} is not a folder`);
  let manifest: Manifest;
  try {
    manifest = await readManifest(from);
  } catch (err) {
    throw invalid(`${from} is not a model pack: ${oneLine(err)}`);
  }
  const same = installed.find((p) => 'manifest' in p && p.manifest.name === manifest.name);
  if (same)
    throw new StudioError(
      'conflict',
      `packs.import: a pack named "${manifest.name}" is already installed (${same.dir})`,
    );
  const target = join(userDir, manifest.name);
  if (await stat(target).catch(() => null))
    throw new StudioError('conflict', `packs.import: ${target} already exists; remove it or rename the pack`);

  try {
    checkFolderPath(userDir, { create: true, write: true });
  } catch (err) {
    if (err instanceof FolderError) throw new StudioError('library', `packs.import: ${err.message}`);
    throw err;
  }
  await removeStaleImports(userDir);
  const tmp = join(userDir, `${IMPORT_PREFIX}${manifest.name}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  try {
    const realFrom = await realpath(from);
    for (const [name, digest] of Object.entries(manifest.files)) {
      const file = join(from, name);
      const fst = await stat(file).catch(() => null);
      if (!fst?.isFile()) throw invalid(`${file} is missing (listed in manifest.json); nothing was imported`);
      if (!(await realpath(file)).startsWith(realFrom + sep))
        throw invalid(`${file} points outside the pack folder; nothing was imported`);
      if ((await copyHashed(file, join(tmp, name))) !== digest)
        throw invalid(`${file}: sha256 does not match manifest.json (corrupt or modified); nothing was imported`);
    }
    for (const e of await readdir(from, { withFileTypes: true })) {
      if (!e.isFile() || !DOCUMENT.test(e.name) || e.name in manifest.files) continue;
      await copyHashed(join(from, e.name), join(tmp, e.name));
    }
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST')
      throw new StudioError('conflict', `packs.import: ${target} appeared meanwhile; nothing was imported`);
    throw err;
  }
  return { dir: target, manifest };
}

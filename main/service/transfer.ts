// Import and export. An import checks every file before anything is stored (one that is not an image,
// is damaged or is a decompression bomb is left out, named with its reason); each file is kept byte for byte
// with the recipe it carries (ours or A1111's), and the CLIP encoding + DDIM inversion are queued.
// An export writes each image file (its recipe already embedded) and, for an inverted image, its
// `.latent.safetensors` beside it, so another install imports the folder with latents and lineage
// and without duplicates (files are matched by sha256).

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp, { type Metadata } from 'sharp';
import { decodeLatent, encodeLatent, LATENT_SUFFIX } from '../engine/manipulations/latent.ts';
import { MAX_INPUT_PIXELS } from '../engine/manipulations/picture.ts';
import { checkFolderPath, FolderError } from '../library/folders.ts';
import { MIME_EXT, type ImageMime, type Library, type PackRef } from '../library/library.ts';
import { parseA1111Parameters, readPngMetadata } from '../library/png-metadata.ts';
import { StudioError, type ExportView } from '../../preload/contract.ts';
import { inversionData, storedLatent } from './latents.ts';

export interface ImportFile {
  name: string;
  bytes: Uint8Array;
}

const FORMATS: Record<string, ImageMime> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

interface CheckedImage {
  name: string;
  bytes: Uint8Array;
  sha256: string;
  mime: ImageMime;
  width: number;
  height: number;
  prompt: string;
  settings: Record<string, unknown>;
  /** Parents named by the file's unclip recipe (sha256), for lineage across libraries. */
  parents: { sha256: string; role: string; op: string; params: Record<string, unknown> }[];
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const baseName = (name: string): string => name.replace(/\.[^.]*$/, '');

/** Reads an image's header (never its pixels) and its recipe; a bad file is a one-line StudioError. */
async function checkImage(file: ImportFile): Promise<CheckedImage> {
  let meta: Metadata;
  try {
    // The header only (no pixels are decoded): unlimited here, so a bomb is named as one below.
    meta = await sharp(file.bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw new StudioError('invalid_argument', `${file.name}: not a PNG, JPEG or WebP image`);
  }
  const mime = FORMATS[meta.format ?? ''];
  if (!mime)
    throw new StudioError(
      'invalid_argument',
      `${file.name}: ${meta.format} images are not supported (PNG, JPEG or WebP)`,
    );
  const { width = 0, height = 0 } = meta;
  if (width < 1 || height < 1) throw new StudioError('invalid_argument', `${file.name}: the image has no pixels`);
  if (width * height > MAX_INPUT_PIXELS)
    throw new StudioError(
      'invalid_argument',
      `${file.name}: ${width}×${height} is over the ${MAX_INPUT_PIXELS / 1e6} Mpx limit (a decompression bomb?); scale it down first`,
    );
  // Full decode, bounded by the pixel limit: a truncated file fails here rather than in the engine later.
  try {
    await sharp(file.bytes, { limitInputPixels: MAX_INPUT_PIXELS }).raw().toBuffer();
  } catch {
    throw new StudioError('invalid_argument', `${file.name}: the image data is damaged or cut short`);
  }
  const md = mime === 'image/png' ? readPngMetadata(file.bytes) : { text: {} };
  const recipe = isRecipe(md.unclip) ? md.unclip : null;
  const a1111 = md.parameters ? parseA1111Parameters(md.parameters) : null;
  const prompt = (recipe?.prompt ?? a1111?.prompt ?? '').slice(0, 10_000);
  const settings: Record<string, unknown> = { source: file.name };
  if (recipe) settings.recipe = recipe;
  if (md.parameters) settings.parameters = md.parameters;
  return {
    name: file.name,
    bytes: file.bytes,
    sha256: sha256(file.bytes),
    mime,
    width,
    height,
    prompt,
    settings,
    parents: recipe?.parents ?? [],
  };
}

interface RecipeChunk {
  format: 'unclip-studio';
  prompt: string;
  parents: { sha256: string; role: string; op: string; params: Record<string, unknown> }[];
}
function isRecipe(v: unknown): v is RecipeChunk {
  const r = v as RecipeChunk | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.format === 'unclip-studio' &&
    typeof r.prompt === 'string' &&
    Array.isArray(r.parents) &&
    r.parents.every((p) => typeof p?.sha256 === 'string' && typeof p.op === 'string')
  );
}

export interface ImportOutcome {
  imported: number[];
  duplicates: number[];
  /** Images stored with the latent that came with them (no inversion job needed). */
  withLatents: number[];
  /** Images whose CLIP encoding + inversion must still run (queue an import job each). */
  toInvert: number[];
  /** Files that are not pictures the studio takes, each with its one-line reason (naming it). */
  refused: { name: string; error: string }[];
}

/**
 * Stores a batch of files as lineage roots (or children of parents already here). A file that is
 * not a picture the studio takes is left out with its reason, the others are stored; when none is,
 * the batch is refused with every reason.
 */
export async function importFiles(library: Library, pack: PackRef, files: ImportFile[]): Promise<ImportOutcome> {
  const latents = new Map<string, Uint8Array>();
  const pictures: ImportFile[] = [];
  for (const f of files) {
    if (f.name.endsWith(LATENT_SUFFIX)) latents.set(f.name.slice(0, -LATENT_SUFFIX.length), f.bytes);
    else pictures.push(f);
  }
  if (pictures.length === 0) throw new StudioError('invalid_argument', 'import: no image files given');
  const checked: CheckedImage[] = [];
  const refused: ImportOutcome['refused'] = [];
  for (const f of pictures)
    try {
      checked.push(await checkImage(f));
    } catch (err) {
      if (!(err instanceof StudioError)) throw err;
      refused.push({ name: f.name, error: err.message });
    }
  if (checked.length === 0) throw new StudioError('invalid_argument', refused.map((r) => r.error).join('; '));
  // Parents first, so an exported family comes back with its lineage.
  const inBatch = new Set(checked.map((c) => c.sha256));
  checked.sort(
    (x, y) =>
      Number(x.parents.some((p) => inBatch.has(p.sha256))) - Number(y.parents.some((p) => inBatch.has(p.sha256))),
  );
  const out: ImportOutcome = { imported: [], duplicates: [], withLatents: [], toInvert: [], refused };
  const seen = new Set<string>();
  for (const c of checked) {
    const existing = library.hasFile(c.sha256);
    if (existing !== null || seen.has(c.sha256)) {
      if (existing !== null) out.duplicates.push(existing);
      continue;
    }
    seen.add(c.sha256);
    const latentBytes = latents.get(c.name) ?? latents.get(baseName(c.name));
    let latent = null;
    if (latentBytes) {
      try {
        const l = decodeLatent(latentBytes, `${c.name}${LATENT_SUFFIX}`);
        if (l.pack.fingerprint === pack.sha256) latent = l;
      } catch {
        latent = null; // a damaged latent is no reason to refuse the picture: it is inverted again
      }
    }
    const parents = c.parents.flatMap((p) => {
      const id = library.hasFile(p.sha256);
      return id === null ? [] : [{ id, role: p.role ?? 'source', op: p.op, params: p.params ?? {} }];
    });
    const [id] = await library.save([
      {
        kind: 'import',
        prompt: c.prompt,
        settings: c.settings,
        pack,
        width: c.width,
        height: c.height,
        bytes: c.bytes,
        mime: c.mime,
        parents,
        ...(latent
          ? {
              embedding: { zi: latent.zi, zt: latent.zt ?? null },
              inversion: inversionData(latent),
            }
          : {}),
      },
    ]);
    out.imported.push(id!);
    (latent ? out.withLatents : out.toInvert).push(id!);
  }
  return out;
}

const slug = (text: string): string =>
  text
    .normalize('NFKD')
    .replace(/[^\p{L}\p{N}]+/gu, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48) || 'image';

/** An export folder: not a system folder, created when missing, a writable directory. */
export function exportFolder(dir: string): string {
  try {
    return checkFolderPath(dir, { create: true, write: true });
  } catch (err) {
    if (err instanceof FolderError) throw new StudioError('invalid_argument', `export: ${err.message}`);
    throw err;
  }
}

/** Writes a file through a temp name, so a crash never leaves half an image under the real name. */
function writeNew(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

export function exportImages(library: Library, ids: number[], dir: string): ExportView {
  const abs = exportFolder(dir);
  let written = 0;
  let skipped = 0;
  for (const image of library.getMany(ids)) {
    const name = `${image.id}-${slug(image.prompt)}`;
    const file = join(abs, `${name}.${MIME_EXT[image.mime]}`);
    const bytes = library.readFile(image.id);
    if (existsSync(file) && sha256(readFileSync(file)) === image.sha256) skipped++;
    else {
      writeNew(file, bytes);
      written++;
    }
    const latent = storedLatent(library, image);
    if (latent)
      writeNew(
        join(abs, `${name}${LATENT_SUFFIX}`),
        encodeLatent({ ...latent, source: `${name}.${MIME_EXT[image.mime]}` }),
      );
  }
  return { dir: abs, written, skipped };
}

// The manipulation commands' default path: the edit is a job in the library, exactly as the studio
// queues it. Sources are library ids (#12, or 12 when no such file exists) or pictures, which are
// imported first (a picture already in the library is found by its sha256, not stored twice); the
// results are saved with their lineage, and --out also writes them as PNGs (and a sweep's GIF and
// strip). --no-save and latent files take the direct path in invert.ts instead.

import { copyFile, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import { checkPicture } from '../engine/manipulations/picture.ts';
import { isLatentPath } from '../engine/manipulations/latent.ts';
import { animatedGif, stripPng } from '../engine/manipulations/media.ts';
import { StudioError, type ImageView, type JobView } from '../../preload/contract.ts';
import { backend, fmtMs, threads, UsageError } from './args.ts';
import { checkFolder } from './folders.ts';
import { commonOptions, stemOf, type CommonValues } from './manip-flags.ts';
import { runLibraryJob } from './library-job.ts';
import { openCliStudio, type CliStudio } from './studio-session.ts';

/** The library id an argument names (#12; a bare 12 when no file has that name), else null. */
export function libraryId(arg: string, fileExists: (path: string) => boolean): number | null {
  const m = /^(#?)(\d{1,15})$/.exec(arg);
  if (!m || (!m[1] && fileExists(arg))) return null;
  const id = Number(m[2]);
  if (id < 1) throw new UsageError(`${arg}: library ids start at 1`);
  return id;
}

export type EditSource = { arg: string; flag: string; id: number } | { arg: string; flag: string; bytes: Uint8Array };

/** Flags of the direct path that a library job has no place for. */
const DIRECT_ONLY = ['steps-sr', 'caption'] as const;

/**
 * Whether this run goes through the library, its sources read and checked (nothing computed yet).
 * null: the direct path (--no-save, or a latent file among the sources).
 */
export async function librarySources(
  values: CommonValues,
  inputs: [arg: string, flag: string][],
  fileExists: (path: string) => boolean,
): Promise<EditSource[] | null> {
  commonOptions(values); // every flag's range first, whichever path runs
  const ids = inputs.map(([arg]) => libraryId(arg, fileExists));
  const latent = inputs.find(([arg], k) => ids[k] === null && isLatentPath(arg));
  if (values['no-save'] || latent) {
    const k = ids.findIndex((id) => id !== null);
    if (k >= 0)
      throw new UsageError(
        values['no-save']
          ? `${inputs[k]![0]}: a library image is edited in the library; drop --no-save`
          : `${latent![0]}: a latent file cannot be edited in the library beside library images; give its picture`,
      );
    return null;
  }
  for (const flag of DIRECT_ONLY)
    if (values[flag] !== undefined)
      throw new UsageError(
        `--${flag}: only with --no-save (library edits use the image's own prompt and the pack's settings)`,
      );
  const out: EditSource[] = [];
  for (const [k, [arg, flag]] of inputs.entries()) {
    const id = ids[k];
    if (id !== null && id !== undefined) {
      out.push({ arg, flag, id });
      continue;
    }
    const bytes = await readFile(arg).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`${flag}: cannot read ${arg} (${e.code ?? e.message})`);
    });
    await checkPicture(bytes, arg);
    out.push({ arg, flag, bytes });
  }
  return out;
}

/** The contract's shared manipulation arguments from the (already checked) common flags. */
export function commonArgs(values: CommonValues): Record<string, unknown> {
  const o = commonOptions(values);
  return {
    ...(o.steps !== undefined ? { steps: o.steps } : {}),
    ...(o.guidance !== undefined ? { guidance: o.guidance } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...(o.superRes === false ? { superRes: false } : {}),
  };
}

export interface LibraryEdit {
  command: 'vary' | 'interpolate' | 'textdiff' | 'invert';
  values: CommonValues;
  sources: EditSource[];
  /** The job's arguments, given the sources' library ids. */
  args: (ids: number[]) => Record<string, unknown>;
  /** The PNG name under --out of result k. */
  fileName: (image: ImageView, k: number) => string;
  /** A sweep (interpolate, textdiff): its GIF and strip under --out too. */
  sweep?: { stem: string; delay: number };
  /** Invert with default settings: a picture's import job already does it (no second job). */
  importInverts?: boolean;
}

/** Turns the service's bad-argument and unknown-id errors into bad input (exit 2). */
async function asInput<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof StudioError && ['invalid_argument', 'not_found'].includes(err.code))
      throw new UsageError(err.message);
    throw err;
  }
}

async function resolveSources(studio: CliStudio, sources: EditSource[]): Promise<{ ids: number[]; jobs: JobView[] }> {
  const ids: number[] = [];
  const jobs: JobView[] = [];
  for (const s of sources) {
    if ('id' in s) {
      ids.push((await asInput(studio.call('gallery.get', { id: s.id }))).image.id);
      continue;
    }
    const r = await asInput(studio.call('gallery.import', { files: [{ name: basename(s.arg), bytes: s.bytes }] }));
    ids.push((r.imported[0] ?? r.duplicates[0])!);
    jobs.push(...r.jobs);
  }
  return { ids, jobs };
}

async function writeOutputs(
  studio: CliStudio,
  edit: LibraryEdit,
  outDir: string | undefined,
  images: ImageView[],
): Promise<{ files: (string | null)[]; gif: string | null; strip: string | null }> {
  if (!outDir || images.length === 0) return { files: images.map(() => null), gif: null, strip: null };
  const files: string[] = [];
  for (const [k, img] of images.entries()) {
    const file = join(outDir, edit.fileName(img, k));
    await copyFile((await studio.service.media('image', img.id)).path, file);
    files.push(file);
  }
  if (!edit.sweep) return { files, gif: null, strip: null };
  const size = images[0]!.width;
  const rgb = await Promise.all(
    files.map(async (f) => new Uint8Array(await sharp(f).removeAlpha().resize(size, size).raw().toBuffer())),
  );
  const gif = join(outDir, `${edit.sweep.stem}.gif`);
  const strip = join(outDir, `${edit.sweep.stem}-strip.png`);
  await sharp(await animatedGif(rgb, size, edit.sweep.delay)).toFile(gif);
  await sharp(await stripPng(rgb, size)).toFile(strip);
  return { files, gif, strip };
}

/** Runs the edit as a library job and reports its saved images (and --out files). */
export async function editInLibrary(edit: LibraryEdit): Promise<number> {
  const v = edit.values;
  const outDir = v.out !== undefined ? await checkFolder('--out', v.out, { create: true, write: true }) : undefined;
  const library =
    v.library !== undefined ? await checkFolder('--library', v.library, { create: false, write: false }) : undefined;
  const be = backend(v.backend);
  const th = threads(v.threads);
  const studio = openCliStudio({
    ...(library !== undefined ? { library } : {}),
    engine: {
      ...(v.pack !== undefined ? { packDir: v.pack } : {}),
      ...(be ? { backend: be } : {}),
      ...(th ? { threads: th } : {}),
    },
  });
  try {
    const t0 = performance.now();
    // The pack first, unwrapped: a broken pack is bad input (exit 2) naming its file, not a failed job.
    const info = await studio.service.handlers['engine.info']({});
    const { ids, jobs: imports } = await resolveSources(studio, edit.sources);
    let job: JobView;
    let images: ImageView[];
    if (edit.importInverts && imports.length > 0) {
      // A picture imported now is inverted by its import job, with the default settings asked for.
      job = await studio.service.waitForJob(imports[0]!.id);
      if (job.status !== 'done') throw new Error(job.error ?? `job ${job.id} ${job.status}`);
      images = [];
    } else {
      ({ job, images } = await asInput(runLibraryJob(studio, edit.command, edit.args(ids))));
    }
    const { files, gif, strip } = await writeOutputs(studio, edit, outDir, images);
    const sources = await Promise.all(ids.map(async (id) => (await studio.call('gallery.get', { id })).image));
    const result = {
      command: edit.command,
      job: job.id,
      sources: sources.map((s, k) => ({
        id: s.id,
        arg: edit.sources[k]!.arg,
        inverted: s.inverted,
        psnr: s.psnr === null ? null : Math.round(s.psnr * 100) / 100,
      })),
      images: images.map((img, k) => ({
        id: img.id,
        kind: img.kind,
        seed: img.seed,
        width: img.width,
        height: img.height,
        sha256: img.sha256,
        file: files[k] ?? null,
      })),
      gif,
      strip,
      pack: info.pack.name,
      library: { dir: studio.libraryDir, saved: true, ids: images.map((i) => i.id) },
      timings: { total: Math.round(performance.now() - t0) },
    };
    if (v.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      for (const s of result.sources)
        console.log(
          `source: library image ${s.id} (${s.arg})  x_T ${s.inverted ? `stored, PSNR ${s.psnr} dB` : 'not yet'}`,
        );
      for (const i of result.images)
        console.log(
          `library image ${i.id}  ${i.kind}  ${i.width}×${i.height}  seed ${i.seed}${i.file ? `  ${i.file}` : ''}`,
        );
      if (gif) console.log(gif);
      if (strip) console.log(strip);
      console.log(
        `${images.length} image(s) in ${fmtMs(result.timings.total)} (pack ${info.pack.name}), saved in ${studio.libraryDir}`,
      );
    }
    return 0;
  } finally {
    await studio.close();
  }
}

/** The name results are filed under: a picture's file stem, or image-<id>. */
export function sourceStem(s: EditSource): string {
  return 'id' in s ? `image-${s.id}` : stemOf(s.arg);
}

// `unclip invert <picture>`: CLIP-encode a picture and DDIM-invert the decoder to its x_T, once; writes the
// bipartite latent (<stem>.latent.safetensors, beside the picture unless --out) and the η = 0 reconstruction,
// with its PSNR. Also the plumbing the other manipulation commands share (vary, interpolate, textdiff): flags
// and the output folder are checked, and every input read and validated, before anything is computed or written.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Backend } from '../engine/api.ts';
import { Engine } from '../engine/engine.ts';
import {
  animatedGif,
  checkLatentPack,
  invert,
  isLatentPath,
  LATENT_SUFFIX,
  loadLatent,
  saveLatent,
  stripPng,
  type BipartiteLatent,
  type CommonOptions,
  type Frame,
} from '../engine/manipulations/index.ts';
import { checkPicture } from '../engine/manipulations/picture.ts';
import type { Pack } from '../engine/pack.ts';
import { backend, fmtMs, num, parseFlags, threads, UsageError } from './args.ts';
import { checkFolder } from './folders.ts';
import { editInLibrary, librarySources } from './library-edit.ts';
import { COMMON_FLAGS, commonOptions, stemOf, type CommonValues } from './manip-flags.ts';
import { cliStartup, engineOptionsOf } from './startup.ts';

export interface Session {
  engine: Engine;
  pack: Pack;
  options: CommonOptions;
  caption: string | undefined;
  save: boolean;
  /** Where outputs go: --out (created up front unless --no-save), or the command's default. */
  dir: string;
  library: string | undefined;
  json: boolean;
  tty: boolean;
  close(): Promise<void>;
}

/** Parses the common flags and checks the output folder (before the pack loads), then loads the pack in-process. */
export async function openSession(values: CommonValues, defaultDir: string): Promise<Session> {
  const options = commonOptions(values);
  const be: Backend | undefined = backend(values.backend);
  const th = threads(values.threads);
  const library =
    values.library !== undefined
      ? await checkFolder('--library', values.library, { create: false, write: false })
      : undefined;
  // --no-save keeps the result out of the library; --out still writes the files.
  const save = !values['no-save'] || values.out !== undefined;
  // only --out is made if missing: a missing default (the picture's folder) means a missing picture
  const dir = await checkFolder('--out', values.out ?? defaultDir, {
    create: save && values.out !== undefined,
    write: save,
  });
  const tty = !values.json && process.stderr.isTTY === true;
  if (tty) options.onStep = (stage, step, total) => process.stderr.write(`\r\x1b[K${stage} ${step}/${total}`);
  const engine = new Engine({
    ...engineOptionsOf(cliStartup({ pack: values.pack, backend: be, threads: th })),
    warn: (m) => process.stderr.write(`warning: ${m}\n`),
  });
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  options.signal = controller.signal;
  try {
    const pack = await engine.pack();
    return {
      engine,
      pack,
      options,
      caption: values.caption,
      save,
      dir,
      library,
      json: values.json === true,
      tty,
      close: async () => {
        process.off('SIGINT', onSigint);
        await engine.close();
      },
    };
  } catch (e) {
    process.off('SIGINT', onSigint);
    await engine.close();
    throw e;
  }
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export async function writeOut(s: Session, name: string, bytes: Uint8Array): Promise<string | null> {
  if (!s.save) return null;
  const file = join(s.dir, name);
  await writeFile(file, bytes);
  return file;
}

/** A sweep's animation and strip (`<stem>.gif`, `<stem>-strip.png`); paths are null with --no-save. */
export async function writeSweep(
  s: Session,
  stem: string,
  frames: Frame[],
  delay: number,
): Promise<{ gif: string | null; strip: string | null }> {
  const rgb = frames.map((f) => f.rgb);
  const size = frames[0]!.size;
  return {
    gif: await writeOut(s, `${stem}.gif`, await animatedGif(rgb, size, delay)),
    strip: await writeOut(s, `${stem}-strip.png`, await stripPng(rgb, size)),
  };
}

export interface Source {
  path: string;
  stem: string;
  latent: BipartiteLatent;
  /** Where the latent lives (the given file, or where it was saved after inverting; null if not saved). */
  latentFile: string | null;
  inverted: boolean;
  /** The η = 0 reconstruction, when the picture was inverted now. */
  reconstruction?: Frame;
}

/** An input read and checked, nothing computed yet: a saved latent of this pack, or a picture's bytes. */
type Input = { path: string; latent: BipartiteLatent } | { path: string; bytes: Uint8Array };

async function readInput(s: Session, path: string, flag: string): Promise<Input> {
  if (isLatentPath(path)) {
    const latent = await loadLatent(path);
    if (s.caption !== undefined)
      throw new UsageError(`--caption: ${path} is a latent, its caption is fixed ("${latent.caption}")`);
    await checkLatentPack(s.pack, latent, path);
    return { path, latent };
  }
  const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`${flag}: cannot read ${path} (${e.code ?? e.message})`);
  });
  await checkPicture(bytes, path);
  return { path, bytes };
}

/**
 * A command's sources (`[path, flag]` each): saved latents as they are, pictures inverted now. Every input is
 * read and checked first, and the new latents are saved into `s.dir` (unless --no-save) only once all are
 * inverted, so a bad input leaves nothing behind.
 */
export async function loadSources(s: Session, inputs: [path: string, flag: string][]): Promise<Source[]> {
  const read: Input[] = [];
  for (const [path, flag] of inputs) read.push(await readInput(s, path, flag));
  const sources: Source[] = [];
  for (const input of read) {
    const { path } = input;
    const stem = stemOf(path);
    if ('latent' in input) {
      sources.push({ path, stem, latent: input.latent, latentFile: resolve(path), inverted: false });
      continue;
    }
    const r = await invert(s.pack, input.bytes, {
      ...s.options,
      name: path,
      ...(s.caption !== undefined ? { caption: s.caption } : {}),
    });
    if (s.tty) process.stderr.write('\r\x1b[K');
    const latentFile = s.save ? join(s.dir, stem + LATENT_SUFFIX) : null;
    sources.push({ path, stem, latent: r.latent, latentFile, inverted: true, reconstruction: r.reconstruction });
  }
  for (const src of sources) if (src.inverted && src.latentFile) await saveLatent(src.latentFile, src.latent);
  return sources;
}

export function finish(s: Session, result: Record<string, unknown>, lines: string[]): void {
  if (s.tty) process.stderr.write('\r\x1b[K');
  if (s.json)
    process.stdout.write(
      `${JSON.stringify({ ...result, library: { saved: false, ...(s.library ? { dir: s.library } : {}) } }, null, 2)}\n`,
    );
  else for (const l of lines) console.log(l);
  // The direct path: --no-save, or a latent file (the library keeps pictures, not latent files).
  if (!s.json)
    process.stderr.write(
      s.save
        ? 'note: a latent file is edited outside the library; give its picture or library id (#12) to keep the result there\n'
        : 'note: --no-save: nothing was added to the library\n',
    );
}

export const latentJson = (l: BipartiteLatent) => ({
  caption: l.caption,
  inversion: l.inversion,
  psnr: Number.isFinite(l.psnr) ? Math.round(l.psnr * 100) / 100 : null,
  pack: l.pack,
});

export async function invertCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({ args: argv, allowPositionals: true, options: { ...COMMON_FLAGS } });
  if (positionals.length !== 1) throw new UsageError('invert takes one picture (unclip invert photo.png)');
  const path = positionals[0]!;
  if (isLatentPath(path)) throw new UsageError(`${path}: is already a latent; give the picture`);
  const lib = await librarySources(values, [[path, 'picture']], existsSync);
  if (lib) {
    const steps = num('steps', values.steps);
    const refine = num('refine', values.refine);
    return editInLibrary({
      command: 'invert',
      values,
      sources: lib,
      args: ([id]) => ({
        id,
        ...(steps !== undefined ? { steps } : {}),
        ...(refine !== undefined ? { refine } : {}),
      }),
      fileName: () => '',
      importInverts: steps === undefined && refine === undefined,
    });
  }
  const t0 = performance.now();
  const s = await openSession(values, dirname(resolve(path)));
  try {
    const src = (await loadSources(s, [[path, 'picture']]))[0]!;
    const rec = src.reconstruction!;
    const recFile = await writeOut(s, `${src.stem}-reconstruction.png`, rec.png);
    const ms = performance.now() - t0;
    finish(
      s,
      {
        command: 'invert',
        source: resolve(path),
        latent: src.latentFile,
        reconstruction: { file: recFile, width: rec.size, height: rec.size, sha256: sha256(rec.png) },
        ...latentJson(src.latent),
        timings: { total: Math.round(ms) },
      },
      [
        `${src.latentFile ?? '(latent not saved)'}`,
        `${recFile ?? '(reconstruction not saved)'}  ${rec.size}×${rec.size}`,
        `reconstruction PSNR ${src.latent.psnr.toFixed(2)} dB at ${src.latent.decoderSize} px (${src.latent.inversion.steps} DDIM steps, pack ${src.latent.pack.name}) in ${fmtMs(ms)}`,
      ],
    );
    return 0;
  } finally {
    await s.close();
  }
}

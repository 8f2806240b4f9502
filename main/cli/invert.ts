// `unclip invert <picture>`: CLIP-encode a picture and DDIM-invert the decoder to its x_T, once; writes the
// bipartite latent (<stem>.latent.safetensors, beside the picture unless --out) and the η = 0 reconstruction,
// with its PSNR. Also the plumbing the other manipulation commands share (vary, interpolate, textdiff): flags
// and the output folder are checked, and every input read and validated, before anything is computed or written.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import type { Backend } from '../engine/api.ts';
import { Engine } from '../engine/engine.ts';
import {
  animatedGif,
  checkLatentPack,
  invert,
  isLatentPath,
  LATENT_SUFFIX,
  loadLatent,
  MANIP_LIMITS,
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

/** Flags every manipulation command takes. */
export const COMMON_FLAGS = {
  pack: { type: 'string' },
  backend: { type: 'string' },
  threads: { type: 'string' },
  steps: { type: 'string' },
  guidance: { type: 'string' },
  seed: { type: 'string' },
  'steps-sr': { type: 'string' },
  refine: { type: 'string' },
  'no-sr': { type: 'boolean' },
  caption: { type: 'string' },
  out: { type: 'string' },
  'no-save': { type: 'boolean' },
  library: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

type CommonValues = {
  [K in keyof typeof COMMON_FLAGS]?: (typeof COMMON_FLAGS)[K]['type'] extends 'boolean' ? boolean : string;
};

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

function intFlag(flag: string, v: string | undefined): number | undefined {
  const n = num(flag, v);
  if (n !== undefined && !Number.isInteger(n)) throw new UsageError(`--${flag}: must be an integer`);
  return n;
}

/** Parses the common flags and checks the output folder (before the pack loads), then loads the pack in-process. */
export async function openSession(values: CommonValues, defaultDir: string): Promise<Session> {
  const options: CommonOptions = {};
  const steps = intFlag('steps', values.steps);
  const guidance = num('guidance', values.guidance);
  const seed = intFlag('seed', values.seed);
  const stepsSr = intFlag('steps-sr', values['steps-sr']);
  const refine = intFlag('refine', values.refine);
  if (steps !== undefined && (steps < 2 || steps > 1000))
    throw new UsageError('--steps: must be an integer in [2, 1000]');
  if (guidance !== undefined && (guidance < 0 || guidance > 100))
    throw new UsageError('--guidance: must be a number in [0, 100]');
  if (seed !== undefined && (seed < 0 || seed > 0xffffffff))
    throw new UsageError('--seed: must be an integer in [0, 4294967295]');
  if (stepsSr !== undefined && (stepsSr < 2 || stepsSr > 1000))
    throw new UsageError('--steps-sr: must be an integer in [2, 1000]');
  if (refine !== undefined && (refine < MANIP_LIMITS.refine.min || refine > MANIP_LIMITS.refine.max))
    throw new UsageError(`--refine: must be an integer in [${MANIP_LIMITS.refine.min}, ${MANIP_LIMITS.refine.max}]`);
  if (steps !== undefined) options.steps = steps;
  if (refine !== undefined) options.refine = refine;
  if (guidance !== undefined) options.guidance = guidance;
  if (seed !== undefined) options.seed = seed;
  if (stepsSr !== undefined) options.stepsSuperRes = stepsSr;
  if (values['no-sr']) options.superRes = false;
  const be: Backend | undefined = backend(values.backend);
  const th = threads(values.threads);
  const library =
    values.library !== undefined
      ? await checkFolder('--library', values.library, { create: false, write: false })
      : undefined;
  const save = !values['no-save'];
  // only --out is made if missing: a missing default (the picture's folder) means a missing picture
  const dir = await checkFolder('--out', values.out ?? defaultDir, {
    create: save && values.out !== undefined,
    write: save,
  });
  const tty = !values.json && process.stderr.isTTY === true;
  if (tty) options.onStep = (stage, step, total) => process.stderr.write(`\r\x1b[K${stage} ${step}/${total}`);
  const engine = new Engine({
    ...(values.pack !== undefined ? { packDir: values.pack } : {}),
    ...(be ? { backend: be } : {}),
    ...(th ? { threads: th } : {}),
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

/** File stem of a picture or latent path ("photos/cat.latent.safetensors" → "cat"). */
export function stemOf(path: string): string {
  const b = basename(path);
  return isLatentPath(b) ? b.slice(0, -LATENT_SUFFIX.length) : b.replace(/\.[^.]*$/, '') || 'image';
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
      `${JSON.stringify({ ...result, ...(s.library ? { library: { dir: s.library, saved: false } } : {}) }, null, 2)}\n`,
    );
  else for (const l of lines) console.log(l);
  if (s.library) process.stderr.write(`note: the gallery is not built yet; nothing was added to ${s.library}\n`);
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

// `unclip generate "<prompt>"`: a generation job in the library (or, with --no-save, one request straight
// to the worker engine); PNGs written into --out with their seeds.
import { createHash } from 'node:crypto';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GenerateSettings, ProgressEvent } from '../engine/api.ts';
import { createWorkerEngine, type WorkerEngineOptions } from '../engine/host.ts';
import { checkPartialSettings } from '../engine/settings.ts';
import { backend, fmtMs, num, parseFlags, threads, UsageError } from './args.ts';
import { checkFolder } from './folders.ts';
import { runLibraryJob } from './library-job.ts';
import { cliStartup, engineOptionsOf } from './startup.ts';
import { openCliStudio } from './studio-session.ts';

/** File-name stem from the prompt: lower-case ASCII words joined by "-", at most 48 characters. */
export function slug(prompt: string): string {
  const s = prompt
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48)
    .replace(/-+$/, '');
  return s || 'image';
}

export async function generateCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args: argv,
    allowPositionals: true,
    options: {
      n: { type: 'string' },
      seed: { type: 'string' },
      'steps-prior': { type: 'string' },
      'steps-decoder': { type: 'string' },
      'steps-sr': { type: 'string' },
      'guidance-prior': { type: 'string' },
      'guidance-decoder': { type: 'string' },
      rerank: { type: 'boolean' },
      prior: { type: 'string' },
      'prior-samples': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      image: { type: 'string' },
      pack: { type: 'string' },
      backend: { type: 'string' },
      threads: { type: 'string' },
      out: { type: 'string' },
      'no-save': { type: 'boolean' },
      library: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length > 1)
    throw new UsageError(`generate takes one prompt (quote it); got ${positionals.length} words`);
  const prompt = positionals[0] ?? '';
  if (!values.image && prompt.trim() === '')
    throw new UsageError('prompt: must not be empty (unclip generate "a red rocket")');

  const settings: Partial<GenerateSettings> = {};
  const set = <K extends keyof GenerateSettings>(key: K, v: GenerateSettings[K] | undefined): void => {
    if (v !== undefined) settings[key] = v;
  };
  set('n', num('n', values.n));
  set('seed', num('seed', values.seed));
  set('stepsPrior', num('steps-prior', values['steps-prior']));
  set('stepsDecoder', num('steps-decoder', values['steps-decoder']));
  set('stepsSuperRes', num('steps-sr', values['steps-sr']));
  set('guidancePrior', num('guidance-prior', values['guidance-prior']));
  set('guidanceDecoder', num('guidance-decoder', values['guidance-decoder']));
  if (values.rerank) settings.rerank = true;
  if (values.prior !== undefined) {
    if (values.prior !== 'diffusion' && values.prior !== 'ar')
      throw new UsageError(`--prior: must be diffusion or ar (got ${values.prior})`);
    settings.prior = values.prior;
  }
  set('priorSamples', num('prior-samples', values['prior-samples']));
  set('arTemperature', num('temperature', values.temperature));
  set('arTopK', num('top-k', values['top-k']));
  set('arTopP', num('top-p', values['top-p']));
  checkPartialSettings(settings); // range errors before any pack is loaded
  const be = backend(values.backend);
  const th = threads(values.threads);
  const library =
    values.library !== undefined
      ? await checkFolder('--library', values.library, { create: false, write: false })
      : undefined;
  const save = !values['no-save'];
  const outDir = await checkFolder('--out', values.out ?? '.', { create: save, write: save });
  let image: Uint8Array | undefined;
  if (values.image !== undefined) {
    image = await readFile(values.image).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`--image: cannot read ${values.image} (${e.code ?? e.message})`);
    });
  }

  const engineOptions = {
    ...(values.pack !== undefined ? { packDir: values.pack } : {}),
    ...(be ? { backend: be } : {}),
    ...(th ? { threads: th } : {}),
  };
  // Saved (the default): a job in the library, like the studio's. A picture's variations (--image) and
  // --no-save runs go straight to the engine.
  if (save && !image)
    return generateIntoLibrary({ prompt, settings, outDir, library, engineOptions, json: values.json });

  const engine = createWorkerEngine(
    engineOptionsOf(cliStartup({ pack: engineOptions.packDir, backend: be, threads: th })),
  );
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  const tty = process.stderr.isTTY;
  const onProgress = (e: ProgressEvent): void => {
    if (!tty) return;
    process.stderr.write(
      `\r\x1b[K${e.stage} ${e.step}/${e.total}  ${fmtMs(e.elapsedMs)} elapsed, ~${fmtMs(e.etaMs)} left`,
    );
  };
  try {
    const info = await engine.info();
    const result = await engine.generate(image ? { prompt, settings, image } : { prompt, settings }, {
      signal: controller.signal,
      onProgress,
    });
    if (tty) process.stderr.write('\r\x1b[K');
    if (result.truncated) {
      process.stderr.write(`note: the prompt is longer than CLIP's 77 tokens; only the first 75 were used\n`);
    }
    const stem = image
      ? `variation-${slug(values.image!.replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, ''))}`
      : slug(prompt);
    const images = [];
    for (const img of result.images) {
      const file = save ? join(outDir, `${stem}-${img.seed}.png`) : null;
      if (file) await writeFile(file, img.png);
      images.push({
        seed: img.seed,
        file,
        width: img.width,
        height: img.height,
        sha256: createHash('sha256').update(img.png).digest('hex'),
        ...(img.score !== undefined ? { score: img.score } : {}),
      });
    }
    if (values.json) {
      const out = {
        prompt: result.prompt,
        truncated: result.truncated,
        settings: result.settings,
        pack: { name: info.pack.name, dir: info.pack.dir },
        backends: info.sessionBackends,
        images,
        timings: result.timings,
        ...(library ? { library: { dir: library, saved: false } } : {}),
      };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      for (const img of images) {
        const score = img.score !== undefined ? `  clip score ${img.score.toFixed(4)}` : '';
        console.log(`${img.file ?? `(not saved) seed ${img.seed}`}  ${img.width}×${img.height}${score}`);
      }
      console.log(
        `${result.images.length} image(s) in ${fmtMs(result.timings.total ?? 0)} (seed ${result.settings.seed}, pack ${info.pack.name})`,
      );
    }
    if (image && save)
      process.stderr.write('note: --image variations are not added to the library; `unclip vary` saves them\n');
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    await engine.close();
  }
}

async function generateIntoLibrary(o: {
  prompt: string;
  settings: Partial<GenerateSettings>;
  outDir: string;
  library: string | undefined;
  engineOptions: WorkerEngineOptions;
  json: boolean | undefined;
}): Promise<number> {
  const studio = openCliStudio({ ...(o.library !== undefined ? { library: o.library } : {}), engine: o.engineOptions });
  try {
    // The pack first, unwrapped: a broken pack is bad input (exit 2) naming its file, not a failed job.
    const info = await studio.service.handlers['engine.info']({});
    const { job, images } = await runLibraryJob(studio, 'generate', { prompt: o.prompt, settings: o.settings });
    const result = job.result as { timings?: Record<string, number>; truncated?: boolean } | null;
    if (result?.truncated)
      process.stderr.write(`note: the prompt is longer than CLIP's 77 tokens; only the first 75 were used\n`);
    const files = [];
    for (const img of images) {
      const file = join(o.outDir, `${slug(o.prompt)}-${img.seed}.png`);
      await copyFile((await studio.service.media('image', img.id)).path, file);
      files.push({
        id: img.id,
        seed: img.seed,
        file,
        width: img.width,
        height: img.height,
        sha256: img.sha256,
        ...(typeof img.settings.score === 'number' ? { score: img.settings.score } : {}),
      });
    }
    const first = images[0]?.settings ?? {};
    if (o.json) {
      const out = {
        prompt: images[0]?.prompt ?? o.prompt,
        truncated: Boolean(result?.truncated),
        settings: { ...first, n: images.length, seed: o.settings.seed ?? images[0]?.seed },
        pack: { name: info.pack.name, dir: info.pack.dir },
        backends: info.sessionBackends,
        images: files,
        timings: result?.timings ?? {},
        job: job.id,
        library: { dir: studio.libraryDir, saved: true, ids: images.map((i) => i.id) },
      };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      for (const f of files) {
        const score = f.score !== undefined ? `  clip score ${f.score.toFixed(4)}` : '';
        console.log(`${f.file}  ${f.width}×${f.height}  (library image ${f.id})${score}`);
      }
      console.log(
        `${files.length} image(s) in ${fmtMs(result?.timings?.total ?? 0)} (pack ${info.pack.name}), saved in ${studio.libraryDir}`,
      );
    }
    return 0;
  } finally {
    await studio.close();
  }
}

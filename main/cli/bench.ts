// `unclip bench`: where the time goes. Not a test: prints per-stage time, ms per step, images/s, achieved
// GFLOP/s (from the manifest's per-call FLOP counts) and the engine process's peak RSS; --vs-diffusers times
// diffusers' UnCLIPPipeline on the same weights, prompts, step counts and thread count, and prints the ratio.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { GenerateResult } from '../engine/api.ts';
import { Engine } from '../engine/engine.ts';
import { REPO_ROOT } from '../engine/packs.ts';
import { encodeTexts } from '../engine/pipeline.ts';
import { checkPartialSettings } from '../engine/settings.ts';
import { sourceName } from '../service/startup.ts';
import { backend, num, threads, UsageError } from './args.ts';
import { cliStartup } from './startup.ts';

const mb = (kb: number): number => Math.round(kb / 1024);

interface DiffusersBench {
  torch: string;
  threads: number;
  load_s: number;
  runs_s: number[];
  mean_s: number;
  stages_ms: Record<string, number>;
  text_embeds: number[];
}

export async function benchCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      pack: { type: 'string' },
      backend: { type: 'string' },
      threads: { type: 'string' },
      runs: { type: 'string' },
      n: { type: 'string' },
      prompt: { type: 'string' },
      'steps-prior': { type: 'string' },
      'steps-decoder': { type: 'string' },
      'steps-sr': { type: 'string' },
      'vs-diffusers': { type: 'boolean' },
      fixture: { type: 'string' },
      pipeline: { type: 'string' },
      json: { type: 'boolean' },
      manipulations: { type: 'boolean' },
      library: { type: 'boolean' },
      retrieval: { type: 'boolean' },
      studio: { type: 'boolean' },
    },
  });
  const runs = num('runs', values.runs) ?? (values.manipulations ? 1 : 3);
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new UsageError('--runs: must be an integer in [1, 100]');
  const flagBackend = backend(values.backend);
  const flagThreads = threads(values.threads);
  if (values.library && !values.retrieval)
    return (await import('./bench-library.ts')).benchLibrary(values.json === true);
  if (values.studio)
    return (await import('./bench-studio.ts')).benchStudio({
      ...(values.pack !== undefined ? { packDir: values.pack } : {}),
      runs,
      json: values.json === true,
    });
  // What is measured is what the studio runs: the flag, else the environment, else settings.json, else
  // the default pack on the CPU with 2 threads; said on stderr, so a saved choice never skews it unseen.
  const startup = cliStartup({ pack: values.pack, backend: flagBackend, threads: flagThreads }, { threads: 2 });
  const packDir = startup.packDir;
  const be = startup.backend;
  const th = startup.threads ?? 2;
  const chosenBy = {
    pack: sourceName('pack', startup.from.pack),
    backend: sourceName('backend', startup.from.backend),
    threads: sourceName('threads', startup.from.threads),
  };
  console.error(
    `bench: pack ${packDir ?? '(default)'} (${chosenBy.pack}), backend ${be ?? 'cpu'} (${chosenBy.backend}), ${th} threads (${chosenBy.threads})`,
  );
  if (values.library && values.retrieval)
    return (await import('./bench-retrieval.ts')).benchRetrieval({
      ...(packDir !== undefined ? { packDir } : {}),
      threads: th,
      json: values.json === true,
    });
  if (values.manipulations) {
    return (await import('./bench-manip.ts')).benchManipulations({
      ...(packDir !== undefined ? { packDir } : {}),
      ...(be ? { backend: be } : {}),
      threads: th,
      runs,
      json: values.json === true,
    });
  }
  const prompt = values.prompt ?? 'a red rocket, twemoji style';
  const partial = checkPartialSettings(
    Object.fromEntries(
      Object.entries({
        n: num('n', values.n),
        stepsPrior: num('steps-prior', values['steps-prior']),
        stepsDecoder: num('steps-decoder', values['steps-decoder']),
        stepsSuperRes: num('steps-sr', values['steps-sr']),
      }).filter(([, v]) => v !== undefined),
    ),
  );

  const engine = new Engine({
    ...(packDir !== undefined ? { packDir } : {}),
    ...(be ? { backend: be } : {}),
    threads: th,
    warn: (m) => console.error(`warning: ${m}`),
  });
  try {
    const t0 = performance.now();
    const pack = await engine.pack(); // load + sha256 + sessions + warm-up
    const loadMs = performance.now() - t0;
    const info = await engine.info();
    const request = { prompt, settings: { seed: 1, ...partial } };
    await engine.generate(request); // first full run (allocator warm-up), not counted
    const results: GenerateResult[] = [];
    for (let i = 0; i < runs; i++)
      results.push(await engine.generate({ ...request, settings: { ...request.settings, seed: 2 + i } }));
    const s = results[0]!.settings;
    const m = pack.manifest;
    const mean = (key: string): number => results.reduce((a, r) => a + (r.timings[key] ?? 0), 0) / runs;
    const cfg = s.guidancePrior > 1 || s.guidanceDecoder > 1 ? 2 : 1;
    const f = (role: keyof typeof m.components): number => m.components[role]?.flops ?? 0;
    const stages = [
      { key: 'text', label: 'text encoder', steps: 1, flops: 2 * f('text_encoder') },
      { key: 'prior', label: 'prior', steps: s.stepsPrior, flops: s.stepsPrior * s.n * cfg * f('prior') },
      {
        key: 'decoder',
        label: 'decoder (+ text_proj)',
        steps: s.stepsDecoder,
        flops: s.stepsDecoder * s.n * cfg * f('decoder') + s.n * cfg * f('text_proj'),
      },
      ...(pack.hasSuperRes
        ? [
            {
              key: 'superRes',
              label: 'super-resolution',
              steps: s.stepsSuperRes,
              flops: s.stepsSuperRes * s.n * f('super_res_first'),
            },
          ]
        : []),
      { key: 'png', label: 'PNG encode', steps: 0, flops: 0 },
    ].map((st) => {
      const ms = mean(st.key);
      return {
        ...st,
        ms,
        msPerStep: st.steps ? ms / st.steps : null,
        gflops: st.flops && ms ? st.flops / 1e9 / (ms / 1000) : null,
      };
    });
    const total = mean('total');
    const totalFlops = stages.reduce((a, st) => a + st.flops, 0);
    const usage = process.resourceUsage();
    const report = {
      pack: { name: m.name, dir: pack.dir },
      backends: info.sessionBackends,
      threads: pack.threads,
      chosenBy,
      prompt,
      settings: {
        n: s.n,
        stepsPrior: s.stepsPrior,
        stepsDecoder: s.stepsDecoder,
        stepsSuperRes: s.stepsSuperRes,
        guidancePrior: s.guidancePrior,
        guidanceDecoder: s.guidanceDecoder,
      },
      runs,
      loadMs,
      stages,
      totalMs: total,
      imagesPerSecond: s.n / (total / 1000),
      gflopsPerSecond: totalFlops / 1e9 / (total / 1000),
      peakRssMb: mb(usage.maxRSS),
      rssMb: Math.round(process.memoryUsage().rss / 1024 / 1024),
      diffusers: null as null | (DiffusersBench & { speedup: number; weightsMatch: boolean; maxTextEmbedDiff: number }),
    };

    if (values['vs-diffusers']) {
      const python = join(
        REPO_ROOT,
        'models',
        '.venv',
        process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python',
      );
      if (!existsSync(python))
        throw new UsageError(`--vs-diffusers: needs the toolchain's Python (${python}); run npm run models:setup`);
      let source: string[];
      if (values.pipeline) source = ['--pipeline', resolve(values.pipeline)];
      else if (m.source.pipeline === 'tiny-random') {
        source = [
          '--fixture',
          resolve(values.fixture ?? join(REPO_ROOT, 'test', 'fixtures', 'tiny-fixture', 'fixture.json')),
        ];
      } else if (existsSync(join(pack.dir, 'diffusers-config.json'))) source = ['--pack', pack.dir];
      else
        throw new UsageError(
          `--vs-diffusers: this pack has no diffusers-config.json (re-export it), or give --pipeline DIR, the diffusers folder "${m.source.pipeline}" was exported from`,
        );
      const args = [
        join(REPO_ROOT, 'main', 'cli', 'bench_diffusers.py'),
        ...source,
        '--prompt',
        prompt,
        '--n',
        String(s.n),
        '--steps-prior',
        String(s.stepsPrior),
        '--steps-decoder',
        String(s.stepsDecoder),
        '--steps-sr',
        String(s.stepsSuperRes),
        '--guidance-prior',
        String(s.guidancePrior),
        '--guidance-decoder',
        String(s.guidanceDecoder),
        '--runs',
        String(runs),
        '--threads',
        String(th),
      ];
      if (!values.json) console.error(`running diffusers (${runs} runs + warm-up, ${th} threads)…`);
      const r = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
      if (r.status !== 0) throw new Error(`bench_diffusers.py failed: ${(r.stderr || '').trim().split('\n').pop()}`);
      const d = JSON.parse(r.stdout.trim().split('\n').pop()!) as DiffusersBench;
      const [ours] = await encodeTexts(pack, [prompt]);
      const maxTextEmbedDiff = Math.max(...d.text_embeds.map((v, i) => Math.abs(v - ours!.embeds[i]!)));
      report.diffusers = {
        ...d,
        speedup: d.mean_s / (total / 1000),
        weightsMatch: maxTextEmbedDiff < 1e-3,
        maxTextEmbedDiff,
      };
    }

    if (values.json) {
      console.log(JSON.stringify(report, null, 2));
      return 0;
    }
    console.log(
      `bench: ${m.title} (${m.name}) on ${[...new Set(Object.values(info.sessionBackends))].join('+')}, ${pack.threads} threads`,
    );
    console.log(
      `  "${prompt}", n=${s.n}, steps ${s.stepsPrior}/${s.stepsDecoder}/${s.stepsSuperRes}, guidance ${s.guidancePrior}/${s.guidanceDecoder}, mean of ${runs} runs`,
    );
    console.log(`  load + sha256 + sessions + warm-up: ${loadMs.toFixed(0)} ms`);
    console.log('  stage                     ms      ms/step   GFLOP/s' + (report.diffusers ? '   diffusers ms' : ''));
    for (const st of stages) {
      const d = report.diffusers?.stages_ms[st.key];
      console.log(
        `  ${st.label.padEnd(22)} ${st.ms.toFixed(1).padStart(8)}  ${st.msPerStep === null ? '       -' : st.msPerStep.toFixed(1).padStart(8)}  ${st.gflops === null ? '      -' : st.gflops.toFixed(1).padStart(7)}` +
          (report.diffusers ? `   ${d === undefined ? '-' : d.toFixed(1).padStart(10)}` : ''),
      );
    }
    console.log(
      `  total ${total.toFixed(1)} ms → ${report.imagesPerSecond.toFixed(3)} images/s, ${report.gflopsPerSecond.toFixed(1)} GFLOP/s overall`,
    );
    console.log(`  peak RSS ${report.peakRssMb} MB (engine process: onnxruntime sessions, tokenizer, Node)`);
    if (report.diffusers) {
      const d = report.diffusers;
      console.log(
        `  diffusers ${d.torch}, ${d.threads} threads: ${(d.mean_s * 1000).toFixed(1)} ms per run → ours is ${d.speedup.toFixed(2)}× faster` +
          (d.weightsMatch
            ? ''
            : `  (WARNING: text embeddings differ by ${d.maxTextEmbedDiff.toExponential(1)}: not the same weights?)`),
      );
    }
    return 0;
  } finally {
    await engine.close();
  }
}

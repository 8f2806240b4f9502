// `unclip bench --manipulations`: time of the image manipulations (issue #6) on one picture: DDIM inversion at
// 50 steps (with its η = 0 reconstruction), then each manipulation at the same step count: one frame alone, and
// per frame of a batch-decoded sweep.
// Not a test: figures for the README's performance notes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../engine/api.ts';
import { Engine } from '../engine/engine.ts';
import { interpolate, invert, MANIP_LIMITS, textDiff, thetaSweep, vary } from '../engine/manipulations/index.ts';
import { ddimInvert, decoderCond, refinedSteps } from '../engine/manipulations/decoder.ts';
import { readPicture, rgbToPlanes, squareRgb } from '../engine/manipulations/picture.ts';
import { REPO_ROOT } from '../engine/packs.ts';
import { encodeTexts } from '../engine/pipeline.ts';

export interface ManipBenchOptions {
  packDir?: string;
  backend?: Backend;
  threads: number;
  runs: number;
  json: boolean;
}

export async function benchManipulations(o: ManipBenchOptions): Promise<number> {
  const engine = new Engine({
    ...(o.packDir !== undefined ? { packDir: o.packDir } : {}),
    ...(o.backend ? { backend: o.backend } : {}),
    threads: o.threads,
    warn: (m) => console.error(`warning: ${m}`),
  });
  try {
    const pack = await engine.pack();
    const picture = join(REPO_ROOT, 'test', 'fixtures', 'manip-images', 'noto-1f600.png');
    const second = join(REPO_ROOT, 'test', 'fixtures', 'manip-images', 'twemoji-1f355.png');
    const bytes = readFileSync(picture);
    const steps = MANIP_LIMITS.steps.default;
    const refine = MANIP_LIMITS.refine.default;
    const time = async <T>(fn: () => Promise<T>): Promise<[number, T]> => {
      const t0 = performance.now();
      const v = await fn();
      return [performance.now() - t0, v];
    };
    // warm-up (image encoder arena, allocator)
    await invert(pack, bytes, { steps: 2 });
    const rows: Record<string, number[]> = {
      [`invert (encode + ${steps}-step inversion + η=0 reconstruction)`]: [],
      [`inversion only (${steps + refine * refinedSteps(steps)} decoder calls)`]: [],
      'vary: 1 variation, η=1': [],
      'vary: 4 variations, η=1, per variation': [],
      'interpolate: 8 frames, per frame': [],
      'textdiff: 1 frame (θ=0.3)': [],
      'textdiff: 8-frame sweep (θ 0–0.5), per frame': [],
    };
    const keys = Object.keys(rows);
    const push = (k: number, ms: number): void => void rows[keys[k]!]!.push(ms);
    const b = (await invert(pack, readFileSync(second), { steps })).latent;
    for (let r = 0; r < o.runs; r++) {
      const [all, inv] = await time(() => invert(pack, bytes, { steps }));
      push(0, all);
      const D = pack.manifest.resolution.decoder;
      const x0 = rgbToPlanes(squareRgb(await readPicture(bytes), D), D);
      const [text] = await encodeTexts(pack, ['']);
      const cond = await decoderCond(pack, [{ zi: inv.latent.zi, text: text! }], text!, 1);
      push(1, (await time(() => ddimInvert(pack, cond, x0, steps, { refine })))[0]);
      push(2, (await time(() => vary(pack, inv.latent, { n: 1, eta: 1 })))[0]);
      push(3, (await time(() => vary(pack, inv.latent, { n: 4, eta: 1 })))[0] / 4);
      push(4, (await time(() => interpolate(pack, inv.latent, b, { frames: 8 })))[0] / 8);
      const diff = { from: 'a smiling face', to: 'a sad face' };
      push(5, (await time(() => textDiff(pack, inv.latent, { ...diff, thetas: [0.3] })))[0]);
      push(6, (await time(() => textDiff(pack, inv.latent, { ...diff, thetas: thetaSweep(8, 0.5) })))[0] / 8);
    }
    const mean = (v: number[]): number => v.reduce((a, x) => a + x, 0) / v.length;
    const m = pack.manifest;
    const report = {
      pack: m.name,
      threads: pack.threads,
      steps,
      superRes: pack.hasSuperRes,
      decoderSize: m.resolution.decoder,
      outputSize: m.resolution.output,
      runs: o.runs,
      ms: Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, Math.round(mean(v))])),
    };
    if (o.json) {
      console.log(JSON.stringify(report, null, 2));
      return 0;
    }
    console.log(
      `bench --manipulations: ${m.title} (${m.name}), ${pack.threads} threads, ${steps} DDIM steps, decoder ${m.resolution.decoder} px` +
        (pack.hasSuperRes
          ? ` + super-resolution to ${m.resolution.output} px (${m.defaults.super_res_steps} steps)`
          : '') +
        `, mean of ${o.runs} run(s)`,
    );
    for (const [k, v] of Object.entries(report.ms)) console.log(`  ${k.padEnd(58)} ${String(v).padStart(8)} ms`);
    return 0;
  } finally {
    await engine.close();
  }
}

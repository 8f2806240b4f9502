// An EngineClient for transport tests: it walks through the pipeline's stages with progress
// events, honours abort signals and answers with real (tiny, solid-colour) PNGs made by sharp.
// The real engine is exercised by test/integration/engine and the E2E test.

import sharp from 'sharp';
import type { EngineClient, EngineInfo, GenerateResult, GenerateSettings } from '../../../main/engine/api.ts';

export const scriptedInfo: EngineInfo = {
  pack: {
    dir: '/packs/scripted',
    name: 'scripted',
    title: 'Scripted test engine',
    outputSize: 8,
    defaults: { stepsPrior: 2, stepsDecoder: 3, stepsSuperRes: 1, guidancePrior: 4, guidanceDecoder: 8 },
    license: 'Apache-2.0',
    attribution: 'test',
  },
  availableBackends: ['cpu'],
  sessionBackends: { prior: 'cpu', decoder: 'cpu' },
};

export function createScriptedEngine(options: { stepDelayMs?: number } = {}): EngineClient & { closed: boolean } {
  const delay = options.stepDelayMs ?? 5;
  const engine = {
    closed: false as boolean,
    async info() {
      return scriptedInfo;
    },
    async generate(request, opts = {}): Promise<GenerateResult> {
      const settings: GenerateSettings = {
        n: 1,
        seed: 0,
        rerank: false,
        previewEvery: 0,
        ...scriptedInfo.pack.defaults,
        ...request.settings,
      };
      const started = Date.now();
      const stages = [
        ['prior', settings.stepsPrior],
        ['decoder', settings.stepsDecoder],
      ] as const;
      for (const [stage, total] of stages) {
        for (let step = 1; step <= total; step++) {
          if (opts.signal?.aborted) throw new Error('aborted');
          await new Promise((resolve) => setTimeout(resolve, delay));
          opts.onProgress?.({ stage, step, total, elapsedMs: Date.now() - started, etaMs: delay * (total - step) });
        }
      }
      const images = await Promise.all(
        Array.from({ length: settings.n }, async (_, i) => {
          const seed = settings.seed + i;
          const png = await sharp({
            create: { width: 8, height: 8, channels: 3, background: { r: seed % 256, g: 80, b: 160 } },
          })
            .png()
            .toBuffer();
          return { seed, png: new Uint8Array(png), width: 8, height: 8, imageEmbedding: new Float32Array(4) };
        }),
      );
      return {
        prompt: request.prompt,
        settings,
        truncated: false,
        textEmbedding: new Float32Array(4),
        images,
        timings: { total: Date.now() - started },
      };
    },
    async close() {
      engine.closed = true;
    },
  } satisfies EngineClient & { closed: boolean };
  return engine;
}

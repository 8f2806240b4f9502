// An EngineClient for transport and service tests: it walks through the pipeline's stages with
// progress events, honours abort signals and answers with real (tiny, solid-colour) PNGs made by
// sharp, embeddings derived from the prompt (so similar prompts are near), and real latent files
// for the manipulations. The real engine is exercised by test/integration/engine and the E2E test.

import { createHash } from 'node:crypto';
import sharp from 'sharp';
import type {
  EngineClient,
  EngineInfo,
  GenerateResult,
  GenerateSettings,
  ManipulationRequest,
  ManipulationResult,
} from '../../../main/engine/api.ts';
import { decodeLatent, encodeLatent } from '../../../main/engine/manipulations/latent.ts';

const DIM = 8;
const SIZE = 8;

/** A unit vector per word, summed: prompts sharing words get close embeddings. */
export function scriptedEmbedding(text: string): Float32Array {
  const v = new Float32Array(DIM);
  for (const word of text.toLowerCase().split(/\W+/).filter(Boolean)) {
    const h = createHash('sha256').update(word).digest();
    for (let i = 0; i < DIM; i++) v[i]! += (h[i]! - 127.5) / 127.5;
  }
  if (v.every((x) => x === 0)) v[0] = 1;
  return v;
}

async function solidPng(seed: number): Promise<Uint8Array> {
  const png = await sharp({
    create: { width: SIZE, height: SIZE, channels: 3, background: { r: seed % 256, g: 80, b: 160 } },
  })
    .png()
    .toBuffer();
  return new Uint8Array(png);
}

export const scriptedInfo: EngineInfo = {
  pack: {
    dir: '/packs/scripted',
    name: 'scripted',
    title: 'Scripted test engine',
    outputSize: 8,
    defaults: { stepsPrior: 2, stepsDecoder: 3, stepsSuperRes: 1, guidancePrior: 4, guidanceDecoder: 8 },
    license: 'Apache-2.0',
    attribution: 'test',
    decoderSize: SIZE,
    embeddingDim: DIM,
    fingerprint: 'f'.repeat(64),
    capabilities: { superRes: false, imageEncoder: true },
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
          const imageEmbedding = scriptedEmbedding(request.prompt);
          imageEmbedding[i % DIM]! += 0.01;
          return { seed, png: await solidPng(seed), width: SIZE, height: SIZE, imageEmbedding };
        }),
      );
      return {
        prompt: request.prompt,
        settings,
        truncated: false,
        textEmbedding: scriptedEmbedding(request.prompt),
        images,
        timings: { total: Date.now() - started },
      };
    },
    async embedText(text: string) {
      return scriptedEmbedding(text);
    },
    // One token a word, CLIP's 75 content tokens.
    async countTokens(text: string) {
      const tokens = text.split(/\s+/).filter(Boolean).length;
      return { tokens, limit: 75, truncated: tokens > 75 };
    },
    async manipulate(request: ManipulationRequest, opts = {}): Promise<ManipulationResult> {
      const pack = scriptedInfo.pack;
      for (let step = 1; step <= 3; step++) {
        if (opts.signal?.aborted) throw Object.assign(new Error('cancelled'), { name: 'AbortError' });
        await new Promise((resolve) => setTimeout(resolve, delay));
        opts.onProgress?.({ stage: 'decoder', step, total: 3, elapsedMs: step * delay, etaMs: (3 - step) * delay });
      }
      const seed = request.seed ?? 0;
      const frame = async (k: number, extra: { t?: number; theta?: number } = {}) => ({
        png: await solidPng(seed + k),
        width: SIZE,
        height: SIZE,
        seed: seed + k,
        zi: scriptedEmbedding(`frame ${seed + k}`),
        ...extra,
      });
      const latentFor = (caption: string) =>
        encodeLatent({
          caption,
          inversion: { steps: request.steps ?? 4, guidance: 1, refine: 0 },
          psnr: 31.5,
          decoderSize: SIZE,
          embeddingDim: DIM,
          pack: { name: pack.name, fingerprint: pack.fingerprint! },
          zi: scriptedEmbedding(caption),
          xT: new Float32Array(3 * SIZE * SIZE).fill(0.5),
          zt: scriptedEmbedding(caption),
        });
      const check = (bytes: Uint8Array) => {
        const l = decodeLatent(bytes);
        if (l.pack.fingerprint !== pack.fingerprint)
          throw Object.assign(new Error('latent: another pack'), { name: 'InputError' });
        return { latent: bytes, psnr: l.psnr, caption: l.caption, inverted: false };
      };
      switch (request.op) {
        case 'invert':
          return {
            op: 'invert',
            frames: [await frame(0)],
            sources: [
              { latent: latentFor(request.caption ?? ''), psnr: 31.5, caption: request.caption ?? '', inverted: true },
            ],
            timings: {},
          };
        case 'vary':
          return {
            op: 'vary',
            frames: await Promise.all(Array.from({ length: request.n ?? 1 }, (_, k) => frame(k))),
            sources: [check(request.source)],
            timings: {},
          };
        case 'interpolate': {
          const n = request.frames ?? 8;
          return {
            op: 'interpolate',
            frames: await Promise.all(Array.from({ length: n }, (_, k) => frame(k, { t: k / (n - 1) }))),
            sources: [check(request.a), check(request.b)],
            timings: {},
          };
        }
        case 'textdiff':
          return {
            op: 'textdiff',
            frames: await Promise.all(request.thetas.map((theta, k) => frame(k, { theta }))),
            sources: [check(request.source)],
            timings: {},
          };
      }
    },
    async close() {
      engine.closed = true;
    },
  } satisfies EngineClient & { closed: boolean };
  return engine;
}

// The engine inside one thread/process: owns the pack (sessions created once), warms it up, runs
// generations one at a time. serve.ts puts a message loop around it; the CLI's bench uses it directly.
import type { Backend, EngineInfo, GenerateResult, ManipulationResult, ProgressEvent, TokenCount } from './api.ts';
import { availableBackends, backendSupport } from './backends.ts';
import { Pack } from './pack.ts';
import { defaultPackDir } from './packs.ts';
import { runManipulation } from './manipulations/request.ts';
import { packFingerprint } from './manipulations/latent.ts';
import { encodeTexts, generate } from './pipeline.ts';
import { InputError, LIMITS } from './settings.ts';
import * as ort from 'onnxruntime-node';

export interface EngineOptions {
  packDir?: string;
  backend?: Backend;
  threads?: number;
  /** Images per network call (default 1 on CPU: no loss there, and image i is reproducible alone). */
  maxBatch?: number;
  /** sha256-check the pack's files at load (default true). */
  verify?: boolean;
  /** Run every network once after loading (default true). */
  warmup?: boolean;
  warn?: (message: string) => void;
}

export class Engine {
  private packPromise: Promise<Pack> | null = null;
  constructor(readonly options: EngineOptions = {}) {}

  /** The loaded pack (loading it on first use; a failed load is retried on the next call). */
  pack(): Promise<Pack> {
    if (!this.packPromise) {
      const o = this.options;
      const p = Pack.load(o.packDir ?? defaultPackDir(), {
        backend: o.backend ?? 'cpu',
        ...(o.threads !== undefined ? { threads: o.threads } : {}),
        verify: o.verify ?? true,
        ...(o.warn ? { warn: o.warn } : {}),
      }).then(async (pack) => {
        // Warm-up runs every network once, which in low-memory mode would open (and close) each
        // session before the first image for nothing: there they open when their stage runs.
        if (o.warmup !== false && pack.memoryStats().mode !== 'low') await warmup(pack);
        return pack;
      });
      this.packPromise = p;
      p.catch(() => {
        if (this.packPromise === p) this.packPromise = null;
      });
    }
    return this.packPromise;
  }

  async info(): Promise<EngineInfo> {
    const pack = await this.pack();
    return {
      pack: { ...pack.info(), fingerprint: await packFingerprint(pack) },
      availableBackends: availableBackends(),
      sessionBackends: pack.sessionBackends(),
      backends: backendSupport(),
      threads: pack.threads,
    };
  }

  async generate(
    request: unknown,
    opts: { signal?: AbortSignal; onProgress?: (e: ProgressEvent) => void } = {},
  ): Promise<GenerateResult> {
    const pack = await this.pack();
    const maxBatch = this.options.maxBatch ?? (pack.requestedBackend === 'cpu' ? 1 : 8);
    return generate(pack, request, { ...opts, maxBatch });
  }

  /** Image manipulations over the bipartite latent (issue #6): invert, vary, interpolate, textdiff. */
  async manipulate(
    request: unknown,
    opts: { signal?: AbortSignal; onProgress?: (e: ProgressEvent) => void } = {},
  ): Promise<ManipulationResult> {
    return runManipulation(await this.pack(), request, opts);
  }

  /** CLIP text embedding z_t of one text (what semantic search compares with stored z_i). */
  async embedText(text: unknown): Promise<Float32Array> {
    if (typeof text !== 'string' || !text.trim()) throw new InputError('text: must be a non-empty string');
    if (text.length > LIMITS.promptChars)
      throw new InputError(`text: ${text.length} characters is too long (at most ${LIMITS.promptChars})`);
    const [cond] = await encodeTexts(await this.pack(), [text]);
    return cond!.embeds;
  }

  /** The prompt's tokens in the pack's own tokenizer (Create warns while typing when the end would be cut). */
  async countTokens(text: unknown): Promise<TokenCount> {
    if (typeof text !== 'string') throw new InputError('text: must be a string');
    if (text.length > LIMITS.promptChars)
      throw new InputError(`text: ${text.length} characters is too long (at most ${LIMITS.promptChars})`);
    const { tokenizer } = await this.pack();
    const { contentTokens, truncated } = tokenizer.encode(text);
    return { tokens: contentTokens, limit: tokenizer.spec.max_length - 2, truncated };
  }

  async close(): Promise<void> {
    const p = this.packPromise;
    this.packPromise = null;
    if (p) await (await p.catch(() => null))?.release();
  }
}

/** One run of every network at the shapes generation uses, so the first request pays no first-run costs. */
export async function warmup(pack: Pack): Promise<void> {
  const m = pack.manifest;
  const E = m.embedding_dim;
  const L = m.text.max_length;
  const H = m.text.hidden_size;
  const D = m.resolution.decoder;
  const O = m.resolution.output;
  const f = (dims: number[]) => new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
  const i64 = (dims: number[], v = 0n) =>
    new ort.Tensor('int64', new BigInt64Array(dims.reduce((a, b) => a * b, 1)).fill(v), dims);
  const bool = (dims: number[]) =>
    new ort.Tensor('bool', new Uint8Array(dims.reduce((a, b) => a * b, 1)).fill(1), dims);
  const text = await pack.net('text_encoder').session.run({ input_ids: i64([2, L], BigInt(m.tokenizer.bos_token_id)) });
  await pack.net('prior').session.run({
    hidden_states: f([2, E]),
    timestep: i64([2], 999n),
    proj_embedding: f([2, E]),
    encoder_hidden_states: f([2, L, H]),
    attention_mask: bool([2, L]),
  });
  const tp = await pack.net('text_proj').session.run({
    image_embeddings: f([2, E]),
    uncond_mask: bool([2]),
    prompt_embeds: text.text_embeds!,
    text_encoder_hidden_states: text.last_hidden_state!,
  });
  const enc = tp.encoder_hidden_states!;
  await pack.net('decoder').session.run({
    sample: f([2, 3, D, D]),
    timestep: i64([2], 999n),
    encoder_hidden_states: enc,
    class_labels: tp.additive_clip_time_embeddings!,
    attention_mask: bool([2, enc.dims[1]!]),
  });
  if (pack.hasSuperRes) {
    for (const role of ['super_res_first', 'super_res_last'] as const) {
      await pack.net(role).session.run({ sample: f([1, 6, O, O]), timestep: i64([1], 999n) });
    }
  }
  // The image encoder (reranking, variations) is left cold: its arena would hold memory for a network most
  // requests never call.
}

// The engine's public surface: the values that cross the worker / utilityProcess boundary.
// Everything here is plain, structured-clone-able data, so the same messages work over
// worker_threads, Electron's utilityProcess parentPort and (as JSON, PNG bytes base64) HTTP/WebSocket.

export type Backend = 'cpu' | 'webgpu' | 'cuda' | 'dml' | 'coreml';

export interface GenerateSettings {
  /** Images to make (each gets its own seed: seed, seed+1, ...). */
  n: number;
  /** Base seed (uint32). */
  seed: number;
  stepsPrior: number;
  stepsDecoder: number;
  stepsSuperRes: number;
  guidancePrior: number;
  guidanceDecoder: number;
  /** Order results by CLIP text–image cosine (DALL·E 1 style reranking). */
  rerank: boolean;
  /** Emit a preview of the current x0 estimate every k decoder steps (0 = never). */
  previewEvery: number;
  /** The prior: 'diffusion' (default) or 'ar' (packs with an autoregressive prior). */
  prior?: 'diffusion' | 'ar';
  /** z_i drawn per image, the one with the highest cos(z_i, z_t) kept (default: the pack's). */
  priorSamples?: number;
  /** Autoregressive prior: temperature, top-k (0 = off) and top-p (1 = off); defaults from the pack. */
  arTemperature?: number;
  arTopK?: number;
  arTopP?: number;
}

export interface GenerateRequest {
  /** The text to draw. Ignored (may be empty) for an image variation. */
  prompt: string;
  settings: Partial<GenerateSettings>;
  /**
   * Image variation (unCLIP §3): an encoded picture (PNG/JPEG/WebP bytes). Its CLIP image embedding
   * replaces the prior's output; the text on both guidance branches is "" (diffusers'
   * UnCLIPImageVariationPipeline). Needs a pack with an image encoder.
   */
  image?: Uint8Array;
}

export type Stage = 'text' | 'prior' | 'decoder' | 'super_res' | 'rerank';

export interface ProgressEvent {
  stage: Stage;
  step: number;
  total: number;
  elapsedMs: number;
  etaMs: number;
  /** PNG of the current x0 estimate (decoder stage only, when asked for). */
  preview?: Uint8Array;
  /** Image manipulations: whether the decoder is being inverted (picture → x_T) or decoded. */
  manipulation?: { phase: 'invert' | 'decode' };
}

export interface GeneratedImage {
  seed: number;
  png: Uint8Array;
  width: number;
  height: number;
  /** Cosine between the prompt's text embedding and this image's CLIP image embedding (when reranked). */
  score?: number;
  /** The CLIP image embedding z_i the decoder was conditioned on. */
  imageEmbedding: Float32Array;
}

export interface GenerateResult {
  prompt: string;
  settings: GenerateSettings;
  /** True when the prompt was cut to the tokenizer's 77 tokens. */
  truncated: boolean;
  /** The prompt's CLIP text embedding z_t. */
  textEmbedding: Float32Array;
  images: GeneratedImage[];
  timings: Record<string, number>;
}

export interface PackInfo {
  dir: string;
  name: string;
  title: string;
  /** The manifest's description: what the pack is good at (the studio shows it beside the prompt). */
  description?: string;
  outputSize: number;
  defaults: Omit<GenerateSettings, 'n' | 'seed' | 'rerank' | 'previewEvery'>;
  license: string;
  attribution: string;
  /** Decoder (base) resolution. */
  decoderSize?: number;
  /** CLIP embedding width. */
  embeddingDim?: number;
  /** sha256 of manifest.json: the embedding space the pack's latents live in (set by Engine.info). */
  fingerprint?: string;
  /** What this pack can do: super-resolution stage, image encoder (reranking and variations), an AR prior. */
  capabilities?: { superRes: boolean; imageEncoder: boolean; arPrior?: boolean };
}

/** Whether a backend can run here, and why not when it cannot. */
export interface BackendSupport {
  backend: Backend;
  available: boolean;
  /** Why it is unavailable (one line). */
  reason?: string;
}

export interface TokenCount {
  /** Content tokens of the prompt (before any cut). */
  tokens: number;
  /** Content tokens the text encoder takes (max_length − 2: BOS and EOS take the others). */
  limit: number;
  truncated: boolean;
}

export interface EngineInfo {
  pack: PackInfo;
  /** Backends this platform's onnxruntime offers. */
  availableBackends: Backend[];
  /** Which backend actually runs each network (after fallback). */
  sessionBackends: Record<string, Backend>;
  /** Every backend the engine knows, available or not (with the reason). */
  backends?: BackendSupport[];
  /** onnxruntime's intra-op threads per network. */
  threads?: number;
}

/**
 * Image manipulations over the bipartite latent (z_i, x_T) (issue #6, main/engine/manipulations). Sources are
 * picture bytes (CLIP-encoded and DDIM-inverted on the way) or the bytes of a `.latent.safetensors` file.
 */
interface ManipulationCommon {
  /** DDIM steps (default: the latent's inversion steps; 50 for a new inversion). */
  steps?: number;
  /** Decoder guidance (default: the latent's inversion guidance; none for a new inversion). */
  guidance?: number;
  /** Seed of super-resolution noise and of η > 0 noise (variation k uses seed + k). */
  seed?: number;
  /** Run super-resolution (default: when the pack has it). */
  superRes?: boolean;
  /** Caption of a picture being inverted ("" when unknown). */
  caption?: string;
  /** Fixed-point refinements per step on the noisiest fifth of a new inversion (default 2; 0 = plain DDIM). */
  refine?: number;
}

export type ManipulationRequest =
  | ({ op: 'invert'; image: Uint8Array } & ManipulationCommon)
  | ({ op: 'vary'; source: Uint8Array; n?: number; eta?: number; fresh?: boolean } & ManipulationCommon)
  | ({
      op: 'interpolate';
      a: Uint8Array;
      b: Uint8Array;
      frames?: number;
      noise?: 'slerp' | 'a' | 'b' | 'random';
    } & ManipulationCommon)
  | ({ op: 'textdiff'; source: Uint8Array; from?: string; to: string; thetas: number[] } & ManipulationCommon);

export interface ManipulationResult {
  op: ManipulationRequest['op'];
  /** Decoded frames (invert: the η = 0 reconstruction). */
  frames: {
    png: Uint8Array;
    width: number;
    height: number;
    seed: number;
    /** The CLIP image embedding the decoder was conditioned on (an interpolation's slerp, a text diff's turn). */
    zi: Float32Array;
    t?: number;
    theta?: number;
  }[];
  /** Each source's latent file bytes (save as <name>.latent.safetensors), reconstruction PSNR (dB), caption. */
  sources: { latent: Uint8Array; psnr: number; caption: string; inverted: boolean }[];
  /** Sweeps (interpolate, textdiff with several θ): looping animated GIF and a side-by-side strip PNG. */
  gif?: Uint8Array;
  strip?: Uint8Array;
  timings: Record<string, number>;
}

/** What every caller (service layer, CLI, tests) drives; implemented over a worker. */
export interface EngineClient {
  info(): Promise<EngineInfo>;
  generate(
    request: GenerateRequest,
    options?: { signal?: AbortSignal; onProgress?: (event: ProgressEvent) => void },
  ): Promise<GenerateResult>;
  /** Image manipulations (engines over the worker protocol have it). */
  manipulate?(
    request: ManipulationRequest,
    options?: { signal?: AbortSignal; onProgress?: (event: ProgressEvent) => void },
  ): Promise<ManipulationResult>;
  /** The CLIP text embedding z_t of a text (semantic search); engines over the worker protocol have it. */
  embedText?(text: string): Promise<Float32Array>;
  /** How many tokens a prompt takes in the pack's tokenizer, and whether the text encoder cuts it. */
  countTokens?(text: string): Promise<TokenCount>;
  close(): Promise<void>;
}

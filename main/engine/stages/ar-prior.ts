// Stage 2 (alternative): the autoregressive prior P(z_i | y) (paper §2.1). z_i is a sequence of K discrete codes
// (its leading principal components, each quantised into equal-mass buckets); a causal Transformer predicts them
// one at a time from the caption's token states, z_t and a quantised z_i·z_t token (drawn from the top half of
// its distribution). Each step: classifier-free guidance on the logits, temperature, top-k, top-p, a draw; then
// the codes are dequantised (bucket values) and mapped back through the PCA: z_i = mean + Σ_j value_j · axis_j.
//
// KV cache: packs with ar_prior_start + ar_prior_step run the prefix once and then one token per call (keys and
// values of every earlier position in a fixed [rows, 2·layers, heads, 77 + 2 + K, d] cache); without them the
// whole-sequence graph ar_prior runs once per code and the loop reads position k (measured in models/README.md).
import { PackError } from '../errors.ts';
import type { Pack } from '../pack.ts';
import { GaussianNoise } from '../rng.ts';
import { readSafetensors } from '../safetensors.ts';
import { guide } from './guidance.ts';
import { boolt, f32t, i64t, runNet, type StageHooks } from './net.ts';
import type { TextRows } from './text.ts';

export interface ArSampling {
  guidance: number;
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
}

/** The randomness of one z_i draw: the dot-product token's uniform, then one uniform per code. */
export interface ArDraws {
  /** uniforms [b, 1 + K] in [0, 1) for image j's draw. */
  draws(image: number, sample: number, out: Float64Array): void;
}

/** Noise stream of AR draw `sample` (stage 5, beside rng.ts' prior/decoder/super-res/ddim). */
const AR_STAGE = 5;

/** Image i's draws come only from its own seed: standard normals of stream (5, sample), mapped through Φ. */
export class SeededDraws implements ArDraws {
  private readonly gens: GaussianNoise[];
  constructor(seeds: number[]) {
    this.gens = seeds.map((s) => new GaussianNoise(s));
  }
  draws(image: number, sample: number, out: Float64Array): void {
    const g = new Float32Array(out.length);
    this.gens[image]!.fill((AR_STAGE << 16) | (sample + 1), g);
    for (let k = 0; k < out.length; k++) out[k] = Math.min(normalCdf(g[k]!), 1 - 1e-12);
  }
}

/** Φ(x) via erfc (W. J. Cody's rational approximation through Numerical Recipes' erfc, |error| < 1.2e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r / 2 : r / 2;
}

export interface ArTables {
  mean: Float32Array; // [E]
  components: Float32Array; // [K, E]
  values: Float32Array; // [K, buckets]
}

const tableCache = new WeakMap<Pack, Promise<ArTables>>();

/** The pack's PCA mean, axes and bucket values (checked against the manifest: one line naming the tensor). */
export function arTables(pack: Pack): Promise<ArTables> {
  let t = tableCache.get(pack);
  if (!t) {
    t = loadTables(pack);
    tableCache.set(pack, t);
  }
  return t;
}

async function loadTables(pack: Pack): Promise<ArTables> {
  const m = pack.manifest;
  const ar = m.ar_prior!;
  const file = `${pack.dir}/${ar.tables}`;
  const st = await readSafetensors(file).catch((e: Error) => {
    throw new PackError(file, e.message.startsWith(file) ? e.message.slice(file.length + 2) : e.message);
  });
  const E = m.embedding_dim;
  const K = ar.sequence_length;
  const get = (name: string, shape: number[]): Float32Array => {
    const t = st.get(name);
    if (!t) throw new PackError(file, `${name} is missing (ar_prior.tables)`);
    if (t.dtype !== 'F32' || JSON.stringify(t.shape) !== JSON.stringify(shape))
      throw new PackError(file, `${name} is ${t.dtype} [${t.shape.join(', ')}], expected F32 [${shape.join(', ')}]`);
    return t.data as Float32Array;
  };
  return {
    mean: get('pca_mean', [E]),
    components: get('pca_components', [K, E]),
    values: get('bucket_values', [K, ar.buckets]),
  };
}

/** Temperature, top-k (0 = off), top-p (1 = off) over `logits` [V] → probabilities (float64, 0 outside). */
export function filteredProbs(logits: Float32Array, s: ArSampling): Float64Array {
  const V = logits.length;
  const x = new Float64Array(V);
  for (let k = 0; k < V; k++) x[k] = logits[k]! / s.temperature;
  if (s.topK > 0 && s.topK < V) {
    const kth = Float64Array.from(x).sort().reverse()[s.topK - 1]!;
    for (let k = 0; k < V; k++) if (x[k]! < kth) x[k] = -Infinity;
  }
  let max = -Infinity;
  for (let k = 0; k < V; k++) max = Math.max(max, x[k]!);
  const p = new Float64Array(V);
  let sum = 0;
  for (let k = 0; k < V; k++) sum += p[k] = Math.exp(x[k]! - max);
  for (let k = 0; k < V; k++) p[k]! /= sum;
  if (s.topP < 1) {
    const order = Array.from({ length: V }, (_, k) => k).sort((a, b) => p[b]! - p[a]! || a - b);
    let cum = 0;
    let cut = false;
    for (const k of order) {
      if (cut) p[k] = 0;
      cum += p[k]!;
      if (cum >= s.topP) cut = true;
    }
    let s2 = 0;
    for (let k = 0; k < V; k++) s2 += p[k]!;
    for (let k = 0; k < V; k++) p[k]! /= s2;
  }
  return p;
}

/** Inverse-CDF draw: the first id whose cumulative probability exceeds u (never an id of probability 0). */
export function pickId(p: Float64Array, u: number): number {
  let cum = 0;
  let last = 0;
  for (let k = 0; k < p.length; k++) {
    if (p[k]! <= 0) continue;
    last = k;
    cum += p[k]!;
    if (cum > u) return k;
  }
  return last;
}

export interface ArPriorOptions extends StageHooks, ArSampling {
  /** z_i drawn per image; the one with the highest cos(z_i, z_t) is kept. */
  samples: number;
  draws: ArDraws;
  /** The draws' index of this call's first image. */
  first: number;
  /** Run the whole-sequence graph even when the pack has the KV-cache pair (parity of both paths). */
  noCache?: boolean;
}

/** z_i [b,E] of the b images whose conditioning is `text` (guided rows [uncond × b, cond × b]). */
export async function sampleArPrior(pack: Pack, text: TextRows, o: ArPriorOptions): Promise<Float32Array> {
  const m = pack.manifest;
  const ar = m.ar_prior;
  if (!ar) throw new Error(`the pack "${m.name}" has no autoregressive prior`);
  const tables = await arTables(pack);
  const E = m.embedding_dim;
  const L = m.text.max_length;
  const H = m.text.hidden_size;
  const K = ar.sequence_length;
  const V = ar.vocabulary;
  const { b, rows, guided } = text;
  // With the pack's KV-cache pair: one prefix call, then one token per call; else the whole sequence each step.
  const cached =
    pack.nets.ar_prior_start && pack.nets.ar_prior_step && !o.noCache
      ? { start: pack.nets.ar_prior_start, step: pack.nets.ar_prior_step }
      : null;
  const net = cached ? null : pack.net('ar_prior');
  const S = L + 2 + K;
  const cacheDims = cached
    ? cached.start.spec.outputs.find((t) => t.name === 'present')!.shape.map((d) => (d === 'batch' ? rows : d))
    : [];
  const code = new BigInt64Array(rows);
  const position = new BigInt64Array(rows);
  const keyMask = new Uint8Array(rows * S);
  let past: Float32Array | null = null;
  const codes = new BigInt64Array(rows * K);
  const dot = new BigInt64Array(rows);
  const logits = new Float32Array(rows * K * V);
  const feeds = {
    encoder_hidden_states: f32t(text.hidden, [rows, L, H]),
    attention_mask: boolt(text.mask, [rows, L]),
    text_embeds: f32t(text.embeds, [rows, E]),
    dot_token: i64t(dot, [rows]),
    codes: i64t(codes, [rows, K]),
  };
  const fetches = { logits: f32t(logits, [rows, K, V]) };
  const startFeeds = () => {
    keyMask.fill(0);
    for (let r = 0; r < rows; r++) {
      for (let t = 0; t < L; t++) keyMask[r * S + t] = text.mask[r * L + t]!;
      keyMask[r * S + L] = 1;
      keyMask[r * S + L + 1] = 1;
    }
    const { codes: _unused, ...rest } = feeds;
    return rest;
  };
  const half = Math.floor(ar.dot_buckets / 2);
  const u = Array.from({ length: b }, () => new Float64Array(1 + K));
  const row = new Float32Array(V);
  const best = new Float32Array(b * E);
  const bestScore = new Float64Array(b).fill(-Infinity);
  const z = new Float64Array(E);
  for (let s = 0; s < o.samples; s++) {
    for (let j = 0; j < b; j++) {
      o.draws.draws(o.first + j, s, u[j]!);
      const c = guided ? b + j : j;
      dot[c] = BigInt(Math.min(ar.dot_buckets - 1, half + Math.floor(u[j]![0]! * (ar.dot_buckets - half))));
      if (guided) dot[j] = BigInt(ar.null_dot_token);
    }
    codes.fill(0n);
    for (let k = 0; k < K; k++) {
      // the logits of code k: row r's at[r] in `out`
      let out: Float32Array;
      let at: (r: number) => number;
      if (cached) {
        if (k === 0) {
          const r = await runNet(cached.start, startFeeds(), undefined, o.signal);
          out = r.logits!.data as Float32Array;
          past = r.present!.data as Float32Array;
        } else {
          for (let r = 0; r < rows; r++) {
            code[r] = codes[r * K + k - 1]!;
            position[r] = BigInt(k - 1);
            keyMask[r * S + L + 1 + k] = 1;
          }
          const r = await runNet(
            cached.step,
            {
              code: i64t(code, [rows]),
              position: i64t(position, [rows]),
              past: f32t(past!, cacheDims),
              key_mask: boolt(keyMask, [rows, S]),
            },
            undefined,
            o.signal,
          );
          out = r.logits!.data as Float32Array;
          past = r.present!.data as Float32Array;
        }
        at = (r) => r * V;
      } else {
        await runNet(net!, feeds, fetches, o.signal);
        out = logits;
        at = (r) => (r * K + k) * V;
      }
      for (let j = 0; j < b; j++) {
        const c = guided ? b + j : j;
        if (guided) guide(out, out, o.guidance, row, V, at(j), at(c), 0);
        else row.set(out.subarray(at(c), at(c) + V));
        const id = pickId(filteredProbs(row, o), u[j]![1 + k]!);
        codes[c * K + k] = BigInt(id);
        if (guided) codes[j * K + k] = BigInt(id);
      }
      o.onStep?.(s * K + k + 1, o.samples * K);
    }
    for (let j = 0; j < b; j++) {
      const c = guided ? b + j : j;
      for (let d = 0; d < E; d++) z[d] = tables.mean[d]!;
      for (let k = 0; k < K; k++) {
        const v = tables.values[k * V + Number(codes[c * K + k])]!;
        for (let d = 0; d < E; d++) z[d]! += v * tables.components[k * E + d]!;
      }
      // keep the draw whose z_i agrees best with z_t (paper §2.1: two samples, the higher dot product)
      let dotp = 0;
      let nz = 0;
      let nt = 0;
      for (let d = 0; d < E; d++) {
        const t = text.embeds[c * E + d]!;
        dotp += z[d]! * t;
        nz += z[d]! * z[d]!;
        nt += t * t;
      }
      const score = dotp / Math.sqrt(nz * nt);
      if (score > bestScore[j]!) {
        bestScore[j] = score;
        for (let d = 0; d < E; d++) best[j * E + d] = z[d]!;
      }
    }
    if (o.capture) {
      const mine = new Float32Array(b * K);
      for (let j = 0; j < b; j++)
        for (let k = 0; k < K; k++) mine[j * K + k] = Number(codes[((guided ? b : 0) + j) * K + k]);
      o.capture(`ar_codes/${s}`, mine);
    }
  }
  return best;
}

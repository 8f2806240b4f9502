// Benchmark of the semantic-search index on synthetic CLIP-like embeddings: unit vectors drawn
// around random cluster centres (seeded, so runs compare), searched warm with the exact top-k.

import { EmbeddingIndex } from './embedding-index.ts';

export interface EmbeddingBenchResult {
  /** Time to upsert all n rows (vector generation not counted). */
  buildMs: number;
  /** Median and 95th-percentile time of one search, warm. */
  medianMs: number;
  p95Ms: number;
  /** The index's buffers per row, as allocated (capacity grows by doubling). */
  bytesPerRow: number;
  /** The process's JS heap plus external memory (the index's WebAssembly memory is counted there) after the build. */
  heapMB: number;
}

export async function benchEmbeddingIndex(opts: {
  n: number;
  dim: number;
  queries: number;
  k: number;
}): Promise<EmbeddingBenchResult> {
  const { n, dim, queries, k } = opts;
  const rng = mulberry32(0x5eed ^ dim);
  const clusters = Math.max(1, Math.round(Math.sqrt(n)));
  const centres = Array.from({ length: clusters }, () => unit(gaussians(rng, dim)));
  const noise = 0.5 / Math.sqrt(dim); // within-cluster cosine about 0.8, as CLIP image embeddings
  const sample = (spread: number): Float32Array => {
    const c = centres[Math.floor(rng() * clusters)]!;
    const v = gaussians(rng, dim);
    for (let j = 0; j < dim; j++) v[j] = c[j]! + spread * v[j]!;
    return unit(v);
  };

  const index = new EmbeddingIndex(dim);
  let buildMs = 0;
  for (let id = 1; id <= n; id++) {
    const v = sample(noise);
    const t0 = performance.now();
    index.upsert(id, v);
    buildMs += performance.now() - t0;
    if (id % 10000 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const memory = process.memoryUsage();
  const heapMB = (memory.heapUsed + memory.external) / 2 ** 20;

  const qs = Array.from({ length: queries }, () => sample(noise * 0.6));
  for (const q of qs.slice(0, 3)) index.search(q, k); // warm up
  const times: number[] = [];
  for (const q of qs) {
    const t0 = performance.now();
    index.search(q, k);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return {
    buildMs,
    medianMs: times[Math.floor(times.length / 2)] ?? 0,
    p95Ms: times[Math.min(times.length - 1, Math.ceil(times.length * 0.95) - 1)] ?? 0,
    bytesPerRow: n > 0 ? Math.round(index.byteLength / n) : 0,
    heapMB,
  };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussians(rng: () => number, dim: number): Float32Array {
  const v = new Float32Array(dim);
  for (let j = 0; j < dim; j++) v[j] = Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  return v;
}

function unit(v: Float32Array): Float32Array {
  let ss = 0;
  for (let j = 0; j < v.length; j++) ss += v[j]! * v[j]!;
  const inv = 1 / Math.sqrt(ss);
  for (let j = 0; j < v.length; j++) v[j]! *= inv;
  return v;
}

// Stage 5 (optional): CLIP reranking. Each finished picture's CLIP image embedding, scored by its cosine with the
// caption's z_t (the paper samples several and keeps the best by this score).
import { clipPixelValues } from '../image.ts';
import type { Pack } from '../pack.ts';
import { encodePixels } from './image-encoder.ts';
import { chunks } from './net.ts';

/** CLIP image embeddings [n,E] of n square 8-bit RGB pictures of side `size`, `maxBatch` per call. */
export async function embedPictures(
  pack: Pack,
  rgb: Uint8Array[],
  size: number,
  maxBatch = 1,
  signal?: AbortSignal,
): Promise<Float32Array> {
  const pre = pack.manifest.image_preprocess;
  const E = pack.manifest.embedding_dim;
  const per = 3 * pre.crop_size * pre.crop_size;
  const z = new Float32Array(rgb.length * E);
  for (const [s, e] of chunks(rgb.length, Math.max(1, maxBatch))) {
    const pixels = new Float32Array((e - s) * per);
    for (let i = s; i < e; i++) {
      clipPixelValues(
        { rgb: rgb[i]!, width: size, height: size },
        pre,
        pixels.subarray((i - s) * per, (i - s + 1) * per),
      );
    }
    z.set(await encodePixels(pack, pixels, e - s, signal), s * E);
  }
  return z;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / (Math.sqrt(na * nb) || 1);
}

/** The CLIP score of each picture: cosine between z_t and its CLIP image embedding. */
export async function clipScores(
  pack: Pack,
  rgb: Uint8Array[],
  size: number,
  zt: Float32Array,
  maxBatch = 1,
  signal?: AbortSignal,
): Promise<number[]> {
  const E = pack.manifest.embedding_dim;
  const z = await embedPictures(pack, rgb, size, maxBatch, signal);
  return rgb.map((_, i) => cosine(zt, z.subarray(i * E, (i + 1) * E)));
}

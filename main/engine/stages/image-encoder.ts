// The CLIP image encoder: z_i of a picture (image variations, manipulations) and of a finished image (reranking).
import type { Pack } from '../pack.ts';
import { f32t, runNet } from './net.ts';

/** CLIP image embeddings [count,E] of planar pixel_values [count,3,S,S] (image.ts: clipPixelValues). */
export async function encodePixels(
  pack: Pack,
  pixels: Float32Array,
  count: number,
  signal?: AbortSignal,
): Promise<Float32Array> {
  const S = pack.manifest.image_preprocess.crop_size;
  const out = await runNet(
    pack.net('image_encoder'),
    { pixel_values: f32t(pixels, [count, 3, S, S]) },
    undefined,
    signal,
  );
  return (out.image_embeds!.data as Float32Array).slice();
}

// Encode: the CLIP image embedding z_i of any picture, with the pack's CLIPImageProcessor preprocessing.
import { clipPixelValues, type DecodedImage } from '../image.ts';
import type { Pack } from '../pack.ts';
import { InputError } from '../settings.ts';
import { encodePixels } from '../stages/image-encoder.ts';
import { readPicture } from './picture.ts';

export async function encodeImage(pack: Pack, img: DecodedImage, signal?: AbortSignal): Promise<Float32Array> {
  if (!pack.nets.image_encoder)
    throw new InputError(`image: the pack "${pack.manifest.name}" has no image encoder, so it cannot read pictures`);
  const pixels = clipPixelValues(img, pack.manifest.image_preprocess);
  return encodePixels(pack, pixels, 1, signal);
}

/** Bytes of a picture file → z_i. */
export async function encodeImageBytes(pack: Pack, bytes: Uint8Array, name = 'image', signal?: AbortSignal) {
  return encodeImage(pack, await readPicture(bytes, name), signal);
}

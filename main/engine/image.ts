// Pixels in and out of the engine: model output → 8-bit RGB → PNG, pictures → CLIP pixel_values.
import sharp from 'sharp';
import { resizeUint8PIL } from './resize.ts';
import { f32, roundHalfEven } from './schedulers/betas.ts';
import type { Manifest } from './manifest.ts';
import { InputError } from './settings.ts';

// Small one-off images: libvips' operation cache would only hold memory, and one thread is plenty.
sharp.cache(false);
sharp.concurrency(1);

/**
 * Planar float image(s) [count,3,size,size] in [-1,1] → interleaved 8-bit RGB, as diffusers does it:
 * clamp(x·0.5 + 0.5, 0, 1), then numpy's (x·255).round() (half to even), all in float32.
 */
export function toRgb8(
  planes: Float32Array,
  index: number,
  size: number,
  out = new Uint8Array(size * size * 3),
): Uint8Array {
  const hw = size * size;
  const base = index * 3 * hw;
  for (let c = 0; c < 3; c++) {
    const off = base + c * hw;
    for (let p = 0; p < hw; p++) {
      let v = f32(f32(planes[off + p]! * 0.5) + 0.5);
      v = v < 0 ? 0 : v > 1 ? 1 : v;
      out[p * 3 + c] = roundHalfEven(f32(v * 255));
    }
  }
  return out;
}

/** Deterministic PNG (fixed zlib level and filter, no metadata): same pixels ⇒ same bytes. */
export async function encodePng(rgb: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  const buf = await sharp(rgb, { raw: { width, height, channels: 3 } })
    .png({ compressionLevel: 6, adaptiveFiltering: false, palette: false, effort: 7 })
    .toBuffer();
  // own ArrayBuffer (transferable across the worker boundary)
  return new Uint8Array(buf);
}

/** Side-by-side strip of several RGB tiles (previews of a batch). */
export function hstack(tiles: Uint8Array[], size: number): Uint8Array {
  const w = size * tiles.length;
  const out = new Uint8Array(w * size * 3);
  tiles.forEach((tile, k) => {
    for (let y = 0; y < size; y++) out.set(tile.subarray(y * size * 3, (y + 1) * size * 3), (y * w + k * size) * 3);
  });
  return out;
}

export interface DecodedImage {
  rgb: Uint8Array;
  width: number;
  height: number;
}

/**
 * Most pixels a picture may have, for every decoder (decompression-bomb guard): 40 Mpx, e.g. 8000×5000. Checked
 * from the header before decoding (a 187 KB 8000×8000 PNG took 18 s and 729 MB under an earlier 64 Mpx limit).
 */
export const MAX_INPUT_PIXELS = 40_000_000;

/** Refuses a picture whose header claims more than MAX_INPUT_PIXELS. */
export function checkPixelCount(name: string, width: number, height: number): void {
  if (width * height > MAX_INPUT_PIXELS)
    throw new InputError(
      `${name}: ${width}×${height} is over the ${MAX_INPUT_PIXELS / 1e6} Mpx limit (a decompression bomb?); downscale it first`,
    );
}

/** Any picture sharp reads (PNG, JPEG, WebP, …) → 8-bit RGB; transparency is flattened onto white. */
export async function decodeImage(bytes: Uint8Array): Promise<DecodedImage> {
  const unreadable = (e: unknown): InputError =>
    new InputError(`image: not a readable picture (${String((e as Error).message).split('\n')[0]})`, { cause: e });
  // header only: no pixels decoded yet
  const meta = await sharp(bytes, { limitInputPixels: false })
    .metadata()
    .catch((e: unknown) => {
      throw unreadable(e);
    });
  checkPixelCount('image', meta.width ?? 0, meta.pageHeight ?? meta.height ?? 0);
  try {
    const { data, info } = await sharp(bytes, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS })
      .rotate()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`${info.channels} channels`);
    return { rgb: new Uint8Array(data), width: info.width, height: info.height };
  } catch (e) {
    throw unreadable(e);
  }
}

/**
 * CLIPImageProcessor (PIL flavour, what the pack's image encoder was exported with): resize the shortest
 * side to `size` with PIL bicubic, centre-crop `crop_size`, rescale, normalise → planar [3,S,S].
 */
export function clipPixelValues(
  img: DecodedImage,
  pre: Manifest['image_preprocess'],
  out = new Float32Array(3 * pre.crop_size * pre.crop_size),
): Float32Array {
  const { width: w, height: h } = img;
  // transformers' get_resize_output_image_size(default_to_square=False): short side = size, long side
  // = int(size · long / short)
  const short = Math.min(w, h);
  const long = Math.max(w, h);
  const newShort = pre.size;
  const newLong = Math.trunc((pre.size * long) / short);
  const [nw, nh] = w <= h ? [newShort, newLong] : [newLong, newShort];
  const resized = nw === w && nh === h ? img.rgb : resizeUint8PIL(img.rgb, w, h, 3, nw, nh);
  const S = pre.crop_size;
  if (nw < S || nh < S) throw new InputError(`image: ${nw}×${nh} after resize is smaller than the ${S}px crop`);
  const top = Math.floor((nh - S) / 2);
  const left = Math.floor((nw - S) / 2);
  for (let c = 0; c < 3; c++) {
    const mean = f32(pre.mean[c]!);
    const std = f32(pre.std[c]!);
    const scale = pre.rescale_factor;
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const v = resized[((top + y) * nw + left + x) * 3 + c]!;
        // transformers: rescale in float64 → float32, then (x − mean)/std in float32
        out[c * S * S + y * S + x] = f32(f32(f32(v * scale) - mean) / std);
      }
    }
  }
  return out;
}

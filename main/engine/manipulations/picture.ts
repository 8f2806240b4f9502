// Pictures in: any file sharp reads → 8-bit sRGB, EXIF orientation applied, alpha flattened onto white,
// grey/CMYK/16-bit/palette converted, first frame of an animation. Bad files fail with one line that says
// what is wrong and what to do, before anything big is decoded (decompression bombs are refused from the
// header's dimensions).
import sharp, { type Metadata } from 'sharp';
import { checkPixelCount, MAX_INPUT_PIXELS, type DecodedImage } from '../image.ts';
import { resizeUint8PIL } from '../resize.ts';
import { InputError } from '../settings.ts';

// every decoder's one pixel limit lives in image.ts; re-exported for this module's callers
export { MAX_INPUT_PIXELS };

export const MAX_INPUT_BYTES = 64 * 1024 * 1024;

const READABLE = 'PNG, JPEG, WebP, GIF, AVIF, TIFF or SVG';

/** Checks a picture from its header alone (size, format, dimensions, pixel limit): nothing is decoded. */
export async function checkPicture(bytes: Uint8Array, name = 'image'): Promise<void> {
  if (bytes.byteLength === 0) throw new InputError(`${name}: the file is empty (0 bytes); give a ${READABLE} picture`);
  if (bytes.byteLength > MAX_INPUT_BYTES)
    throw new InputError(`${name}: the file is over ${MAX_INPUT_BYTES >> 20} MiB; shrink it first`);
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    const why = String((e as Error).message).split('\n')[0]!;
    if (/unsupported image format/i.test(why))
      throw new InputError(`${name}: not a picture format this app reads; convert it to ${READABLE}`);
    throw new InputError(`${name}: not a readable picture (${why}); give a ${READABLE} file`);
  }
  const w = meta.width ?? 0;
  const h = meta.pageHeight ?? meta.height ?? 0;
  if (!w || !h) throw new InputError(`${name}: the picture has no pixels (${w}×${h}); give a non-empty picture`);
  checkPixelCount(name, w, h);
}

/** Decodes `bytes` (named `name` in errors). */
export async function readPicture(bytes: Uint8Array, name = 'image'): Promise<DecodedImage> {
  await checkPicture(bytes, name);
  try {
    const { data, info } = await sharp(bytes, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS, pages: 1 })
      .rotate() // EXIF orientation
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`${info.channels} channels after conversion`);
    return {
      rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(),
      width: info.width,
      height: info.height,
    };
  } catch (e) {
    const why = String((e as Error).message).split('\n')[0]!;
    throw new InputError(`${name}: the picture is truncated or corrupt (${why}); re-export it as PNG`);
  }
}

/** Centre square crop, then PIL-style bicubic resize to size×size (8-bit RGB). */
export function squareRgb(img: DecodedImage, size: number): Uint8Array {
  const s = Math.min(img.width, img.height);
  const left = Math.floor((img.width - s) / 2);
  const top = Math.floor((img.height - s) / 2);
  let rgb = img.rgb;
  if (s !== img.width || s !== img.height) {
    rgb = new Uint8Array(s * s * 3);
    for (let y = 0; y < s; y++) {
      const src = ((top + y) * img.width + left) * 3;
      rgb.set(img.rgb.subarray(src, src + s * 3), y * s * 3);
    }
  }
  return s === size ? rgb : resizeUint8PIL(rgb, s, s, 3, size, size);
}

/** Interleaved 8-bit RGB → planar float [3,S,S] in [-1,1] (diffusers: x/255·2 − 1). */
export function rgbToPlanes(rgb: Uint8Array, size: number, out = new Float32Array(3 * size * size)): Float32Array {
  const hw = size * size;
  for (let p = 0; p < hw; p++)
    for (let c = 0; c < 3; c++) out[c * hw + p] = Math.fround(Math.fround(rgb[p * 3 + c]! / 255) * 2 - 1);
  return out;
}

/** PSNR (dB) between two 8-bit images of the same size; Infinity when identical. */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`psnr: sizes differ (${a.length} vs ${b.length})`);
  let se = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    se += d * d;
  }
  const mse = se / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

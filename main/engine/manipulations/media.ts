// Sweeps as media: an animated GIF (sharp/libvips cgif: frames stacked vertically, one page each) and a strip.
import sharp from 'sharp';
import { hstack } from '../image.ts';

/** Animated, looping GIF of equal-sized square RGB frames, `delayMs` per frame. */
export async function animatedGif(frames: Uint8Array[], size: number, delayMs = 150): Promise<Uint8Array> {
  const stacked = new Uint8Array(frames.length * size * size * 3);
  frames.forEach((f, i) => stacked.set(f, i * size * size * 3));
  const buf = await sharp(stacked, {
    raw: { width: size, height: size * frames.length, channels: 3, pageHeight: size },
  })
    .gif({ loop: 0, delay: frames.map(() => delayMs), effort: 7 })
    .toBuffer();
  return new Uint8Array(buf);
}

/** The frames side by side, as a PNG. */
export async function stripPng(frames: Uint8Array[], size: number): Promise<Uint8Array> {
  const buf = await sharp(hstack(frames, size), { raw: { width: size * frames.length, height: size, channels: 3 } })
    .png({ compressionLevel: 6 })
    .toBuffer();
  return new Uint8Array(buf);
}

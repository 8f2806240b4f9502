// Animated GIFs made in the page (no Node, no server): each frame is read from its image URL into a
// canvas, quantised to its own 256-colour palette and LZW-encoded by gifenc.

import { applyPalette, GIFEncoder, quantize } from 'gifenc';

export interface GifOptions {
  /** Frames per second. */
  fps: number;
  /** Small frames are scaled up (nearest neighbour) until their width reaches this. */
  minWidth?: number;
  /** Plays back and forth (A → B → A) instead of jumping from the last frame to the first. */
  pingPong?: boolean;
}

async function loadImage(url: string): Promise<HTMLImageElement> {
  const img = new Image();
  img.decoding = 'async';
  img.src = url;
  try {
    await img.decode();
  } catch {
    throw new Error(`could not read the frame at ${url.split('?')[0]}`);
  }
  return img;
}

/** The frames at `urls`, in order, as one looping animated GIF. */
export async function framesToGif(urls: string[], options: GifOptions): Promise<Blob> {
  if (urls.length === 0) throw new Error('there are no frames to export');
  const images = await Promise.all(urls.map(loadImage));
  const first = images[0]!;
  const scale = Math.max(1, Math.ceil((options.minWidth ?? 256) / first.naturalWidth));
  const width = first.naturalWidth * scale;
  const height = first.naturalHeight * scale;
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('this browser gives no 2D canvas');
  ctx.imageSmoothingEnabled = false;

  const order = options.pingPong && images.length > 2 ? [...images, ...images.slice(1, -1).reverse()] : images;
  const delay = Math.round(1000 / Math.min(50, Math.max(1, options.fps)));
  const gif = GIFEncoder();
  for (const img of order) {
    ctx.clearRect(0, 0, width, height);
    ctx.drawImage(img, 0, 0, width, height);
    const { data } = ctx.getImageData(0, 0, width, height);
    const palette = quantize(data, 256);
    gif.writeFrame(applyPalette(data, palette), width, height, { palette, delay, repeat: 0 });
  }
  gif.finish();
  return new Blob([gif.bytes() as Uint8Array<ArrayBuffer>], { type: 'image/gif' });
}

/** Saves a blob through the browser's download (a file chooser or the downloads folder). */
export function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

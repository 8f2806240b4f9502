// Antialiased separable bicubic resampling (Keys kernel a = −0.5), the way PIL and torch
// `F.interpolate(mode="bicubic", antialias=True, align_corners=False)` do it: for each output pixel,
// centre = scale·(i + 0.5), taps from trunc(centre − support + 0.5) to trunc(centre + support + 0.5),
// weights K((j − centre + 0.5)/filterscale) renormalised to sum 1 (so borders are renormalised, not
// clamped); support = 2·max(scale, 1). Horizontal pass first, then vertical.
// Two flavours: float planes (the decoder image → super-resolution input, torch's float path) and 8-bit
// RGB (CLIP preprocessing of a picture, PIL's fixed-point path with 8-bit rounding between the passes).

function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

export interface ResampleWeights {
  /** First input index of each output index. */
  start: Int32Array;
  /** Number of taps of each output index. */
  size: Int32Array;
  /** Taps, `ksize` per output index. */
  weights: Float64Array;
  ksize: number;
}

const weightCache = new Map<string, ResampleWeights>();

export function resampleWeights(inSize: number, outSize: number): ResampleWeights {
  const key = `${inSize}>${outSize}`;
  const cached = weightCache.get(key);
  if (cached) return cached;
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 2 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const size = new Int32Array(outSize);
  const weights = new Float64Array(outSize * ksize);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    for (let j = 0; j < xmax; j++) {
      const w = bicubic((j + xmin - center + 0.5) / filterscale);
      weights[i * ksize + j] = w;
      total += w;
    }
    if (total !== 0) for (let j = 0; j < xmax; j++) weights[i * ksize + j]! /= total;
    start[i] = xmin;
    size[i] = xmax;
  }
  const w = { start, size, weights, ksize };
  weightCache.set(key, w);
  return w;
}

/**
 * Resizes `planes` float planes of inH×inW (planar, e.g. NCHW with N·C planes) to outH×outW.
 * float64 accumulation, float32 intermediate like torch's float path.
 */
export function resizeBicubicAA(
  src: Float32Array,
  planes: number,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  out: Float32Array = new Float32Array(planes * outH * outW),
): Float32Array {
  if (src.length !== planes * inH * inW)
    throw new Error(`resize: source has ${src.length} values, expected ${planes * inH * inW}`);
  const wx = resampleWeights(inW, outW);
  const wy = resampleWeights(inH, outH);
  const tmp = new Float32Array(inH * outW);
  for (let p = 0; p < planes; p++) {
    const sOff = p * inH * inW;
    for (let y = 0; y < inH; y++) {
      const row = sOff + y * inW;
      for (let x = 0; x < outW; x++) {
        const s = wx.start[x]!;
        const k = x * wx.ksize;
        let acc = 0;
        for (let j = 0, n = wx.size[x]!; j < n; j++) acc += src[row + s + j]! * wx.weights[k + j]!;
        tmp[y * outW + x] = acc;
      }
    }
    const oOff = p * outH * outW;
    for (let y = 0; y < outH; y++) {
      const s = wy.start[y]!;
      const k = y * wy.ksize;
      const n = wy.size[y]!;
      for (let x = 0; x < outW; x++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc += tmp[(s + j) * outW + x]! * wy.weights[k + j]!;
        out[oOff + y * outW + x] = acc;
      }
    }
  }
  return out;
}

const PRECISION_BITS = 32 - 8 - 2;

function fixedPoint(w: ResampleWeights): Int32Array {
  const kk = new Int32Array(w.weights.length);
  for (let i = 0; i < kk.length; i++) {
    const v = w.weights[i]!;
    kk[i] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
  }
  return kk;
}

function clip8(v: number): number {
  const r = v >> PRECISION_BITS;
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/**
 * PIL `Image.resize(size, Image.BICUBIC)` for 8-bit interleaved images (`channels` per pixel):
 * fixed-point coefficients (22 fractional bits), 8-bit rounding after the horizontal pass.
 */
export function resizeUint8PIL(
  src: Uint8Array,
  inW: number,
  inH: number,
  channels: number,
  outW: number,
  outH: number,
): Uint8Array {
  if (src.length !== inW * inH * channels) throw new Error('resize: source size does not match its dimensions');
  let cur = src;
  let curW = inW;
  if (outW !== inW) {
    const w = resampleWeights(inW, outW);
    const kk = fixedPoint(w);
    const next = new Uint8Array(outW * inH * channels);
    for (let y = 0; y < inH; y++) {
      for (let x = 0; x < outW; x++) {
        const s = w.start[x]!;
        const n = w.size[x]!;
        const k = x * w.ksize;
        for (let c = 0; c < channels; c++) {
          let acc = 1 << (PRECISION_BITS - 1);
          for (let j = 0; j < n; j++) acc += cur[(y * curW + s + j) * channels + c]! * kk[k + j]!;
          next[(y * outW + x) * channels + c] = clip8(acc);
        }
      }
    }
    cur = next;
    curW = outW;
  }
  if (outH !== inH) {
    const w = resampleWeights(inH, outH);
    const kk = fixedPoint(w);
    const next = new Uint8Array(curW * outH * channels);
    for (let y = 0; y < outH; y++) {
      const s = w.start[y]!;
      const n = w.size[y]!;
      const k = y * w.ksize;
      for (let x = 0; x < curW; x++) {
        for (let c = 0; c < channels; c++) {
          let acc = 1 << (PRECISION_BITS - 1);
          for (let j = 0; j < n; j++) acc += cur[((s + j) * curW + x) * channels + c]! * kk[k + j]!;
          next[(y * curW + x) * channels + c] = clip8(acc);
        }
      }
    }
    cur = next;
  }
  return cur === src ? src.slice() : cur;
}

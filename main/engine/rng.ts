// Seeded Gaussian noise of our own, so the same seed gives the same image on every machine.
//
// Generator: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), a
// counter-based PRNG: block = Philox(key, counter), no state. We key it with (seed, STREAM_KEY) and put the
// stream id (which noise tensor: stage + step) and the block index in the counter, so every tensor's noise
// is random-access and independent of the others: changing the decoder step count never changes the prior
// noise, and image i's noise depends only on its own seed.
//
// Each 128-bit block gives two 53-bit uniforms u1, u2 in (0, 1) → Box–Muller in float64:
//   r = sqrt(-2 ln u1), z0 = r cos(2π u2), z1 = r sin(2π u2), each rounded to float32.
// Math.log/cos/sin in V8 are fdlibm ports (src/base/ieee754.cc), not the platform libm, so the doubles are
// bit-identical across operating systems and CPUs; sqrt and the float32 rounding are IEEE-exact.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
/** Second key word: fixed, names this generator's version (bump it if the noise layout ever changes). */
const STREAM_KEY = 0x756e4331; // "unC1"

/** High 32 bits of the 64-bit product of two uint32. */
function mulhi(a: number, b: number): number {
  const aH = a >>> 16;
  const aL = a & 0xffff;
  const bH = b >>> 16;
  const bL = b & 0xffff;
  const ll = aL * bL;
  const lh = aL * bH;
  const hl = aH * bL;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (aH * bH + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
}

/** Philox4x32 with 10 rounds: writes the 4 output words to `out`. */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array,
): void {
  let x0 = c0 >>> 0;
  let x1 = c1 >>> 0;
  let x2 = c2 >>> 0;
  let x3 = c3 >>> 0;
  let key0 = k0 >>> 0;
  let key1 = k1 >>> 0;
  for (let round = 0; round < 10; round++) {
    const hi0 = mulhi(M0, x0);
    const lo0 = Math.imul(M0, x0) >>> 0;
    const hi1 = mulhi(M1, x2);
    const lo1 = Math.imul(M1, x2) >>> 0;
    x0 = (hi1 ^ x1 ^ key0) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ key1) >>> 0;
    x3 = lo0;
    key0 = (key0 + W0) >>> 0;
    key1 = (key1 + W1) >>> 0;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
}

const TWO_PI = 2 * Math.PI;
const TWO_POW_53 = 9007199254740992;

/** Stage ids used in noise stream numbers (stream = stage << 16 | (step + 1); step -1 = initial latents). */
export const NoiseStage = { prior: 1, decoder: 2, superRes: 3, ddim: 4 } as const;

export function noiseStream(stage: number, step: number): number {
  if (!Number.isInteger(step) || step < -1 || step > 0xfffe) throw new RangeError(`noise step ${step} out of range`);
  return ((stage << 16) | (step + 1)) >>> 0;
}

/**
 * Standard normal float32 noise for one seed: `fill(stream, out)` writes the first `count` values of that
 * stream. Same (seed, stream) ⇒ same values, always.
 */
export class GaussianNoise {
  readonly seed: number;
  private readonly words = new Uint32Array(4);

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
      throw new RangeError(`seed must be a uint32, got ${seed}`);
    this.seed = seed;
  }

  fill(stream: number, out: Float32Array, offset = 0, count = out.length - offset): Float32Array {
    const w = this.words;
    let block = 0;
    for (let i = 0; i < count; i += 2) {
      philox4x32(block, 0, stream, 0, this.seed, STREAM_KEY, w);
      block++;
      const u1 = ((w[0]! >>> 5) * 67108864 + (w[1]! >>> 6) + 0.5) / TWO_POW_53;
      const u2 = ((w[2]! >>> 5) * 67108864 + (w[3]! >>> 6) + 0.5) / TWO_POW_53;
      const r = Math.sqrt(-2 * Math.log(u1));
      const theta = TWO_PI * u2;
      out[offset + i] = r * Math.cos(theta);
      if (i + 1 < count) out[offset + i + 1] = r * Math.sin(theta);
    }
    return out;
  }
}

/** A small seeded uniform generator in [0, 1) (mulberry32) for synthetic data in benches and tests; image noise uses Philox above. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Classifier-free guidance (Ho & Salimans 2022), as diffusers does it for the prior and the decoder: a guided
// call runs 2·b rows, laid out [uncond × b, cond × b], and combines the two halves.
import { f32 } from '../schedulers/betas.ts';

/** out = u + g·(c − u) over n elements, in float32 with torch's op order. */
export function guide(
  u: Float32Array,
  c: Float32Array,
  g: number,
  out: Float32Array,
  n: number,
  uOff = 0,
  cOff = 0,
  oOff = 0,
): void {
  const gs = f32(g);
  for (let k = 0; k < n; k++) {
    const uu = u[uOff + k]!;
    out[oOff + k] = f32(uu + f32(gs * f32(c[cOff + k]! - uu)));
  }
}

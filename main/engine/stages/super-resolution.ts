// Stage 4: super-resolution (the paper's two upsamplers; here diffusers' unCLIP: one 64 px stage). The decoder's
// picture, bicubically upsampled (PIL-style antialias), is the conditioning beside the noisy sample (6 input
// channels); every step but the last runs super_res_first, the last its own UNet super_res_last.
import type { Pack } from '../pack.ts';
import { resizeBicubicAA } from '../resize.ts';
import { UnCLIPScheduler } from '../schedulers/unclip.ts';
import { f32t, i64t, runNet, type StageHooks } from './net.ts';
import { fillNoise, type NoiseSource } from './noise.ts';

export interface SuperResOptions extends StageHooks {
  steps: number;
  noise: NoiseSource;
  /** The noise source's index of this call's first image. */
  first: number;
}

/**
 * b decoder images [b,3,D,D] → [b,3,O,O], in one network call per step. Captures `upscaled`,
 * `super_res_eps/<i>`, `super_res_trajectory/<i>`.
 */
export async function superResolve(pack: Pack, decoded: Float32Array, o: SuperResOptions): Promise<Float32Array> {
  const m = pack.manifest;
  const D = m.resolution.decoder;
  const O = m.resolution.output;
  const px = 3 * O * O;
  const b = decoded.length / (3 * D * D);
  const first = pack.net('super_res_first');
  const last = pack.net('super_res_last');
  const sched = new UnCLIPScheduler(m.schedulers.super_res);
  const ts = sched.setTimesteps(o.steps);
  const image = (buf: Float32Array, j: number): Float32Array => buf.subarray(j * px, (j + 1) * px);
  const up = resizeBicubicAA(decoded, b * 3, D, D, O, O);
  o.capture?.('upscaled', up);
  const y = new Float32Array(b * px);
  fillNoise(o.noise, 'super_res', -1, o.first, b, y, px);
  // per image: [noisy sample, bicubic upsample] as the UNet's 6 input channels
  const input = new Float32Array(b * 2 * px);
  for (let j = 0; j < b; j++) input.set(image(up, j), (2 * j + 1) * px);
  const timestep = new BigInt64Array(b);
  const eps = new Float32Array(b * px);
  const noise = new Float32Array(b * px);
  const feeds = { sample: f32t(input, [b, 6, O, O]), timestep: i64t(timestep, [b]) };
  const fetches = { out_sample: f32t(eps, [b, 3, O, O]) };
  for (let i = 0; i < ts.length; i++) {
    const t = ts[i]!;
    for (let j = 0; j < b; j++) input.set(image(y, j), 2 * j * px);
    timestep.fill(BigInt(t));
    await runNet(i === ts.length - 1 ? last : first, feeds, fetches, o.signal);
    o.capture?.(`super_res_eps/${i}`, eps);
    if (t > 0) fillNoise(o.noise, 'super_res', i, o.first, b, noise, px);
    sched.step({ modelOutput: eps, timestep: t, sample: y, prevTimestep: sched.prevTimestep(i), noise, out: y });
    o.capture?.(`super_res_trajectory/${i}`, y);
    o.onStep?.(i + 1, ts.length);
  }
  return y;
}

// Where each stage's Gaussian noise comes from: image i's own seed (rng.ts), or a fixture's injected tensors.
import { GaussianNoise, NoiseStage, noiseStream } from '../rng.ts';

export type NoiseStageName = 'prior' | 'decoder' | 'super_res';

/** Where the Gaussian noise comes from: seeded per image, or injected (parity). */
export interface NoiseSource {
  /** Fills `out` with image `image`'s noise for (stage, step); step −1 = the initial latents. */
  fill(stage: NoiseStageName, step: number, image: number, out: Float32Array): void;
}

const STAGE_ID: Record<NoiseStageName, number> = {
  prior: NoiseStage.prior,
  decoder: NoiseStage.decoder,
  super_res: NoiseStage.superRes,
};

/** Image i draws from GaussianNoise(seeds[i]) only. */
export class SeededNoise implements NoiseSource {
  private readonly generators: GaussianNoise[];
  constructor(seeds: number[]) {
    this.generators = seeds.map((s) => new GaussianNoise(s));
  }
  fill(stage: NoiseStageName, step: number, image: number, out: Float32Array): void {
    this.generators[image]!.fill(noiseStream(STAGE_ID[stage], step), out);
  }
}

/** Fills images [first, first + count) of `buf` (each `size` floats) with their (stage, step) noise. */
export function fillNoise(
  noise: NoiseSource,
  stage: NoiseStageName,
  step: number,
  first: number,
  count: number,
  buf: Float32Array,
  size: number,
): void {
  for (let j = 0; j < count; j++) noise.fill(stage, step, first + j, buf.subarray(j * size, (j + 1) * size));
}

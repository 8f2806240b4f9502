// Noise schedules shared by the unCLIP DDPM and DDIM schedulers, reproducing diffusers' float32 tables:
// betas computed in float64 then stored float32, alphas = 1 − β in float32, ᾱ = cumprod accumulated in
// float64 with every output rounded to float32 (what torch's CPU cumprod does).

export const f32 = Math.fround;

/** diffusers `betas_for_alpha_bar(n, max_beta=0.999, "cosine")` (beta_schedule "squaredcos_cap_v2"). */
export function squaredCosCapV2Betas(numTrainTimesteps: number, maxBeta = 0.999): Float32Array {
  const alphaBar = (t: number): number => Math.cos((((t + 0.008) / 1.008) * Math.PI) / 2) ** 2;
  const betas = new Float32Array(numTrainTimesteps);
  for (let i = 0; i < numTrainTimesteps; i++) {
    const t1 = i / numTrainTimesteps;
    const t2 = (i + 1) / numTrainTimesteps;
    betas[i] = Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta);
  }
  return betas;
}

/** diffusers "linear" schedule: torch.linspace(start, end, n, dtype=float32). */
export function linearBetas(numTrainTimesteps: number, start = 0.0001, end = 0.02): Float32Array {
  const betas = new Float32Array(numTrainTimesteps);
  const step = (end - start) / (numTrainTimesteps - 1);
  // torch.linspace fills the first half from the start and the second half from the end.
  const half = Math.floor(numTrainTimesteps / 2);
  for (let i = 0; i < numTrainTimesteps; i++) {
    betas[i] = i < half ? start + step * i : end - step * (numTrainTimesteps - 1 - i);
  }
  return betas;
}

export interface NoiseSchedule {
  betas: Float32Array;
  alphas: Float32Array;
  alphasCumprod: Float32Array;
}

export function makeSchedule(betas: Float32Array): NoiseSchedule {
  const alphas = new Float32Array(betas.length);
  const alphasCumprod = new Float32Array(betas.length);
  let acc = 1; // float64 accumulator, like torch's CPU cumprod for float32
  for (let i = 0; i < betas.length; i++) {
    alphas[i] = 1 - betas[i]!;
    acc *= alphas[i]!;
    alphasCumprod[i] = acc;
  }
  return { betas, alphas, alphasCumprod };
}

/** numpy's `round`: half to even (JS Math.round rounds half up, which gives 167 instead of 166 for N=7). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

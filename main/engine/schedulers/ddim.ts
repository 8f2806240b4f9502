// DDIM (Song et al. 2021, eq. 12) with η, plus the inverse step used for DDIM inversion
// (x_t → x_{t+Δ} with the same ε), following diffusers' DDIMScheduler / DDIMInverseScheduler in float32.
//   x0     = (x_t − √(1−ᾱ_t)·ε)/√ᾱ_t
//   σ_t    = η·√((1−ᾱ_p)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_p))
//   x_prev = √ᾱ_p·x0 + √(1−ᾱ_p−σ²)·ε + σ·z
// inverse: source ᾱ_s at t−Δ (or 1 before the first step), target ᾱ_t:
//   x0 = (x − √(1−ᾱ_s)·ε)/√ᾱ_s ;  x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε
import { f32, linearBetas, makeSchedule, roundHalfEven, squaredCosCapV2Betas } from './betas.ts';

export interface DDIMSchedulerConfig {
  num_train_timesteps: number;
  beta_schedule: 'squaredcos_cap_v2' | 'linear' | 'scaled_linear';
  beta_start?: number;
  beta_end?: number;
  prediction_type: 'epsilon' | 'sample' | 'v_prediction';
  clip_sample: boolean;
  clip_sample_range: number;
  /** ᾱ used past the last step (forward) and before the first (inverse): 1 if true, else ᾱ_0. */
  set_alpha_to_one: boolean;
  steps_offset: number;
  timestep_spacing: 'leading' | 'trailing';
}

export const DEFAULT_DDIM_CONFIG: DDIMSchedulerConfig = {
  num_train_timesteps: 1000,
  beta_schedule: 'squaredcos_cap_v2',
  prediction_type: 'epsilon',
  clip_sample: false,
  clip_sample_range: 1,
  set_alpha_to_one: true,
  steps_offset: 0,
  timestep_spacing: 'leading',
};

export interface DDIMStepArgs {
  modelOutput: Float32Array;
  timestep: number;
  sample: Float32Array;
  /** η ≥ 0 (0 = deterministic DDIM, 1 ≈ DDPM). */
  eta?: number;
  /** Standard normal noise, needed when η > 0. */
  noise?: Float32Array;
  /** Recompute ε from the clipped x0 (diffusers `use_clipped_model_output`). */
  useClippedModelOutput?: boolean;
  out?: Float32Array;
  predOriginal?: Float32Array;
}

export class DDIMScheduler {
  readonly config: DDIMSchedulerConfig;
  readonly betas: Float32Array;
  readonly alphasCumprod: Float32Array;
  /** ᾱ past the end of the chain (forward) and before its start (inverse). */
  readonly finalAlphaCumprod: number;
  timesteps: number[] = [];
  numInferenceSteps = 0;

  constructor(config: Partial<DDIMSchedulerConfig> = {}) {
    this.config = { ...DEFAULT_DDIM_CONFIG, ...config };
    const T = this.config.num_train_timesteps;
    let betas: Float32Array;
    if (this.config.beta_schedule === 'squaredcos_cap_v2') betas = squaredCosCapV2Betas(T);
    else if (this.config.beta_schedule === 'linear')
      betas = linearBetas(T, this.config.beta_start, this.config.beta_end);
    else {
      const root = linearBetas(
        T,
        Math.sqrt(this.config.beta_start ?? 0.00085),
        Math.sqrt(this.config.beta_end ?? 0.012),
      );
      betas = root.map((b) => b * b);
    }
    const s = makeSchedule(betas);
    this.betas = s.betas;
    this.alphasCumprod = s.alphasCumprod;
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : s.alphasCumprod[0]!;
  }

  /** Descending timesteps (diffusers' spacing). */
  setTimesteps(numInferenceSteps: number): number[] {
    const T = this.config.num_train_timesteps;
    if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1 || numInferenceSteps > T) {
      throw new RangeError(`steps must be an integer in [1, ${T}], got ${numInferenceSteps}`);
    }
    this.numInferenceSteps = numInferenceSteps;
    const ts: number[] = [];
    if (this.config.timestep_spacing === 'leading') {
      const ratio = Math.floor(T / numInferenceSteps);
      for (let i = numInferenceSteps - 1; i >= 0; i--) ts.push(i * ratio + this.config.steps_offset);
    } else {
      const ratio = T / numInferenceSteps;
      for (let i = 0; i < numInferenceSteps; i++) ts.push(roundHalfEven(T - i * ratio) - 1);
    }
    this.timesteps = ts;
    return ts;
  }

  /** Ascending timesteps for inversion (the same set, reversed: diffusers' DDIMInverseScheduler). */
  inverseTimesteps(): number[] {
    return [...this.timesteps].reverse();
  }

  private get stride(): number {
    if (!this.numInferenceSteps) throw new Error('DDIM: call setTimesteps first');
    return Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
  }

  private alphaAt(t: number): number {
    return t >= 0 ? this.alphasCumprod[t]! : this.finalAlphaCumprod;
  }

  /** Writes x0 and ε estimates from the model output at ᾱ_t (clipping x0 when configured). */
  private predict(m: number, x: number, sqrtA: number, sqrtB: number): [x0: number, eps: number] {
    const R = this.config.clip_sample_range;
    let x0: number;
    let eps: number;
    switch (this.config.prediction_type) {
      case 'epsilon':
        x0 = f32(f32(x - f32(sqrtB * m)) / sqrtA);
        eps = m;
        break;
      case 'sample':
        x0 = m;
        eps = f32(f32(x - f32(sqrtA * x0)) / sqrtB);
        break;
      default:
        x0 = f32(f32(sqrtA * x) - f32(sqrtB * m));
        eps = f32(f32(sqrtA * m) + f32(sqrtB * x));
    }
    if (this.config.clip_sample) x0 = Math.min(Math.max(x0, -R), R);
    return [x0, eps];
  }

  /** x_t → x_{t−Δ}. */
  step(args: DDIMStepArgs): Float32Array {
    const { modelOutput, timestep: t, sample, noise, predOriginal } = args;
    const eta = args.eta ?? 0;
    if (!(eta >= 0)) throw new RangeError(`eta must be ≥ 0, got ${eta}`);
    const n = sample.length;
    if (eta > 0 && (!noise || noise.length < n)) throw new Error('DDIM: eta > 0 needs noise');
    const out = args.out ?? new Float32Array(n);
    const prev = t - this.stride;
    const aT = this.alphasCumprod[t]!;
    const aP = this.alphaAt(prev);
    const bT = f32(1 - aT);
    const bP = f32(1 - aP);
    const sqrtA = f32(Math.sqrt(aT));
    const sqrtB = f32(Math.sqrt(bT));
    const variance = f32(f32(bP / bT) * f32(1 - f32(aT / aP)));
    const std = f32(f32(eta) * f32(Math.sqrt(variance)));
    const dirCoeff = f32(Math.sqrt(f32(f32(1 - aP) - f32(std * std))));
    const sqrtAP = f32(Math.sqrt(aP));
    for (let i = 0; i < n; i++) {
      const x = sample[i]!;
      const [x0, predicted] = this.predict(modelOutput[i]!, x, sqrtA, sqrtB);
      const eps = args.useClippedModelOutput ? f32(f32(x - f32(sqrtA * x0)) / sqrtB) : predicted;
      if (predOriginal) predOriginal[i] = x0;
      let v = f32(f32(sqrtAP * x0) + f32(dirCoeff * eps));
      if (eta > 0) v = f32(v + f32(std * noise![i]!));
      out[i] = v;
    }
    return out;
  }

  /** DDIM inversion: x_{t−Δ} → x_t, with ε evaluated by the model at timestep t on the current sample. */
  inverseStep(args: Omit<DDIMStepArgs, 'eta' | 'noise' | 'useClippedModelOutput'>): Float32Array {
    const { modelOutput, timestep: t, sample, predOriginal } = args;
    const T = this.config.num_train_timesteps;
    const n = sample.length;
    const out = args.out ?? new Float32Array(n);
    const src = Math.min(t - this.stride, T - 1);
    const aS = this.alphaAt(src);
    const aT = this.alphasCumprod[t]!;
    const sqrtA = f32(Math.sqrt(aS));
    const sqrtB = f32(Math.sqrt(f32(1 - aS)));
    const sqrtAT = f32(Math.sqrt(aT));
    const dirCoeff = f32(Math.sqrt(f32(1 - aT)));
    for (let i = 0; i < n; i++) {
      const [x0, eps] = this.predict(modelOutput[i]!, sample[i]!, sqrtA, sqrtB);
      if (predOriginal) predOriginal[i] = x0;
      out[i] = f32(f32(sqrtAT * x0) + f32(dirCoeff * eps));
    }
    return out;
  }
}

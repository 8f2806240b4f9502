// diffusers' UnCLIPScheduler (the respaced DDPM that Karlo's prior, decoder and super-resolution use), in
// float32 arithmetic: every scalar and element op is rounded with Math.fround in torch's order, so results
// match diffusers to the last bit or so (e.g. the last step t=0 scales x0 by 0.99947232, not 1).
import { f32, makeSchedule, roundHalfEven, squaredCosCapV2Betas } from './betas.ts';

export interface UnCLIPSchedulerConfig {
  num_train_timesteps: number;
  beta_schedule: 'squaredcos_cap_v2';
  variance_type: 'fixed_small_log' | 'learned_range';
  prediction_type: 'epsilon' | 'sample';
  clip_sample: boolean;
  clip_sample_range: number;
}

/** The per-step scalars, all float32 values. */
export interface UnCLIPStepCoefficients {
  t: number;
  prev: number;
  beta: number;
  sqrtBetaProdT: number;
  sqrtAlphaProdT: number;
  /** μ = x0Coeff·x0 + sampleCoeff·x */
  x0Coeff: number;
  sampleCoeff: number;
  /** σ for fixed_small_log. */
  sigma: number;
  /** log-variance bounds for learned_range: log σ² = f·maxLog + (1−f)·minLog, f = (v+1)/2. */
  minLog: number;
  maxLog: number;
}

export interface UnCLIPStepArgs {
  /** ε (epsilon) or x0 (sample), same shape as `sample`. */
  modelOutput: Float32Array;
  timestep: number;
  sample: Float32Array;
  /** Next timestep of the schedule; undefined on the last step (diffusers then uses t − 1). */
  prevTimestep?: number;
  /** learned_range: the model's variance channels v ∈ [-1, 1], same shape as `sample`. */
  predictedVariance?: Float32Array;
  /** Standard normal noise, same shape as `sample`; required when timestep > 0. */
  noise?: Float32Array;
  /** Where to write x_{t-1} (may alias `sample`); allocated when absent. */
  out?: Float32Array;
  /** Where to write the (clipped) x0 estimate, e.g. for previews. */
  predOriginal?: Float32Array;
}

export class UnCLIPScheduler {
  readonly config: UnCLIPSchedulerConfig;
  readonly betas: Float32Array;
  readonly alphas: Float32Array;
  readonly alphasCumprod: Float32Array;
  readonly initNoiseSigma = 1;
  timesteps: number[] = [];

  constructor(config: UnCLIPSchedulerConfig) {
    if (config.beta_schedule !== 'squaredcos_cap_v2') {
      throw new Error(`UnCLIPScheduler: beta_schedule must be squaredcos_cap_v2, got ${String(config.beta_schedule)}`);
    }
    this.config = config;
    const s = makeSchedule(squaredCosCapV2Betas(config.num_train_timesteps));
    this.betas = s.betas;
    this.alphas = s.alphas;
    this.alphasCumprod = s.alphasCumprod;
  }

  /** `round(arange(N)·(T−1)/(N−1))` reversed, numpy half-to-even rounding. */
  setTimesteps(numInferenceSteps: number): number[] {
    if (
      !Number.isInteger(numInferenceSteps) ||
      numInferenceSteps < 2 ||
      numInferenceSteps > this.config.num_train_timesteps
    ) {
      throw new RangeError(
        `steps must be an integer in [2, ${this.config.num_train_timesteps}], got ${numInferenceSteps}`,
      );
    }
    const ratio = (this.config.num_train_timesteps - 1) / (numInferenceSteps - 1);
    const ts: number[] = [];
    for (let i = numInferenceSteps - 1; i >= 0; i--) ts.push(roundHalfEven(i * ratio));
    this.timesteps = ts;
    return ts;
  }

  /** The `prev_timestep` the pipelines pass at loop index i (undefined on the last step). */
  prevTimestep(i: number): number | undefined {
    return i + 1 < this.timesteps.length ? this.timesteps[i + 1] : undefined;
  }

  coefficients(t: number, prevTimestep?: number): UnCLIPStepCoefficients {
    const prev = prevTimestep ?? t - 1;
    const ac = this.alphasCumprod;
    const alphaProdT = ac[t]!;
    const alphaProdTPrev = prev >= 0 ? ac[prev]! : 1;
    const betaProdT = f32(1 - alphaProdT);
    const betaProdTPrev = f32(1 - alphaProdTPrev);
    let beta: number;
    let alpha: number;
    if (prev === t - 1) {
      beta = this.betas[t]!;
      alpha = this.alphas[t]!;
    } else {
      beta = f32(1 - f32(alphaProdT / alphaProdTPrev));
      alpha = f32(1 - beta);
    }
    const x0Coeff = f32(f32(f32(Math.sqrt(alphaProdTPrev)) * beta) / betaProdT);
    const sampleCoeff = f32(f32(f32(Math.sqrt(alpha)) * betaProdTPrev) / betaProdT);
    // _get_variance (same β as above; its own prev == t−1 test gives the same branch)
    const variance = f32(f32(betaProdTPrev / betaProdT) * beta);
    const sigma = f32(Math.exp(f32(0.5 * f32(Math.log(Math.max(variance, f32(1e-20)))))));
    return {
      t,
      prev,
      beta,
      sqrtBetaProdT: f32(Math.sqrt(betaProdT)),
      sqrtAlphaProdT: f32(Math.sqrt(alphaProdT)),
      x0Coeff,
      sampleCoeff,
      sigma,
      minLog: f32(Math.log(variance)),
      maxLog: f32(Math.log(beta)),
    };
  }

  step(args: UnCLIPStepArgs): Float32Array {
    const { modelOutput, timestep: t, sample, predictedVariance, noise, predOriginal } = args;
    const n = sample.length;
    if (modelOutput.length !== n)
      throw new Error(`scheduler: model output has ${modelOutput.length} values, sample ${n}`);
    const out = args.out ?? new Float32Array(n);
    const c = this.coefficients(t, args.prevTimestep);
    const learned = this.config.variance_type === 'learned_range';
    if (learned && t > 0 && (!predictedVariance || predictedVariance.length !== n)) {
      throw new Error('scheduler: learned_range needs the predicted variance channels');
    }
    if (t > 0 && (!noise || noise.length < n)) throw new Error(`scheduler: step at t=${t} needs ${n} noise values`);
    const eps = this.config.prediction_type === 'epsilon';
    const clip = this.config.clip_sample;
    const R = f32(this.config.clip_sample_range);
    const { sqrtBetaProdT, sqrtAlphaProdT, x0Coeff, sampleCoeff, sigma, minLog, maxLog } = c;
    for (let i = 0; i < n; i++) {
      const x = sample[i]!;
      let x0 = eps ? f32(f32(x - f32(sqrtBetaProdT * modelOutput[i]!)) / sqrtAlphaProdT) : modelOutput[i]!;
      if (clip) x0 = x0 < -R ? -R : x0 > R ? R : x0;
      if (predOriginal) predOriginal[i] = x0;
      let prevSample = f32(f32(x0Coeff * x0) + f32(sampleCoeff * x));
      if (t > 0) {
        let s = sigma;
        if (learned) {
          const frac = f32(f32(predictedVariance![i]! + 1) / 2);
          const logVar = f32(f32(frac * maxLog) + f32(f32(1 - frac) * minLog));
          s = f32(Math.exp(f32(0.5 * logVar)));
        }
        prevSample = f32(prevSample + f32(s * noise![i]!));
      }
      out[i] = prevSample;
    }
    return out;
  }
}

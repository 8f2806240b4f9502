// State of the Create screen: the prompt, the settings form, the running job, its progress and
// its images. Views read the fields and call the arrow-function methods; nothing else talks to
// the API for this screen.

import {
  StudioError,
  type EngineInfo,
  type GenerateView,
  type ProgressView,
  type StudioApi,
} from '../../preload/contract.ts';

export interface SettingsForm {
  n: number;
  seed: number;
  stepsPrior: number;
  stepsDecoder: number;
  stepsSuperRes: number;
  guidancePrior: number;
  guidanceDecoder: number;
}

export interface ImageCard {
  key: string;
  seed: number;
  url: string;
  width: number;
  height: number;
  score?: number;
}

export type Outcome = 'done' | 'cancelled' | 'failed';

export const randomSeed = (): number => crypto.getRandomValues(new Uint32Array(1))[0] ?? 0;

const newJobId = (): string => crypto.randomUUID();

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class CreateState {
  info = $state.raw<EngineInfo | null>(null);
  engineError = $state<string | null>(null);
  prompt = $state('');
  settings = $state<SettingsForm>({
    n: 4,
    seed: randomSeed(),
    stepsPrior: 25,
    stepsDecoder: 25,
    stepsSuperRes: 7,
    guidancePrior: 4,
    guidanceDecoder: 8,
  });
  running = $state(false);
  cancelling = $state(false);
  progress = $state.raw<ProgressView | null>(null);
  result = $state.raw<GenerateView | null>(null);
  images = $state.raw<ImageCard[]>([]);
  error = $state<string | null>(null);
  notice = $state<string | null>(null);
  /** How the last run ended. */
  outcome = $state<Outcome | null>(null);
  /** Wall-clock seconds of the last successful run. */
  seconds = $state<number | null>(null);

  canGenerate = $derived(this.info !== null && !this.running && this.prompt.trim().length > 0);
  totalSeconds = $derived(this.result ? Object.values(this.result.timings).reduce((a, b) => a + b, 0) / 1000 : null);

  #api: StudioApi;
  #jobId: string | null = null;

  constructor(api: StudioApi) {
    this.#api = api;
    api.onProgress((event) => {
      if (event.jobId === this.#jobId) this.progress = event;
    });
  }

  /** Asks the engine which pack it runs and takes that pack's defaults for the form. */
  loadEngine = async (): Promise<void> => {
    this.engineError = null;
    try {
      const info = await this.#api.engineInfo();
      this.info = info;
      this.settings = { ...this.settings, ...info.pack.defaults };
    } catch (err) {
      this.engineError = messageOf(err);
    }
  };

  newSeed = (): void => {
    this.settings.seed = randomSeed();
  };

  generate = async (): Promise<void> => {
    if (!this.canGenerate) return;
    const jobId = newJobId();
    this.#jobId = jobId;
    this.running = true;
    this.cancelling = false;
    this.error = null;
    this.notice = null;
    this.progress = null;
    this.outcome = null;
    const started = performance.now();
    try {
      const result = await this.#api.generate({ jobId, prompt: this.prompt, settings: { ...this.settings } });
      this.#show(result);
      this.seconds = (performance.now() - started) / 1000;
      this.outcome = 'done';
      if (result.truncated) this.notice = 'The prompt was longer than 77 tokens and was cut.';
    } catch (err) {
      if (err instanceof StudioError && err.code === 'cancelled') {
        this.outcome = 'cancelled';
        this.notice = 'Generation cancelled.';
      } else {
        this.outcome = 'failed';
        this.error = messageOf(err);
      }
    } finally {
      this.running = false;
      this.cancelling = false;
      this.#jobId = null;
    }
  };

  cancel = async (): Promise<void> => {
    if (!this.#jobId) return;
    this.cancelling = true;
    try {
      await this.#api.generateCancel({ jobId: this.#jobId });
    } catch (err) {
      this.error = messageOf(err);
    }
  };

  #show(result: GenerateView): void {
    for (const card of this.images) URL.revokeObjectURL(card.url);
    this.result = result;
    this.images = result.images.map((image, i) => ({
      key: `${result.jobId}-${i}`,
      seed: image.seed,
      url: URL.createObjectURL(new Blob([image.png as Uint8Array<ArrayBuffer>], { type: 'image/png' })),
      width: image.width,
      height: image.height,
      ...(image.score !== undefined ? { score: image.score } : {}),
    }));
  }
}

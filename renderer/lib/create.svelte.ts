// State of the Create screen: the prompt, the settings form, the job it queued, its progress and
// its images (saved in the library, shown by URL). Views read the fields and call the arrow-function
// methods; nothing else talks to the API for this screen.

import type { EngineInfo, JobView, ProgressView, StudioApi } from '../../preload/contract.ts';
import { mediaUrl } from './api.ts';

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
  key: number;
  seed: number;
  url: string;
  width: number;
  height: number;
  score?: number;
}

export type Outcome = 'done' | 'cancelled' | 'failed';

export const randomSeed = (): number => crypto.getRandomValues(new Uint32Array(1))[0] ?? 0;

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
  /** The prompt of the images shown. */
  shownPrompt = $state('');
  images = $state.raw<ImageCard[]>([]);
  error = $state<string | null>(null);
  notice = $state<string | null>(null);
  /** How the last run ended. */
  outcome = $state<Outcome | null>(null);
  /** Wall-clock seconds of the last successful run. */
  seconds = $state<number | null>(null);

  canGenerate = $derived(this.info !== null && !this.running && this.prompt.trim().length > 0);

  #api: StudioApi;
  #jobId: number | null = null;
  #ended: ((job: JobView) => void) | null = null;

  constructor(api: StudioApi) {
    this.#api = api;
    api.onProgress((event) => {
      if (event.jobId === this.#jobId) this.progress = event;
    });
    api.onJob((job) => {
      if (job.id === this.#jobId && ['done', 'failed', 'cancelled'].includes(job.status)) this.#ended?.(job);
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
    this.running = true;
    this.cancelling = false;
    this.error = null;
    this.notice = null;
    this.progress = null;
    this.outcome = null;
    const started = performance.now();
    try {
      const ended = new Promise<JobView>((resolve) => (this.#ended = resolve));
      const prompt = this.prompt;
      const queued = await this.#api.generate({ prompt, settings: { ...this.settings } });
      this.#jobId = queued.id;
      // The job may have ended before its id was known here: ask once, then wait for its event.
      const now = await this.#api.jobsGet({ id: queued.id });
      const job = ['done', 'failed', 'cancelled'].includes(now.status) ? now : await ended;
      if (job.status === 'done') {
        await this.#show(job, prompt);
        this.seconds = (performance.now() - started) / 1000;
        this.outcome = 'done';
        if ((job.result as { truncated?: boolean } | null)?.truncated)
          this.notice = 'The prompt was longer than 77 tokens and was cut.';
      } else if (job.status === 'cancelled') {
        this.outcome = 'cancelled';
        this.notice = 'Generation cancelled.';
      } else {
        this.outcome = 'failed';
        this.error = job.error ?? 'the job failed';
      }
    } catch (err) {
      this.outcome = 'failed';
      this.error = messageOf(err);
    } finally {
      this.running = false;
      this.cancelling = false;
      this.#jobId = null;
      this.#ended = null;
    }
  };

  cancel = async (): Promise<void> => {
    if (this.#jobId === null) return;
    this.cancelling = true;
    try {
      await this.#api.jobsCancel({ id: this.#jobId });
    } catch (err) {
      this.error = messageOf(err);
    }
  };

  async #show(job: JobView, prompt: string): Promise<void> {
    const details = await Promise.all(job.imageIds.map((id) => this.#api.galleryGet({ id })));
    this.shownPrompt = prompt;
    this.images = details.map(({ image }) => ({
      key: image.id,
      seed: image.seed ?? 0,
      url: mediaUrl('image', image.id),
      width: image.width,
      height: image.height,
      ...(typeof image.settings.score === 'number' ? { score: image.settings.score } : {}),
    }));
  }
}

// State of the Create screen: the prompt and the settings form, the jobs it queues (as many as
// Generate is pressed: each answers at once, the queue panel follows them) and the images of the
// latest generation that finished, shown by URL from the library. Views read the fields and call
// the arrow-function methods; nothing else talks to the API for this screen.

import { LIMITS, type EngineInfo, type ImageView, type JobView, type StudioApi } from '../../preload/contract.ts';
import { mediaUrl } from './api.ts';
import type { QueueState } from './queue.svelte.ts';

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
  id: number;
  seed: number;
  /** The thumbnail's URL. */
  url: string;
  width: number;
  height: number;
  score?: number;
}

/** The generation whose images the screen shows. */
export interface Shown {
  jobId: number;
  prompt: string;
  images: ImageCard[];
  /** Seconds the job ran (start to finish on the engine). */
  seconds: number | null;
  truncated: boolean;
}

export const randomSeed = (): number => crypto.getRandomValues(new Uint32Array(1))[0] ?? 0;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

type Rule = { label: string; min: number; max: number; integer: boolean };
const RULES: Record<keyof SettingsForm, Rule> = {
  n: { label: 'Images', ...LIMITS.n, integer: true },
  seed: { label: 'Seed', min: 0, max: 0xffffffff, integer: true },
  stepsPrior: { label: 'Prior steps', ...LIMITS.steps, integer: true },
  stepsDecoder: { label: 'Decoder steps', ...LIMITS.steps, integer: true },
  stepsSuperRes: { label: 'Super-res steps', ...LIMITS.steps, integer: true },
  guidancePrior: { label: 'Prior guidance', ...LIMITS.guidance, integer: false },
  guidanceDecoder: { label: 'Decoder guidance', ...LIMITS.guidance, integer: false },
};

/** The per-stage fields (steps and guidance), in the form's order: what the pack gives defaults for. */
export const STAGE_FIELDS = [
  'stepsPrior',
  'stepsDecoder',
  'stepsSuperRes',
  'guidancePrior',
  'guidanceDecoder',
] as const;

type StageField = (typeof STAGE_FIELDS)[number];

const pick = (settings: SettingsForm): Record<StageField, number> =>
  Object.fromEntries(STAGE_FIELDS.map((key) => [key, settings[key]])) as Record<StageField, number>;

/** A stage field's label, range and step for the form. */
export function stageField(key: StageField): {
  label: string;
  min: number;
  max: number;
  step: number;
} {
  const rule = RULES[key];
  return { label: rule.label, min: rule.min, max: rule.max, step: rule.integer ? 1 : 0.5 };
}

/** What is wrong with the form, one sentence per field, in words a user reads (not zod's). */
export function settingsProblems(settings: SettingsForm): string[] {
  const problems: string[] = [];
  for (const [key, rule] of Object.entries(RULES) as [keyof SettingsForm, Rule][]) {
    const v = settings[key] as unknown;
    const range = `${rule.min} to ${rule.max}`;
    if (typeof v !== 'number' || !Number.isFinite(v)) problems.push(`${rule.label}: enter a number from ${range}.`);
    else if (rule.integer && !Number.isInteger(v)) problems.push(`${rule.label}: enter a whole number from ${range}.`);
    else if (v < rule.min || v > rule.max) problems.push(`${rule.label} must be from ${range} (it is ${v}).`);
  }
  return problems;
}

/** Decoder x0 previews every this many steps (small PNGs; the queue panel shows them live). */
const PREVIEW_EVERY = 1;

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
  /** Keep the seed for the next run; otherwise each Generate takes a fresh one. */
  lockSeed = $state(false);
  /** Which of the pack's priors turns the caption into z_i (the choice shows when it has both). */
  prior = $state<'diffusion' | 'ar'>('diffusion');
  /** Order the results by CLIP text–image cosine (needs the pack's image encoder). */
  rerank = $state(false);
  /** Generate requests on their way to the queue. */
  submitting = $state(0);
  /** Why the last Generate could not be queued. */
  error = $state<string | null>(null);
  shown = $state.raw<Shown | null>(null);
  /** The prompt as it was last generated from or filled in: anything else in the box was typed. */
  lastUsedPrompt = $state('');
  /** An image whose settings wait for the user to confirm replacing the typed prompt. */
  pendingSettings = $state.raw<ImageView | null>(null);
  /** What the last "use these settings" filled in (shown on the Create screen). */
  notice = $state<string | null>(null);

  /** The prompt box holds text typed since the last Generate or fill-in. */
  hasArPrior = $derived(this.info?.pack.capabilities?.arPrior === true);
  canRerank = $derived(this.info?.pack.capabilities?.imageEncoder === true);
  typedPrompt = $derived(this.prompt.trim().length > 0 && this.prompt !== this.lastUsedPrompt);
  problems = $derived(settingsProblems(this.settings));
  canGenerate = $derived(this.info !== null && this.prompt.trim().length > 0 && this.problems.length === 0);

  #api: StudioApi;
  #queue: QueueState;
  /** The stage fields as the app last set them (the form's first values, then the pack's defaults). */
  #given: Record<StageField, number> = pick(this.settings);
  /** Stage fields "use these settings" filled in: the user's, even where they equal what the app set. */
  // eslint-disable-next-line svelte/prefer-svelte-reactivity -- a lookup for loadEngine, never read by a template
  #chosen = new Set<StageField>();

  constructor(api: StudioApi, queue: QueueState) {
    this.#api = api;
    this.#queue = queue;
    queue.onJob((job) => {
      if (job.kind === 'generate' && job.status === 'done' && job.id >= (this.shown?.jobId ?? 0)) void this.#show(job);
    });
  }

  /** Asks the engine which pack it runs and takes that pack's defaults for the form. */
  loadEngine = async (): Promise<void> => {
    this.engineError = null;
    try {
      const info = await this.#api.engineInfo();
      this.info = info;
      // The pack's defaults fill the fields the user has not set: what was typed (or filled in from
      // an image) while the engine loaded stays.
      const next = { ...this.settings, ...info.pack.defaults };
      for (const key of STAGE_FIELDS) {
        if (this.#chosen.has(key) || this.settings[key] !== this.#given[key]) next[key] = this.settings[key];
        this.#given[key] = info.pack.defaults[key];
      }
      this.settings = next;
    } catch (err) {
      this.engineError = messageOf(err);
    }
  };

  /** Shows the images of the newest generation that finished (after a reload, too). */
  loadLatest = async (): Promise<void> => {
    try {
      const done = await this.#api.jobsList({ status: ['done'], limit: 100 });
      const latest = done.filter((j) => j.kind === 'generate').sort((a, b) => b.id - a.id)[0];
      if (latest && latest.id > (this.shown?.jobId ?? 0)) await this.#show(latest);
    } catch {
      // Nothing to show yet is not an error worth a message.
    }
  };

  newSeed = (): void => {
    this.settings.seed = randomSeed();
  };

  /** Typing a seed means wanting that seed. */
  seedTyped = (): void => {
    this.lockSeed = true;
  };

  /** Queues a generation and returns at once; pressing again queues another. */
  generate = async (): Promise<JobView | null> => {
    if (!this.canGenerate) return null;
    this.error = null;
    const settings = {
      ...this.settings,
      previewEvery: PREVIEW_EVERY,
      ...(this.hasArPrior ? { prior: this.prior } : {}),
      ...(this.canRerank && this.rerank ? { rerank: true } : {}),
    };
    // The field shows the seed the next run uses: a new one after each run unless it is locked.
    if (!this.lockSeed) this.settings.seed = randomSeed();
    this.submitting++;
    this.lastUsedPrompt = this.prompt;
    this.notice = null;
    try {
      const job = await this.#api.generate({ prompt: this.prompt, settings });
      this.#queue.add(job);
      return job;
    } catch (err) {
      this.error = messageOf(err);
      return null;
    } finally {
      this.submitting--;
    }
  };

  /**
   * "Use these settings" from an image: its prompt, seed (locked) and the generation settings it
   * records fill the form. When the prompt box holds typed text, nothing changes until confirmed:
   * answers false and leaves the image in pendingSettings.
   */
  useSettings = (image: ImageView, options: { confirmed?: boolean } = {}): boolean => {
    if (!options.confirmed && this.typedPrompt && this.prompt !== image.prompt) {
      this.pendingSettings = image;
      return false;
    }
    this.pendingSettings = null;
    const s = image.settings;
    const next = { ...this.settings };
    const taken: string[] = [];
    for (const key of STAGE_FIELDS) {
      const v = s[key];
      if (typeof v === 'number' && Number.isFinite(v)) {
        next[key] = v;
        this.#chosen.add(key);
        taken.push(RULES[key].label.toLowerCase());
      }
    }
    const seed = image.seed ?? (typeof s.seed === 'number' ? s.seed : null);
    if (seed !== null && Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff) {
      next.seed = seed;
      this.lockSeed = true;
    }
    if (s.prior === 'ar' || s.prior === 'diffusion') this.prior = s.prior;
    this.settings = next;
    this.prompt = image.prompt;
    this.lastUsedPrompt = image.prompt;
    this.notice =
      `Filled in from image ${image.id}: prompt${seed !== null ? `, seed ${seed} (locked)` : ''}` +
      `${taken.length ? `, ${taken.join(', ')}` : ''}.`;
    return true;
  };

  cancelUseSettings = (): void => {
    this.pendingSettings = null;
  };

  async #show(job: JobView): Promise<void> {
    const got = await Promise.allSettled(job.imageIds.map((id) => this.#api.galleryGet({ id })));
    // A newer job may have been shown while these were read.
    if (job.id < (this.shown?.jobId ?? 0)) return;
    const args = (job.args ?? {}) as { prompt?: string };
    const result = (job.result ?? {}) as { truncated?: boolean };
    this.shown = {
      jobId: job.id,
      prompt: args.prompt ?? '',
      images: got.flatMap((r) => {
        if (r.status !== 'fulfilled') return [];
        const { image } = r.value;
        return [
          {
            id: image.id,
            seed: image.seed ?? 0,
            url: mediaUrl('thumb', image.id),
            width: image.width,
            height: image.height,
            ...(typeof image.settings.score === 'number' ? { score: image.settings.score } : {}),
          },
        ];
      }),
      seconds: job.startedAt !== null && job.finishedAt !== null ? (job.finishedAt - job.startedAt) / 1000 : null,
      truncated: result.truncated === true,
    };
  }
}

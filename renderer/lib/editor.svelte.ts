// State of the Editor: one image (its stored z_i and x_T) and the three edits DALL·E 2 is known for,
// each queued as a job through the contract (vary, interpolate, textdiff) and followed until its
// images are saved in the library with their lineage. An image with no stored x_T yet is inverted
// by the service inside the job that needs it (once); the editors say so and show the job's progress.
// Views read the fields and call the arrow-function methods; nothing else talks to the API here.

/* eslint-disable svelte/prefer-svelte-reactivity -- the Sets here are built and replaced whole ($state.raw),
   never mutated where a template reads them; the Map of followed jobs is a lookup no template reads. */

import {
  LIMITS,
  type ImageDetailView,
  type ImageView,
  type JobStatus,
  type JobView,
  type StudioApi,
} from '../../preload/contract.ts';
import { framesToGif, download } from './gif.ts';
import type { JobProgress, QueueState } from './queue.svelte.ts';

export type EditorTab = 'vary' | 'interpolate' | 'textdiff';
export type Noise = 'slerp' | 'a' | 'b' | 'random';

export const EDITOR_TABS: { id: EditorTab; label: string }[] = [
  { id: 'vary', label: 'Variations' },
  { id: 'interpolate', label: 'Interpolate' },
  { id: 'textdiff', label: 'Text diff' },
];

export const NOISE_LABELS: Record<Noise, string> = {
  slerp: 'Slerped from A’s to B’s',
  a: 'Fixed: A’s',
  b: 'Fixed: B’s',
  random: 'Random',
};

/** The most frames interpolate and textdiff take (the contract's limit). */
export const MAX_FRAMES = 32;
const ENDED: ReadonlySet<JobStatus> = new Set(['done', 'failed', 'cancelled']);
const STORAGE_KEY = 'unclip-studio.editor';

/** What a reload brings back (sessionStorage). */
interface SavedEditor {
  sourceId: number;
  tab: EditorTab;
  vary: number[];
  interpolate: number | null;
  other: number | null;
  textdiff: number | null;
  kept: number[];
  discarded: number[];
}

/** How often a followed job is read again (in case an event was missed while the socket reconnected). */
const POLL_MS = 3_000;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A whole number typed in a field, or a sentence saying what is wrong with it. */
function wholeNumber(label: string, value: unknown, min: number, max: number): number | string {
  const n = typeof value === 'number' ? value : Number(String(value ?? '').trim());
  if (value === '' || value === null || value === undefined || !Number.isInteger(n) || n < min || n > max)
    return `${label}: enter a whole number from ${min} to ${max}.`;
  return n;
}

/** A number from `min` to `max` typed in a field, or a sentence saying what is wrong with it. */
function realNumber(label: string, value: unknown, min: number, max: number): number | string {
  const n = typeof value === 'number' ? value : Number(String(value ?? '').trim());
  if (value === '' || value === null || value === undefined || !Number.isFinite(n) || n < min || n > max)
    return `${label}: enter a number from ${min} to ${max}.`;
  return n;
}

/** `count` evenly spaced angles from `from` to `to` (4 decimals), or `[to]` for one frame. */
export function thetaSweep(from: number, to: number, count: number): number[] {
  if (count <= 1) return [to];
  return Array.from({ length: count }, (_, k) => Math.round((from + ((to - from) * k) / (count - 1)) * 1e4) / 1e4);
}

/** One job an editor queued, kept current by job events (and a slow poll). */
export class EditorJob {
  job = $state.raw<JobView>(null as unknown as JobView);
  status = $derived(this.job.status);
  ended = $derived(ENDED.has(this.job.status));
  /** The images it saved, in the order the engine made them. */
  imageIds = $derived(this.job.imageIds);

  constructor(job: JobView) {
    this.job = job;
  }
}

/** A small picker over the gallery (newest first, with a words filter and "Show more"). */
export class PickerState {
  items = $state.raw<ImageView[]>([]);
  query = $state('');
  /** Only images of this pack (its manifest sha256): another pack's latents mean nothing to the engine. */
  pack = $state<string | null>(null);
  loading = $state(false);
  error = $state<string | null>(null);
  more = $state(false);
  loaded = $state(false);

  #api: StudioApi;
  #cursor: string | null = null;
  #generation = 0;

  constructor(api: StudioApi) {
    this.#api = api;
  }

  /** Reads the first page again (after the filter changed, or to refresh). */
  load = async (): Promise<void> => {
    this.#cursor = null;
    await this.#read(true);
  };

  showMore = async (): Promise<void> => {
    if (this.#cursor) await this.#read(false);
  };

  async #read(reset: boolean): Promise<void> {
    const generation = ++this.#generation;
    this.loading = true;
    try {
      const text = this.query.trim();
      const page = await this.#api.galleryList({
        sort: 'newest',
        limit: 40,
        cursor: reset ? null : this.#cursor,
        ...(text ? { text } : {}),
        ...(this.pack ? { pack: this.pack } : {}),
      });
      if (generation !== this.#generation) return;
      this.items = reset ? page.items : [...this.items, ...page.items];
      this.#cursor = page.nextCursor;
      this.more = page.nextCursor !== null;
      this.error = null;
    } catch (err) {
      if (generation === this.#generation) this.error = messageOf(err);
    } finally {
      if (generation === this.#generation) {
        this.loading = false;
        this.loaded = true;
      }
    }
  }
}

/** What every editor shares: the job it queued last, its error, and the queueing itself. */
abstract class EditorBase {
  run = $state.raw<EditorJob | null>(null);
  error = $state<string | null>(null);
  submitting = $state(false);
  busy = $derived(this.submitting || (this.run !== null && !this.run.ended));

  protected owner: EditorState;
  constructor(owner: EditorState) {
    this.owner = owner;
  }

  /** Queues the job `queue` makes (or shows why it could not). */
  protected async submit(queue: () => Promise<JobView> | string): Promise<EditorJob | null> {
    this.error = null;
    this.submitting = true;
    try {
      const job = queue();
      if (typeof job === 'string') {
        this.error = job;
        return null;
      }
      const run = this.owner.follow(await job);
      this.run = run;
      this.started(run);
      this.owner.save();
      return run;
    } catch (err) {
      this.error = messageOf(err);
      return null;
    } finally {
      this.submitting = false;
    }
  }

  protected started(_run: EditorJob): void {}

  cancel = async (): Promise<void> => {
    if (this.run && !this.run.ended) await this.owner.cancel(this.run);
  };

  retry = async (): Promise<void> => {
    if (this.run?.status === 'failed') await this.owner.retry(this.run);
  };
}

export class VaryEditor extends EditorBase {
  /** DDIM η: 0 keeps the picture, 1 varies it as much as the paper's variations. */
  eta = $state(1);
  count = $state(4);
  /** Fresh noise instead of the image's stored x_T (only z_i kept). */
  fresh = $state(false);
  /** Empty: a random seed per run. */
  seed = $state('');
  /** Every batch made here, newest first. */
  runs = $state.raw<EditorJob[]>([]);

  make = (): Promise<unknown> =>
    this.submit(() => {
      const id = this.owner.sourceId;
      if (id === null) return 'Open an image first.';
      const eta = realNumber('η', this.eta, 0, 1);
      const n = wholeNumber('Count', this.count, 1, LIMITS.n.max);
      const seedText = this.seed.trim();
      const seed = seedText === '' ? undefined : wholeNumber('Seed', seedText, 0, 0xffffffff);
      const common = this.owner.decoderSettings();
      if (typeof common === 'string') return common;
      for (const v of [eta, n, seed])
        if (typeof v === 'string') return `${v}${v.startsWith('Seed') ? ' Leave it empty for a random seed.' : ''}`;
      return this.owner.api.vary({
        ...common,
        id,
        eta: eta as number,
        n: n as number,
        ...(this.fresh ? { fresh: true } : {}),
        ...(seed !== undefined ? { seed: seed as number } : {}),
      });
    });

  protected override started(run: EditorJob): void {
    this.runs = [run, ...this.runs];
  }

  reset(): void {
    this.runs = [];
    this.run = null;
    this.error = null;
  }
}

export class InterpolateEditor extends EditorBase {
  /** The other end (image B). */
  other = $state.raw<ImageView | null>(null);
  frames = $state(8);
  noise = $state<Noise>('slerp');
  picker: PickerState;
  /** The frame the scrubber is on. */
  index = $state(0);
  playing = $state(false);
  fps = $state(6);
  /** Plays A → B → A (and the GIF too) instead of jumping from the last frame back to the first. */
  pingPong = $state(false);
  exporting = $state(false);
  exportError = $state<string | null>(null);
  exported = $state<string | null>(null);

  frameIds = $derived(this.run?.status === 'done' ? this.run.imageIds : []);
  current = $derived(this.frameIds[Math.min(this.index, this.frameIds.length - 1)] ?? null);

  #timer: ReturnType<typeof setInterval> | null = null;
  /** Which way ping-pong playback goes now. */
  #step = 1;

  constructor(owner: EditorState) {
    super(owner);
    this.picker = new PickerState(owner.api);
  }

  pick = (image: ImageView): void => {
    this.other = image;
    this.error = null;
    this.owner.save();
  };

  make = (): Promise<unknown> =>
    this.submit(() => {
      const a = this.owner.sourceId;
      if (a === null) return 'Open an image first.';
      if (!this.other) return 'Pick the second image from the list first.';
      if (this.other.id === a) return 'Pick another image: an interpolation needs two different ones.';
      const frames = wholeNumber('Frames', this.frames, 2, MAX_FRAMES);
      if (typeof frames === 'string') return frames;
      const common = this.owner.decoderSettings();
      if (typeof common === 'string') return common;
      return this.owner.api.interpolate({ ...common, a, b: this.other.id, frames, noise: this.noise });
    });

  protected override started(): void {
    this.pause();
    this.index = 0;
    this.exported = null;
    this.exportError = null;
  }

  play = (): void => {
    if (this.frameIds.length < 2 || this.#timer !== null) return;
    this.playing = true;
    const fps = Math.min(30, Math.max(1, Number(this.fps) || 6));
    this.#timer = setInterval(() => {
      const n = this.frameIds.length;
      if (n < 2) return this.pause();
      if (this.pingPong) {
        if (this.index + this.#step < 0 || this.index + this.#step >= n) this.#step = -this.#step;
        this.index += this.#step;
      } else {
        this.index = (this.index + 1) % n;
      }
    }, 1000 / fps);
  };

  pause = (): void => {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.playing = false;
  };

  toggle = (): void => (this.playing ? this.pause() : this.play());

  /** Scrubbing stops playback. */
  seek = (index: number): void => {
    this.pause();
    this.index = Math.max(0, Math.min(this.frameIds.length - 1, Math.round(index)));
  };

  exportGif = async (): Promise<void> => {
    const ids = this.frameIds;
    if (ids.length === 0) return;
    this.exporting = true;
    this.exportError = null;
    this.exported = null;
    try {
      const fps = Math.min(30, Math.max(1, Number(this.fps) || 6));
      const blob = await framesToGif(
        ids.map((id) => this.owner.url('image', id)),
        { fps, pingPong: this.pingPong },
      );
      const args = (this.run?.job.args ?? {}) as { a?: number; b?: number };
      const name = `interpolation-${args.a ?? 'a'}-${args.b ?? 'b'}-${ids.length}f.gif`;
      download(blob, name);
      this.exported = `Saved ${name} (${ids.length} frames, ${Math.ceil(blob.size / 1024)} KiB).`;
    } catch (err) {
      this.exportError = `Could not make the GIF: ${messageOf(err)}. Try again, or open the frames in the Gallery.`;
    } finally {
      this.exporting = false;
    }
  };

  reset(): void {
    this.pause();
    this.run = null;
    this.error = null;
    this.index = 0;
    this.exported = null;
    this.exportError = null;
  }
}

export class TextDiffEditor extends EditorBase {
  from = $state('');
  to = $state('');
  thetaFrom = $state(0);
  thetaTo = $state(0.5);
  count = $state(6);
  /** The frame the θ slider is on (an index into the sweep). */
  index = $state(0);
  /** Frames starred here ("Keep"). */
  kept = $state.raw<ReadonlySet<number>>(new Set());
  /** Frames sent to the trash by "Discard the others". */
  discarded = $state.raw<ReadonlySet<number>>(new Set());
  confirming = $state(false);
  message = $state<string | null>(null);

  /** The sweep's frames (id and θ) that are still in the gallery. */
  frames = $derived.by(() => {
    if (this.run?.status !== 'done') return [];
    const thetas = ((this.run.job.args ?? {}) as { thetas?: number[] }).thetas ?? [];
    return this.run.imageIds.map((id, k) => ({ id, theta: thetas[k] ?? 0 })).filter((f) => !this.discarded.has(f.id));
  });
  current = $derived(this.frames[Math.min(this.index, this.frames.length - 1)] ?? null);
  /** Frames "Discard the others" would trash. */
  unkept = $derived(this.frames.filter((f) => !this.kept.has(f.id)));
  /** What the sweep will ask for, from the fields (empty while they are wrong). */
  thetas = $derived.by(() => {
    // An emptied field (null, or '') is not 0: it is what make() refuses.
    const typed = (v: unknown): boolean => v !== null && v !== undefined && String(v).trim() !== '';
    if (![this.thetaFrom, this.thetaTo, this.count].every(typed)) return [];
    const from = Number(this.thetaFrom);
    const to = Number(this.thetaTo);
    const n = Number(this.count);
    if (![from, to].every((v) => Number.isFinite(v) && v >= 0 && v <= 1)) return [];
    if (!Number.isInteger(n) || n < 1 || n > MAX_FRAMES) return [];
    return thetaSweep(from, to, n);
  });

  /** A new source: its prompt is the "from" description. */
  setSource(image: ImageView): void {
    this.from = image.prompt;
    this.run = null;
    this.error = null;
    this.message = null;
    this.kept = new Set();
    this.discarded = new Set();
    this.index = 0;
  }

  make = (): Promise<unknown> =>
    this.submit(() => {
      const id = this.owner.sourceId;
      if (id === null) return 'Open an image first.';
      const from = this.from.trim();
      const to = this.to.trim();
      if (!from) return 'From: say what the image shows now (its prompt is the default).';
      if (!to) return 'To: say what the image should become.';
      const a = realNumber('θ from', this.thetaFrom, 0, 1);
      const b = realNumber('θ to', this.thetaTo, 0, 1);
      const n = wholeNumber('Frames', this.count, 1, MAX_FRAMES);
      for (const v of [a, b, n]) if (typeof v === 'string') return v;
      const common = this.owner.decoderSettings();
      if (typeof common === 'string') return common;
      return this.owner.api.textdiff({
        ...common,
        id,
        from,
        to,
        thetas: thetaSweep(a as number, b as number, n as number),
      });
    });

  protected override started(): void {
    this.index = 0;
    this.kept = new Set();
    this.discarded = new Set();
    this.message = null;
  }

  select = (index: number): void => {
    this.index = Math.max(0, Math.min(this.frames.length - 1, Math.round(index)));
  };

  /** Stars the selected frame (or unstars it when it is kept already). */
  keep = async (): Promise<void> => {
    const frame = this.current;
    if (!frame) return;
    const starred = !this.kept.has(frame.id);
    try {
      await this.owner.api.galleryStar({ ids: [frame.id], starred });
      const kept = new Set(this.kept);
      if (starred) kept.add(frame.id);
      else kept.delete(frame.id);
      this.kept = kept;
      this.owner.save();
      this.message = starred
        ? `Kept image ${frame.id} (θ = ${frame.theta}): it is starred in the gallery.`
        : `Image ${frame.id} is no longer kept (unstarred).`;
      this.error = null;
    } catch (err) {
      this.error = `Could not star image ${frame.id}: ${messageOf(err)}`;
    }
  };

  askDiscard = (): void => {
    if (this.unkept.length) this.confirming = true;
  };

  cancelDiscard = (): void => {
    this.confirming = false;
  };

  /** Trashes the sweep's frames that were not kept (they can be restored from the trash). */
  discardOthers = async (): Promise<void> => {
    this.confirming = false;
    const ids = this.unkept.map((f) => f.id);
    if (!ids.length) return;
    const keepId = this.current && this.kept.has(this.current.id) ? this.current.id : null;
    try {
      await this.owner.api.galleryTrash({ ids });
      this.discarded = new Set([...this.discarded, ...ids]);
      this.owner.save();
      const at = keepId === null ? 0 : this.frames.findIndex((f) => f.id === keepId);
      this.index = Math.max(0, at);
      this.message = `Moved ${ids.length} ${ids.length === 1 ? 'frame' : 'frames'} to the trash (restore them from the Gallery's Trash).`;
      this.error = null;
    } catch (err) {
      this.error = `Could not move the frames to the trash: ${messageOf(err)}`;
    }
  };
}

export class EditorState {
  /** The image being edited. */
  sourceId = $state<number | null>(null);
  source = $state.raw<ImageDetailView | null>(null);
  sourceError = $state<string | null>(null);
  loading = $state(false);
  tab = $state<EditorTab>('vary');
  /** Decoder steps and guidance for every edit (empty: the pack's defaults). */
  steps = $state<string | number>('');
  guidance = $state<string | number>('');

  vary: VaryEditor;
  interpolate: InterpolateEditor;
  textdiff: TextDiffEditor;
  /** Picks the image to edit (when none is open, or to change it). */
  picker: PickerState;
  choosing = $state(false);

  image = $derived(this.source?.image ?? null);
  /** The first edit must invert the image (it has no stored x_T yet). */
  needsInversion = $derived(this.image !== null && !this.image.inverted);

  readonly api: StudioApi;
  readonly url: (kind: 'image' | 'thumb', id: number) => string;
  #queue: QueueState;
  #followed = new Map<number, EditorJob>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #generation = 0;

  constructor(api: StudioApi, queue: QueueState, url: (kind: 'image' | 'thumb', id: number) => string) {
    this.api = api;
    this.url = url;
    this.#queue = queue;
    this.vary = new VaryEditor(this);
    this.interpolate = new InterpolateEditor(this);
    this.textdiff = new TextDiffEditor(this);
    this.picker = new PickerState(api);
    queue.onJob((job) => this.#update(job));
    api.onLibrary((change) => {
      const id = this.sourceId;
      if (id !== null && (change.changed.includes(id) || change.removed.includes(id))) void this.#load(id);
    });
  }

  /** Opens image `id` in the editors (its detail read from the library). */
  open = async (id: number): Promise<void> => {
    this.choosing = false;
    if (id === this.sourceId && this.source) return;
    this.sourceId = id;
    this.source = null;
    this.vary.reset();
    this.interpolate.reset();
    if (this.interpolate.other?.id === id) this.interpolate.other = null;
    const saved = this.#saved(id);
    // The tab at once (the jobs follow once they are read), so a reload does not flash another one.
    if (saved) this.tab = EDITOR_TABS.some((t) => t.id === saved.tab) ? saved.tab : 'vary';
    await this.#load(id, true);
    if (saved) await this.#restore(id, saved);
    this.save();
  };

  select = (tab: EditorTab): void => {
    this.tab = tab;
    this.save();
  };

  /** The steps and guidance fields as edit arguments (absent when empty), or what is wrong with them. */
  decoderSettings(): { steps?: number; guidance?: number } | string {
    const out: { steps?: number; guidance?: number } = {};
    if (String(this.steps ?? '').trim() !== '') {
      const v = wholeNumber('Decoder steps', this.steps, LIMITS.steps.min, LIMITS.steps.max);
      if (typeof v === 'string') return `${v} Leave it empty for the pack's default.`;
      out.steps = v;
    }
    if (String(this.guidance ?? '').trim() !== '') {
      const v = realNumber('Guidance', this.guidance, LIMITS.guidance.min, LIMITS.guidance.max);
      if (typeof v === 'string') return `${v} Leave it empty for the pack's default.`;
      out.guidance = v;
    }
    return out;
  }

  /**
   * Keeps what the editors show in this tab's session storage (the image, the tab, the jobs and the
   * kept and discarded frames), so a reload comes back to the same jobs, still running or done.
   */
  save(): void {
    if (this.sourceId === null) return;
    const saved: SavedEditor = {
      sourceId: this.sourceId,
      tab: this.tab,
      vary: this.vary.runs.map((r) => r.job.id).slice(0, 20),
      interpolate: this.interpolate.run?.job.id ?? null,
      other: this.interpolate.other?.id ?? null,
      textdiff: this.textdiff.run?.job.id ?? null,
      kept: [...this.textdiff.kept],
      discarded: [...this.textdiff.discarded],
    };
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(saved));
    } catch {
      // Storage full or refused: a reload then starts the editors afresh.
    }
  }

  /** What this tab saved for image `id`, if anything. */
  #saved(id: number): SavedEditor | null {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null') as SavedEditor | null;
      return saved && saved.sourceId === id ? saved : null;
    } catch {
      return null;
    }
  }

  async #restore(id: number, saved: SavedEditor): Promise<void> {
    const get = async (jobId: number | null): Promise<EditorJob | null> => {
      if (jobId === null) return null;
      try {
        return this.follow(await this.api.jobsGet({ id: jobId }));
      } catch {
        return null; // gone (the library was cleared): nothing to show
      }
    };
    const [vary, interp, diff] = await Promise.all([
      Promise.all(saved.vary.map(get)),
      get(saved.interpolate),
      get(saved.textdiff),
    ]);
    if (this.sourceId !== id) return;
    this.vary.runs = vary.filter((r): r is EditorJob => r !== null);
    this.vary.run = this.vary.runs[0] ?? null;
    this.interpolate.run = interp;
    this.textdiff.run = diff;
    this.textdiff.kept = new Set(saved.kept);
    this.textdiff.discarded = new Set(saved.discarded);
    if (saved.other !== null) {
      try {
        this.interpolate.other = (await this.api.galleryGet({ id: saved.other })).image;
      } catch {
        this.interpolate.other = null;
      }
    }
  }

  async #load(id: number, fresh = false): Promise<void> {
    const generation = ++this.#generation;
    this.loading = true;
    try {
      const detail = await this.api.galleryGet({ id });
      if (generation !== this.#generation || this.sourceId !== id) return;
      this.source = detail;
      this.sourceError = null;
      if (fresh) this.textdiff.setSource(detail.image);
      const picker = this.interpolate.picker;
      if (picker.pack !== detail.image.pack.sha256) {
        picker.pack = detail.image.pack.sha256;
        if (picker.loaded) void picker.load();
      }
    } catch (err) {
      if (generation === this.#generation) this.sourceError = messageOf(err);
    } finally {
      if (generation === this.#generation) this.loading = false;
    }
  }

  choose = (): void => {
    this.choosing = true;
    void this.picker.load();
  };

  stopChoosing = (): void => {
    this.choosing = false;
  };

  /** The job's stage and step while it runs (from the queue's live progress). */
  progressOf = (run: EditorJob): JobProgress | null => this.#queue.progressOf(run.job);

  /** Follows a job this editor queued until it ends. */
  follow(job: JobView): EditorJob {
    const run = new EditorJob(job);
    this.#followed.set(job.id, run);
    this.#queue.add(job);
    this.#schedule();
    return run;
  }

  async cancel(run: EditorJob): Promise<void> {
    try {
      this.#update(await this.api.jobsCancel({ id: run.job.id }));
    } catch {
      await this.#refresh(run);
    }
  }

  async retry(run: EditorJob): Promise<void> {
    this.#update(await this.api.jobsRetry({ id: run.job.id }));
  }

  #update(job: JobView): void {
    const run = this.#followed.get(job.id);
    if (!run) return;
    // Of two views of the job keep the later one (an event may overtake a read).
    if (run.ended && !ENDED.has(job.status)) {
      if (job.status !== 'queued' || run.status !== 'failed') return;
    }
    run.job = job;
    if (job.status !== 'failed' && ENDED.has(job.status)) this.#followed.delete(job.id);
    else if (job.status === 'failed') this.#followed.set(job.id, run); // a retry may follow
    this.#schedule();
  }

  async #refresh(run: EditorJob): Promise<void> {
    try {
      this.#update(await this.api.jobsGet({ id: run.job.id }));
    } catch {
      // The next poll tries again.
    }
  }

  #schedule(): void {
    const busy = [...this.#followed.values()].some((r) => !r.ended);
    if (busy && this.#timer === null) {
      this.#timer = setInterval(() => {
        for (const run of this.#followed.values()) if (!run.ended) void this.#refresh(run);
      }, POLL_MS);
    } else if (!busy && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }
}

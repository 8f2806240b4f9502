// The job queue as the UI sees it: every queued or running job (read once with jobsList, then kept
// up to date by job events, so a reloaded window re-attaches to work already under way), the live
// progress and x0 preview of the running one, and the failures of this session until dismissed.
// It is the one listener to job and progress events; other screens follow jobs through onJob().

/* eslint-disable svelte/prefer-svelte-reactivity -- the Sets and Maps here are working sets and lookups,
   never read by a template or a $derived: what the UI reads is $state.raw, replaced whole. */

import type { JobKind, JobView, ProgressView, StudioApi } from '../../preload/contract.ts';

const ENDED: ReadonlySet<JobView['status']> = new Set(['done', 'failed', 'cancelled']);
const isEnded = (job: JobView): boolean => ENDED.has(job.status);

/** How the queue names each kind of job. */
export const JOB_LABELS: Record<JobKind, string> = {
  generate: 'Generate',
  vary: 'Variations',
  interpolate: 'Interpolation',
  textdiff: 'Text diff',
  invert: 'Inversion',
  import: 'Import',
};

/** Work the studio queues by itself (x_T of each new image): announced only when it fails. */
const BACKGROUND: ReadonlySet<JobKind> = new Set(['invert', 'import']);

/** Where a job is: the live event when one has come, else the last progress the queue stored. */
export interface JobProgress {
  stage: string;
  step: number;
  total: number;
  etaMs?: number;
  phase?: 'invert' | 'decode';
  /**
   * Share of the whole job done, 0–1: time spent over time spent plus the engine's ETA for the rest of the
   * job (all stages), so one bar runs through every stage instead of restarting at each; it never goes back.
   */
  fraction?: number;
}

/** elapsed / (elapsed + ETA), or undefined while the engine cannot tell (its ETA is 0 before a timed step). */
function shareDone(elapsedMs: number, etaMs: number | undefined, last: boolean): number | undefined {
  if (last) return 1;
  if (etaMs === undefined || etaMs <= 0 || elapsedMs < 0) return undefined;
  return elapsedMs / (elapsedMs + etaMs);
}

/** How often the list is read again while jobs are active (events missed while a socket reconnected). */
const RESYNC_MS = 10_000;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One line saying what a job works on, from its arguments. */
export function describeJob(job: JobView): string {
  const a = (job.args ?? {}) as Record<string, unknown>;
  switch (job.kind) {
    case 'generate': {
      const n = (a.settings as { n?: number } | undefined)?.n;
      return `“${String(a.prompt ?? '')}”${n ? ` × ${n}` : ''}`;
    }
    case 'vary':
      return `of image ${String(a.id)}${a.n ? ` × ${String(a.n)}` : ''}`;
    case 'interpolate':
      return `image ${String(a.a)} → image ${String(a.b)}${a.frames ? `, ${String(a.frames)} frames` : ''}`;
    case 'textdiff':
      return `image ${String(a.id)} → “${String(a.to ?? '')}”`;
    case 'invert':
    case 'import':
      return `image ${String(a.id)}`;
  }
}

export class QueueState {
  /** Queued and running jobs, and failures not yet dismissed. */
  jobs = $state.raw<JobView[]>([]);
  /** Live progress by job id (from progress events). */
  live = $state.raw<Record<number, ProgressView & { fraction?: number }>>({});
  /** Blob URL of each running job's latest x0 preview. */
  previews = $state.raw<Record<number, string>>({});
  /** The last job status worth saying out loud (an aria-live region reads it). */
  announcement = $state('');
  error = $state<string | null>(null);
  loaded = $state(false);

  /** Running first, then queued in the order they will run. */
  active = $derived(
    this.jobs
      .filter((j) => !isEnded(j))
      .sort((a, b) =>
        a.status !== b.status ? (a.status === 'running' ? -1 : 1) : a.position - b.position || a.id - b.id,
      ),
  );
  failed = $derived(this.jobs.filter((j) => j.status === 'failed').sort((a, b) => b.id - a.id));
  runningCount = $derived(this.active.filter((j) => j.status === 'running').length);
  queuedCount = $derived(this.active.length - this.runningCount);

  #api: StudioApi;
  #listeners = new Set<(job: JobView) => void>();
  /** Ids seen ending by event, so a list read before that event cannot bring them back. */
  #ended = new Set<number>();
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(api: StudioApi) {
    this.#api = api;
    api.onJob((job) => this.#update(job));
    api.onProgress((event) => this.#progress(event));
  }

  /** Follows every job event (after the queue itself has taken it in). */
  onJob(listener: (job: JobView) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Reads the queue: what is running or waiting now (also after a reload or a restart). */
  load = async (): Promise<void> => {
    try {
      const listed = await this.#api.jobsList({ status: ['queued', 'running'], limit: 1000 });
      this.error = null;
      const mine = new Map(this.jobs.map((j) => [j.id, j]));
      // An event may have come after the list was read: of two views of a job keep the later status.
      const rank = (j: JobView): number => (j.status === 'queued' ? 0 : j.status === 'running' ? 1 : 2);
      const fresh = listed
        .filter((j) => !this.#ended.has(j.id))
        .map((j) => {
          const seen = mine.get(j.id);
          return seen && rank(seen) > rank(j) ? seen : j;
        });
      const ids = new Set(fresh.map((j) => j.id));
      // Jobs this window thought active that the list no longer has: they ended unseen.
      const vanished = this.active.filter((j) => !ids.has(j.id));
      this.jobs = [...fresh, ...this.failed];
      await Promise.all(
        vanished.map(async (j) => {
          try {
            this.#update(await this.#api.jobsGet({ id: j.id }));
          } catch {
            this.#drop(j.id);
          }
        }),
      );
    } catch (err) {
      this.error = `Could not read the job queue: ${messageOf(err)}`;
    } finally {
      this.loaded = true;
      this.#schedule();
    }
  };

  cancel = async (id: number): Promise<void> => {
    try {
      this.#update(await this.#api.jobsCancel({ id }));
    } catch (err) {
      this.error = messageOf(err);
    }
  };

  /** Runs a queued job before the others. */
  runNext = async (id: number): Promise<void> => {
    try {
      this.#update(await this.#api.jobsMove({ id, to: 'front' }));
    } catch (err) {
      this.error = messageOf(err);
    }
  };

  retry = async (id: number): Promise<void> => {
    try {
      this.#ended.delete(id);
      this.#update(await this.#api.jobsRetry({ id }));
    } catch (err) {
      this.error = messageOf(err);
    }
  };

  dismiss = (id: number): void => {
    this.#drop(id);
  };

  dismissError = (): void => {
    this.error = null;
  };

  /** Takes in a job the UI has just queued, unless its events have already told more. */
  add = (job: JobView): void => {
    if (!this.#ended.has(job.id) && !this.jobs.some((j) => j.id === job.id)) this.#update(job);
  };

  progressOf = (job: JobView): JobProgress | null => {
    const event = this.live[job.id];
    if (event)
      return {
        stage: event.stage,
        step: event.step,
        total: event.total,
        etaMs: event.etaMs,
        ...(event.manipulation ? { phase: event.manipulation.phase } : {}),
        ...(event.fraction !== undefined ? { fraction: event.fraction } : {}),
      };
    // After a reload: the stored progress, its share from the job's start time.
    if (!job.progress) return null;
    const fraction =
      job.startedAt !== null ? shareDone(Date.now() - job.startedAt, job.progress.etaMs, false) : undefined;
    return { ...job.progress, ...(fraction !== undefined ? { fraction } : {}) };
  };

  #update(job: JobView): void {
    const before = this.jobs.find((j) => j.id === job.id);
    if (isEnded(job)) {
      this.#ended.add(job.id);
      this.#release(job.id);
      // Done and cancelled jobs leave the panel; failures stay until dismissed or retried.
      this.jobs = job.status === 'failed' ? this.#upsert(job) : this.jobs.filter((j) => j.id !== job.id);
    } else if (!this.#ended.has(job.id)) {
      this.jobs = this.#upsert(job);
    }
    if (before?.status !== job.status) this.#announce(job);
    for (const listener of this.#listeners) listener(job);
    this.#schedule();
  }

  #upsert(job: JobView): JobView[] {
    return this.jobs.some((j) => j.id === job.id)
      ? this.jobs.map((j) => (j.id === job.id ? job : j))
      : [...this.jobs, job];
  }

  #drop(id: number): void {
    this.#release(id);
    this.jobs = this.jobs.filter((j) => j.id !== id);
  }

  #progress(event: ProgressView): void {
    const last = event.step >= event.total && event.etaMs === 0 && event.stage === 'super_res';
    const share = shareDone(event.elapsedMs, event.etaMs, last);
    const before = this.live[event.jobId]?.fraction;
    const fraction = share === undefined ? before : Math.max(before ?? 0, share);
    this.live = { ...this.live, [event.jobId]: { ...event, ...(fraction !== undefined ? { fraction } : {}) } };
    if (event.preview) {
      const bytes = event.preview as Uint8Array<ArrayBuffer>;
      const url = URL.createObjectURL(new Blob([bytes], { type: 'image/png' }));
      const old = this.previews[event.jobId];
      this.previews = { ...this.previews, [event.jobId]: url };
      if (old) URL.revokeObjectURL(old);
    }
  }

  /** Forgets a job's live progress and revokes its preview. */
  #release(id: number): void {
    if (id in this.live) {
      const { [id]: _gone, ...rest } = this.live;
      this.live = rest;
    }
    const url = this.previews[id];
    if (url) {
      URL.revokeObjectURL(url);
      const { [id]: _revoked, ...rest } = this.previews;
      this.previews = rest;
    }
  }

  #announce(job: JobView): void {
    if (BACKGROUND.has(job.kind) && job.status !== 'failed') return;
    const name = `${JOB_LABELS[job.kind]} (job ${job.id})`;
    const images = job.imageIds.length;
    const said: Record<JobView['status'], string> = {
      queued: `${name} queued.`,
      running: `${name} started.`,
      done: `${name} done${images ? `: ${images} ${images === 1 ? 'image' : 'images'} saved` : ''}.`,
      failed: `${name} failed: ${job.error ?? 'no reason given'}.`,
      cancelled: `${name} cancelled.`,
    };
    this.announcement = said[job.status];
  }

  /** While jobs are active, reads the list now and then in case an event was missed. */
  #schedule(): void {
    const busy = this.jobs.some((j) => !isEnded(j));
    if (busy && this.#timer === null) {
      this.#timer = setInterval(() => void this.load(), RESYNC_MS);
    } else if (!busy && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }
}

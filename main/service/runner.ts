// Runs the library's queued jobs on the engine, one at a time, in queue order. A job is claimed with
// a lease (JobQueue.claim); while it runs, progress renews the lease and brings back cancel requests
// made by any process (the queue lives in the database, so the CLI can cancel the desktop app's job).
// A runner either serves the whole queue (desktop app, web mode) or only the jobs it was handed
// (the CLI: it must not start a queue of someone else's work), and gives a running job back to the
// queue when it is closed.

import type { ProgressEvent } from '../engine/api.ts';
import type { Job, JobProgress } from '../library/jobs.ts';
import { LEASE_MS } from '../library/jobs.ts';
import type { Library } from '../library/library.ts';
import { oneLine } from './errors.ts';
import type { JobOutcome, WorkContext } from './work.ts';

/** How often an idle runner that serves the whole queue looks for jobs other processes queued. */
const POLL_MS = 2_000;
const HEARTBEAT_MS = Math.floor(LEASE_MS / 3);
const PROGRESS_WRITE_MS = 1_000;

export interface RunnerOptions {
  library: Library;
  /** Runs one job's work (work.ts). */
  execute: (job: Job, ctx: WorkContext) => Promise<JobOutcome>;
  /** 'all': the whole queue (polled); 'own': only ids passed to take(). */
  scope: 'all' | 'own';
  onJob: (job: Job) => void;
  onProgress: (jobId: number, event: ProgressEvent) => void;
}

export class JobRunner {
  private running: { id: number; controller: AbortController } | null = null;
  private readonly own = new Set<number>();
  private loop: Promise<void> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  private again = false;
  private pauses = 0;

  constructor(private readonly o: RunnerOptions) {
    if (o.scope === 'all') {
      this.timer = setInterval(() => this.kick(), POLL_MS);
      this.timer.unref();
    }
  }

  /** A job this runner should run (scope 'own'); 'all' runners take every job anyway. */
  take(id: number): void {
    this.own.add(id);
    this.kick();
  }

  /** Starts working through the queue unless already doing so. */
  kick(): void {
    if (this.closed) return;
    if (this.loop) {
      this.again = true; // the loop may be past its last claim: it looks once more before it ends
      return;
    }
    this.loop = this.drain()
      .catch((err: unknown) => {
        // The queue itself could not be read or written (a disk gone, a database locked too long):
        // the jobs stay where they are and the next kick or poll tries again.
        console.error(`studio: the job queue: ${oneLine(err)}`);
      })
      .finally(() => {
        this.loop = null;
        if (this.again) this.kick();
      });
  }

  /** Cancels the job if this runner is running it (others see cancel_requested on their next beat). */
  abortIfRunning(id: number): void {
    if (this.running?.id === id) this.running.controller.abort();
  }

  /** Resolves when no job of this runner is running or waiting. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  /**
   * Lets the running job finish and starts no other until resume() (e.g. while the engine restarts);
   * resolves once nothing runs. Pauses nest.
   */
  async pause(): Promise<void> {
    this.pauses++;
    await this.idle();
  }

  resume(): void {
    if (this.pauses > 0 && --this.pauses === 0) this.kick();
  }

  /** The job running now, if any. */
  get runningId(): number | null {
    return this.running?.id ?? null;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    const current = this.running;
    if (current) {
      current.controller.abort(new ShutdownSignal());
      await this.loop;
    }
  }

  private next(): Job | null {
    // A library whose folder is gone waits (its jobs run when it is back) rather than failing them all.
    if (this.closed || this.pauses > 0 || !this.o.library.present()) return null;
    const { jobs } = this.o.library;
    if (this.o.scope === 'all') {
      jobs.recover();
      return jobs.claim();
    }
    for (const id of this.own) {
      this.own.delete(id);
      const job = jobs.claim({ id });
      if (job) return job;
    }
    return null;
  }

  private async drain(): Promise<void> {
    this.again = false;
    for (let job = this.next(); job; job = this.next()) await this.run(job);
  }

  private async run(job: Job): Promise<void> {
    const { library, execute, onJob, onProgress } = this.o;
    const queue = library.jobs;
    const controller = new AbortController();
    this.running = { id: job.id, controller };
    onJob(job);
    let lastWrite = 0;
    const beat = (progress?: JobProgress): void => {
      let beaten: { held: boolean; cancelRequested: boolean };
      try {
        beaten = queue.heartbeat(job.id, progress);
      } catch {
        return; // the queue cannot be written just now (its disk is gone): the job's own save will say so
      }
      if (!beaten.held) controller.abort(new LeaseLost());
      else if (beaten.cancelRequested) controller.abort();
    };
    const timer = setInterval(() => beat(), HEARTBEAT_MS);
    timer.unref();
    const ctx: WorkContext = {
      jobId: job.id,
      signal: controller.signal,
      onProgress: (event) => {
        onProgress(job.id, event);
        const t = Date.now();
        if (t - lastWrite >= PROGRESS_WRITE_MS || event.step === event.total) {
          lastWrite = t;
          beat({ stage: event.stage, step: event.step, total: event.total, etaMs: event.etaMs });
        }
      },
    };
    try {
      const outcome = await execute(job, ctx);
      if (controller.signal.aborted) throw controller.signal.reason;
      queue.complete(job.id, outcome);
    } catch (err) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : null;
      try {
        if (reason instanceof ShutdownSignal) queue.release(job.id);
        else if (reason instanceof LeaseLost) {
          // Another process has taken the job over (our lease expired): it is theirs to finish.
        } else if (controller.signal.aborted) queue.markCancelled(job.id);
        else queue.fail(job.id, oneLine(err));
      } catch (recordErr) {
        // The row could not be written (the library's disk is gone): it stays 'running' under a lease
        // that runs out, and the next open puts it back in the queue. The UI still hears why it stopped.
        console.error(`studio: job ${job.id}: ${oneLine(err)}; not recorded: ${oneLine(recordErr)}`);
        onJob({ ...job, status: 'failed', error: oneLine(err), finishedAt: Date.now() });
        return;
      }
    } finally {
      clearInterval(timer);
      this.running = null;
    }
    try {
      onJob(queue.get(job.id));
    } catch (err) {
      console.error(`studio: job ${job.id}: ${oneLine(err)}`);
    }
  }
}

class ShutdownSignal extends Error {
  constructor() {
    super('the studio is closing; the job goes back to the queue');
  }
}

class LeaseLost extends Error {
  constructor() {
    super('this job was taken over by another process');
  }
}

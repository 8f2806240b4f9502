// The persistent job queue, in the library's database: jobs run in `position` order, a runner
// claims one with a lease inside BEGIN IMMEDIATE, and every later update is fenced on that lease.
// A job whose runner died is re-queued by recover() (then failed after max_attempts): never lost,
// never cancelled by a restart.

import type Database from 'better-sqlite3';
import { LibraryError } from './errors.ts';
import { ownerAlive } from './files.ts';

import { JOB_KINDS, type Job, type JobKind, type JobProgress, type JobStatus } from './kinds.ts';

export type { Job, JobKind, JobProgress, JobStatus };

export const LEASE_MS = 30_000;
export const MAX_QUEUED = 200;

interface JobRow {
  id: number;
  kind: JobKind;
  status: JobStatus;
  args: string;
  position: number;
  attempts: number;
  max_attempts: number;
  lease_owner: string | null;
  lease_until: number | null;
  cancel_requested: number;
  progress: string | null;
  error: string | null;
  result: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

const parse = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

export class JobQueue {
  constructor(
    private readonly db: Database.Database,
    private readonly owner: string,
    private readonly now: () => number = Date.now,
  ) {}

  private toJob(r: JobRow): Job {
    const imageIds = (
      this.db.prepare('SELECT id FROM images WHERE job_id = ? ORDER BY job_index').all(r.id) as { id: number }[]
    ).map((x) => x.id);
    return {
      id: r.id,
      kind: r.kind,
      status: r.status,
      args: parse(r.args),
      position: r.position,
      attempts: r.attempts,
      maxAttempts: r.max_attempts,
      progress: parse(r.progress) as JobProgress | null,
      error: r.error,
      result: parse(r.result),
      imageIds,
      createdAt: r.created_at,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      cancelRequested: r.cancel_requested === 1,
      leaseOwner: r.lease_owner,
    };
  }

  private row(id: number): JobRow {
    const r = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    if (!r) throw new LibraryError('not_found', `no such job: ${id}`);
    return r;
  }

  get(id: number): Job {
    return this.toJob(this.row(id));
  }

  /**
   * Queues a job at the back. At most MAX_QUEUED may wait; `followUp` jobs (the encoding or
   * inversion of images already saved) are queued whatever the count, since refusing them would
   * fail work that is done.
   */
  enqueue(kind: JobKind, args: unknown, opts: { maxAttempts?: number; followUp?: boolean } = {}): Job {
    const id = this.db
      .transaction(() => {
        const queued = (
          this.db.prepare("SELECT count(*) AS n FROM jobs WHERE status = 'queued'").get() as { n: number }
        ).n;
        if (queued >= MAX_QUEUED && !opts.followUp)
          throw new LibraryError(
            'conflict',
            `the queue is full (${MAX_QUEUED} jobs waiting); wait for some to finish or cancel some`,
          );
        const top = (this.db.prepare('SELECT max(position) AS p FROM jobs').get() as { p: number | null }).p ?? 0;
        return Number(
          this.db
            .prepare(
              "INSERT INTO jobs (kind, status, args, position, max_attempts, created_at) VALUES (?, 'queued', ?, ?, ?, ?)",
            )
            .run(kind, JSON.stringify(args ?? null), top + 1, opts.maxAttempts ?? 3, this.now()).lastInsertRowid,
        );
      })
      .immediate();
    return this.get(id);
  }

  /** A queued or running job of this kind with exactly these arguments (so background work is queued once). */
  findActive(kind: JobKind, args: unknown): Job | null {
    const r = this.db
      .prepare("SELECT * FROM jobs WHERE kind = ? AND args = ? AND status IN ('queued', 'running') LIMIT 1")
      .get(kind, JSON.stringify(args ?? null)) as JobRow | undefined;
    return r ? this.toJob(r) : null;
  }

  /** Queued first (in order), then running, then finished newest first. */
  list(opts: { status?: JobStatus[]; limit?: number } = {}): Job[] {
    const status = JSON.stringify(opts.status ?? ['queued', 'running', 'done', 'failed', 'cancelled']);
    const rows = this.db
      .prepare(
        `SELECT * FROM jobs WHERE status IN (SELECT value FROM json_each(?))
         ORDER BY CASE status WHEN 'running' THEN 0 WHEN 'queued' THEN 1 ELSE 2 END,
           CASE WHEN status IN ('queued', 'running') THEN position ELSE -id END, id LIMIT ?`,
      )
      .all(status, Math.min(Math.max(opts.limit ?? 100, 1), 1000)) as JobRow[];
    return rows.map((r) => this.toJob(r));
  }

  claim(opts: { id?: number; kinds?: JobKind[] } = {}): Job | null {
    const id = this.db
      .transaction(() => {
        const r = (
          opts.id !== undefined
            ? this.db.prepare("SELECT id FROM jobs WHERE id = ? AND status = 'queued'").get(opts.id)
            : this.db
                .prepare(
                  `SELECT id FROM jobs WHERE status = 'queued' AND kind IN (SELECT value FROM json_each(?))
                   ORDER BY position, id LIMIT 1`,
                )
                .get(JSON.stringify(opts.kinds ?? JOB_KINDS))
        ) as { id: number } | undefined;
        if (!r) return null;
        const t = this.now();
        this.db
          .prepare(
            `UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = ?, lease_until = ?,
             started_at = ?, error = NULL WHERE id = ?`,
          )
          .run(this.owner, t + LEASE_MS, t, r.id);
        return r.id;
      })
      .immediate();
    return id === null ? null : this.get(id);
  }

  private fenced(sql: string, ...params: unknown[]): boolean {
    return (
      this.db.prepare(`${sql} WHERE id = ? AND status = 'running' AND lease_owner = ?`).run(...params, this.owner)
        .changes === 1
    );
  }

  heartbeat(id: number, progress?: JobProgress): { held: boolean; cancelRequested: boolean } {
    const held = progress
      ? this.fenced(
          'UPDATE jobs SET lease_until = ?, progress = ?',
          this.now() + LEASE_MS,
          JSON.stringify(progress),
          id,
        )
      : this.fenced('UPDATE jobs SET lease_until = ?', this.now() + LEASE_MS, id);
    const r = this.db.prepare('SELECT cancel_requested FROM jobs WHERE id = ?').get(id) as
      { cancel_requested: number } | undefined;
    return { held, cancelRequested: r?.cancel_requested === 1 };
  }

  complete(id: number, result: unknown): boolean {
    return this.fenced(
      "UPDATE jobs SET status = 'done', result = ?, finished_at = ?, lease_owner = NULL, lease_until = NULL",
      JSON.stringify(result ?? null),
      this.now(),
      id,
    );
  }

  fail(id: number, error: string): boolean {
    return this.fenced(
      "UPDATE jobs SET status = 'failed', error = ?, finished_at = ?, lease_owner = NULL, lease_until = NULL",
      error.split('\n')[0] ?? 'failed',
      this.now(),
      id,
    );
  }

  markCancelled(id: number): boolean {
    return this.fenced(
      "UPDATE jobs SET status = 'cancelled', finished_at = ?, lease_owner = NULL, lease_until = NULL",
      this.now(),
      id,
    );
  }

  /** Gives a running job back to the queue (the runner is shutting down): this attempt does not count. */
  release(id: number): boolean {
    return this.fenced(
      "UPDATE jobs SET status = 'queued', attempts = max(attempts - 1, 0), lease_owner = NULL, lease_until = NULL",
      id,
    );
  }

  cancel(id: number): Job {
    const r = this.row(id);
    if (r.status === 'queued')
      this.db.prepare("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ?").run(this.now(), id);
    else if (r.status === 'running') this.db.prepare('UPDATE jobs SET cancel_requested = 1 WHERE id = ?').run(id);
    else throw new LibraryError('conflict', `job ${id} has already ended (${r.status})`);
    return this.get(id);
  }

  move(id: number, to: { before: number } | 'front' | 'back'): Job {
    this.db
      .transaction(() => {
        if (this.row(id).status !== 'queued')
          throw new LibraryError('conflict', `job ${id} is not waiting in the queue`);
        const edge = (fn: 'min' | 'max'): number =>
          (this.db.prepare(`SELECT ${fn}(position) AS p FROM jobs WHERE status = 'queued'`).get() as { p: number }).p;
        let position: number;
        if (to === 'front') position = edge('min') - 1;
        else if (to === 'back') position = edge('max') + 1;
        else {
          const target = this.row(to.before);
          if (target.status !== 'queued')
            throw new LibraryError('conflict', `job ${to.before} is not waiting in the queue`);
          const prev = this.db
            .prepare("SELECT max(position) AS p FROM jobs WHERE status = 'queued' AND position < ? AND id != ?")
            .get(target.position, id) as { p: number | null };
          position = prev.p === null ? target.position - 1 : (prev.p + target.position) / 2;
        }
        this.db.prepare('UPDATE jobs SET position = ? WHERE id = ?').run(position, id);
      })
      .immediate();
    return this.get(id);
  }

  retry(id: number): Job {
    const r = this.row(id);
    if (r.status !== 'failed' && r.status !== 'cancelled')
      throw new LibraryError('conflict', `job ${id} is ${r.status}; only failed or cancelled jobs can be retried`);
    this.db
      .prepare(
        "UPDATE jobs SET status = 'queued', attempts = 0, error = NULL, cancel_requested = 0, finished_at = NULL WHERE id = ?",
      )
      .run(id);
    return this.get(id);
  }

  recover(): { requeued: number[]; failed: number[] } {
    return this.db
      .transaction(() => {
        const rows = this.db
          .prepare("SELECT id, attempts, max_attempts, lease_owner, lease_until FROM jobs WHERE status = 'running'")
          .all() as Pick<JobRow, 'id' | 'attempts' | 'max_attempts' | 'lease_owner' | 'lease_until'>[];
        const requeued: number[] = [];
        const failed: number[] = [];
        const t = this.now();
        for (const r of rows) {
          const expired = (r.lease_until ?? 0) < t;
          const dead = r.lease_owner !== null && r.lease_owner !== this.owner && !ownerAlive(r.lease_owner, this.owner);
          if (!expired && !dead) continue;
          if (r.attempts < r.max_attempts) {
            this.db
              .prepare("UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_until = NULL WHERE id = ?")
              .run(r.id);
            requeued.push(r.id);
          } else {
            this.db
              .prepare(
                "UPDATE jobs SET status = 'failed', error = ?, finished_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?",
              )
              .run(`interrupted ${r.attempts} times (the process running it stopped)`, t, r.id);
            failed.push(r.id);
          }
        }
        return { requeued, failed };
      })
      .immediate();
  }

  counts(): Record<JobStatus, number> {
    const out: Record<JobStatus, number> = { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0 };
    for (const r of this.db.prepare('SELECT status, count(*) AS n FROM jobs GROUP BY status').all() as {
      status: JobStatus;
      n: number;
    }[])
      out[r.status] = r.n;
    return out;
  }
}

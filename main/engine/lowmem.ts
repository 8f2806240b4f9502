// Low-memory mode (issue 18): a pack whose networks do not fit in memory together (Karlo: 15 GB of float32
// weights) keeps only the sessions the running stage needs. Each network's session is opened on its first run
// and closed again when another network needs the room: least recently used first, within a byte budget that
// is at least the largest network (so one stage always fits, and the small ones — text_proj, 31 MB — can stay
// next to it). Every open and close is timed, so the cost of the mode is visible (pack.memoryStats()).
import { totalmem, freemem } from 'node:os';
import type * as ort from 'onnxruntime-node';

/** What the stages use of a session: run it, release it, its I/O names. */
export interface SessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(
    feeds: ort.InferenceSession.FeedsType,
    fetches?: ort.InferenceSession.FetchesType,
  ): Promise<ort.InferenceSession.ReturnType>;
  release(): Promise<void>;
}

export type MemoryMode = 'all' | 'low';

/** Measured cost of the mode: opens and closes of sessions, and their time. */
export interface MemoryStats {
  mode: MemoryMode;
  /** Byte budget for open sessions (low mode), or the whole pack's estimate (all). */
  budgetBytes: number;
  /** Estimated resident bytes of every network together. */
  packBytes: number;
  opens: number;
  closes: number;
  openMs: number;
  closeMs: number;
  /** Open sessions' estimated bytes right now. */
  openBytes: number;
}

/**
 * Resident memory of a CPU session ≈ its weights (graph + external data file) plus its working memory.
 * Measured on the Karlo-shaped pack (onnxruntime-node 1.30, CPU, 'all'): see models/README.md "Exporting Karlo".
 */
export const RESIDENT_FACTOR = 1.25;
/** What the rest of the process (the studio, activations, tokenizer, images) needs besides the sessions. */
export const HEADROOM_BYTES = 1.5e9;

export interface MemoryPlan {
  mode: MemoryMode;
  budgetBytes: number;
  packBytes: number;
  largestBytes: number;
  machineBytes: number;
  availableBytes: number;
}

const GB = (b: number): string => `${(b / 1e9).toFixed(1)} GB`;

/**
 * Choose the mode from the pack's size and the machine's memory. 'all' when every network together (× the
 * resident factor, + headroom) fits in half the machine's memory; else 'low' with a budget of the largest
 * network plus slack for the small ones. Returns an error text (the numbers) when even the largest network does
 * not fit in the machine's memory.
 */
export function planMemory(
  sizes: number[],
  opts: { mode?: MemoryMode | 'auto'; machineBytes?: number; availableBytes?: number } = {},
): MemoryPlan | { error: string } {
  const machineBytes = opts.machineBytes ?? totalmem();
  const availableBytes = opts.availableBytes ?? Math.min(freemem(), machineBytes);
  const est = sizes.map((s) => s * RESIDENT_FACTOR);
  const packBytes = est.reduce((a, b) => a + b, 0);
  const largestBytes = Math.max(0, ...est);
  if (largestBytes + HEADROOM_BYTES > machineBytes) {
    return {
      error:
        `needs about ${GB(largestBytes + HEADROOM_BYTES)} of memory for its largest network ` +
        `(${GB(packBytes)} for all of them), this machine has ${GB(machineBytes)}`,
    };
  }
  let mode: MemoryMode = opts.mode && opts.mode !== 'auto' ? opts.mode : 'all';
  if (!opts.mode || opts.mode === 'auto') {
    mode = packBytes + HEADROOM_BYTES <= machineBytes / 2 ? 'all' : 'low';
  }
  const slack = Math.min(0.5e9, 0.25 * largestBytes);
  const budgetBytes = mode === 'all' ? packBytes : largestBytes + slack;
  return { mode, budgetBytes, packBytes, largestBytes, machineBytes, availableBytes };
}

export function describePlan(plan: MemoryPlan): string {
  return (
    `low-memory mode: the pack needs about ${GB(plan.packBytes)} with every network loaded and this machine has ` +
    `${GB(plan.machineBytes)} (${GB(plan.availableBytes)} available), so only the running stage's networks stay ` +
    `loaded (budget ${GB(plan.budgetBytes)}); each stage change reloads its network from disk`
  );
}

/** Sessions opened on demand within a byte budget (least recently used closed first). */
export class SessionPool {
  private readonly open = new Map<LazySession, ort.InferenceSession>();
  private openBytes = 0;
  private queue: Promise<unknown> = Promise.resolve();
  readonly stats: MemoryStats;

  constructor(
    readonly budgetBytes: number,
    packBytes: number,
  ) {
    this.stats = { mode: 'low', budgetBytes, packBytes, opens: 0, closes: 0, openMs: 0, closeMs: 0, openBytes: 0 };
  }

  /** The session of `lazy`, opened (after closing others until it fits) if needed. Serialised. */
  acquire(lazy: LazySession): Promise<ort.InferenceSession> {
    const next = this.queue.then(async () => {
      const have = this.open.get(lazy);
      if (have) {
        // most recently used last
        this.open.delete(lazy);
        this.open.set(lazy, have);
        return have;
      }
      for (const [other] of this.open) {
        if (this.openBytes + lazy.bytes <= this.budgetBytes) break;
        await this.close(other);
      }
      const t0 = performance.now();
      const session = await lazy.opener();
      this.stats.openMs += performance.now() - t0;
      this.stats.opens++;
      this.open.set(lazy, session);
      this.openBytes += lazy.bytes;
      this.stats.openBytes = this.openBytes;
      return session;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  async close(lazy: LazySession): Promise<void> {
    const s = this.open.get(lazy);
    if (!s) return;
    this.open.delete(lazy);
    this.openBytes -= lazy.bytes;
    this.stats.openBytes = this.openBytes;
    const t0 = performance.now();
    await s.release().catch(() => undefined);
    this.stats.closeMs += performance.now() - t0;
    this.stats.closes++;
  }

  async releaseAll(): Promise<void> {
    await this.queue;
    for (const [lazy] of [...this.open]) await this.close(lazy);
  }
}

/** A session that exists only while its network runs (low-memory mode). */
export class LazySession implements SessionLike {
  constructor(
    readonly pool: SessionPool,
    readonly opener: () => Promise<ort.InferenceSession>,
    /** Estimated resident bytes once open. */
    readonly bytes: number,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {}

  async run(
    feeds: ort.InferenceSession.FeedsType,
    fetches?: ort.InferenceSession.FetchesType,
  ): Promise<ort.InferenceSession.ReturnType> {
    const s = await this.pool.acquire(this);
    return fetches ? s.run(feeds, fetches) : s.run(feeds);
  }

  release(): Promise<void> {
    return this.pool.close(this);
  }
}

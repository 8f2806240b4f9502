// QueueState (renderer/lib/queue.svelte.ts): what the queue panel and every screen following jobs read.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { JobView, ProgressView } from '../../preload/contract.ts';
import { describeJob, QueueState } from '../../renderer/lib/queue.svelte.ts';
import { deferred, FakeStudio, job } from './fake-api.ts';

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

const progress = (jobId: number, fields: Partial<ProgressView> = {}): ProgressView => ({
  jobId,
  stage: 'decoder',
  step: 3,
  total: 12,
  elapsedMs: 900,
  etaMs: 2700,
  ...fields,
});

describe('QueueState', () => {
  let fake: FakeStudio;
  let queue: QueueState;

  beforeEach(() => {
    fake = new FakeStudio();
    queue = new QueueState(fake.api);
  });

  test('load reads the queued and running jobs: running first, then the waiting ones in their queue order', async () => {
    fake.on('jobs.list', [
      job({ id: 3, status: 'queued', position: 2 }),
      job({ id: 1, status: 'queued', position: 9 }),
      job({ id: 7, status: 'running', position: 1 }),
    ]);
    await queue.load();
    expect(fake.calls('jobs.list')).toEqual([{ status: ['queued', 'running'], limit: 1000 }]);
    expect(queue.active.map((j) => j.id)).toEqual([7, 3, 1]);
    expect([queue.runningCount, queue.queuedCount]).toEqual([1, 2]);
    expect(queue.loaded).toBe(true);
  });

  test('job events move a job through the panel and say each step; done jobs leave it, failures stay', () => {
    const seen: JobView[] = [];
    queue.onJob((j) => seen.push(j));
    fake.emit('job', job({ id: 4, status: 'queued' }));
    expect(queue.announcement).toBe('Generate (job 4) queued.');
    fake.emit('job', job({ id: 4, status: 'running' }));
    expect(queue.active[0]?.status).toBe('running');
    expect(queue.announcement).toBe('Generate (job 4) started.');
    fake.emit('job', job({ id: 4, status: 'done', imageIds: [10, 11] }));
    expect(queue.jobs).toEqual([]);
    expect(queue.announcement).toBe('Generate (job 4) done: 2 images saved.');

    fake.emit('job', job({ id: 5, kind: 'vary', status: 'failed', error: 'out of memory', args: { id: 2 } }));
    expect(queue.failed.map((j) => j.id)).toEqual([5]);
    expect(queue.active).toEqual([]);
    expect(queue.announcement).toBe('Variations (job 5) failed: out of memory.');
    expect(seen.map((j) => `${j.id}:${j.status}`)).toEqual(['4:queued', '4:running', '4:done', '5:failed']);
  });

  test('background work (inversions) is announced only when it fails', () => {
    fake.emit('job', job({ id: 8, kind: 'invert', status: 'running', args: { id: 3 } }));
    fake.emit('job', job({ id: 8, kind: 'invert', status: 'done', args: { id: 3 } }));
    expect(queue.announcement).toBe('');
    fake.emit('job', job({ id: 9, kind: 'invert', status: 'failed', args: { id: 3 }, error: 'no latent' }));
    expect(queue.announcement).toBe('Inversion (job 9) failed: no latent.');
  });

  test('a list read before a job ended cannot bring the ended job back', async () => {
    const list = deferred<JobView[]>();
    fake.on('jobs.list', () => list.promise);
    fake.emit('job', job({ id: 2, status: 'running' }));
    const loading = queue.load();
    fake.emit('job', job({ id: 2, status: 'done' }));
    list.resolve([job({ id: 2, status: 'running' })]);
    await loading;
    expect(queue.jobs).toEqual([]);
    // Nor can add() (a Generate's reply arriving after its events).
    queue.add(job({ id: 2, status: 'queued' }));
    expect(queue.jobs).toEqual([]);
  });

  test('a job the list no longer has is read once more and takes its final state', async () => {
    fake.emit('job', job({ id: 6, status: 'running' }));
    fake.on('jobs.list', []);
    fake.on('jobs.get', ({ id }) => job({ id, status: 'failed', error: 'engine crashed' }));
    await queue.load();
    expect(fake.calls('jobs.get')).toEqual([{ id: 6 }]);
    expect(queue.active).toEqual([]);
    expect(queue.failed[0]?.error).toBe('engine crashed');
  });

  test('progress: a live event wins over the stored progress, with its ETA and the inversion phase', () => {
    const running = job({ id: 3, status: 'running', progress: { stage: 'prior', step: 1, total: 10 } });
    fake.emit('job', running);
    expect(queue.progressOf(running)).toEqual({ stage: 'prior', step: 1, total: 10 });
    fake.emit('progress', progress(3, { manipulation: { phase: 'invert' } }));
    expect(queue.progressOf(running)).toMatchObject({
      stage: 'decoder',
      step: 3,
      total: 12,
      etaMs: 2700,
      phase: 'invert',
    });
    const first = queue.progressOf(running)!.fraction!;
    fake.emit('progress', progress(3, { step: 11, etaMs: 200 }));
    expect(queue.progressOf(running)).toMatchObject({ step: 11, etaMs: 200 });
    // The share of the whole job done grows with elapsed / (elapsed + ETA).
    expect(queue.progressOf(running)!.fraction).toBeGreaterThan(first);
    // An ended job forgets its live progress.
    fake.emit('job', { ...running, status: 'done' });
    expect(queue.live).toEqual({});
  });

  test('x0 previews become blob URLs, replaced (and the old one revoked) as they come, revoked when the job ends', () => {
    let n = 0;
    const create = vi.spyOn(URL, 'createObjectURL').mockImplementation(() => `blob:preview-${++n}`);
    const revoke = vi.spyOn(URL, 'revokeObjectURL').mockImplementation(() => {});
    fake.emit('job', job({ id: 1, status: 'running' }));
    fake.emit('progress', progress(1, { preview: new Uint8Array([137, 80, 78, 71]) }));
    expect(queue.previews[1]).toBe('blob:preview-1');
    fake.emit('progress', progress(1, { preview: new Uint8Array([137, 80, 78, 71]) }));
    expect(queue.previews[1]).toBe('blob:preview-2');
    expect(revoke).toHaveBeenCalledWith('blob:preview-1');
    fake.emit('job', job({ id: 1, status: 'cancelled' }));
    expect(revoke).toHaveBeenCalledWith('blob:preview-2');
    expect(queue.previews).toEqual({});
    expect(create).toHaveBeenCalledTimes(2);
  });

  test('cancel, run next and retry call the queue operations and take in the job they answer', async () => {
    fake.emit('job', job({ id: 1, status: 'running' }));
    fake.emit('job', job({ id: 2, status: 'queued', position: 5 }));
    fake.on('jobs.cancel', ({ id }) => job({ id, status: 'running', cancelRequested: true }));
    fake.on('jobs.move', ({ id }) => job({ id, status: 'queued', position: 0 }));
    fake.on('jobs.retry', ({ id }) => job({ id, status: 'queued' }));
    await queue.cancel(1);
    expect(queue.active[0]?.cancelRequested).toBe(true);
    await queue.runNext(2);
    expect(fake.calls('jobs.move')).toEqual([{ id: 2, to: 'front' }]);
    expect(queue.active.find((j) => j.id === 2)?.position).toBe(0);

    fake.emit('job', job({ id: 3, status: 'failed', error: 'x' }));
    await queue.retry(3);
    expect(fake.calls('jobs.retry')).toEqual([{ id: 3 }]);
    expect(queue.failed).toEqual([]);
    expect(queue.active.map((j) => j.id)).toContain(3);
  });

  test('an operation that fails says why in `error` until dismissed', async () => {
    fake.on('jobs.cancel', () => {
      throw new Error('job 9 is not in the queue');
    });
    await queue.cancel(9);
    expect(queue.error).toBe('job 9 is not in the queue');
    queue.dismissError();
    expect(queue.error).toBeNull();
    fake.on('jobs.list', () => {
      throw new Error('socket closed');
    });
    await queue.load();
    expect(queue.error).toBe('Could not read the job queue: socket closed');
  });

  test('dismiss drops a failure from the panel', () => {
    fake.emit('job', job({ id: 5, status: 'failed' }));
    queue.dismiss(5);
    expect(queue.failed).toEqual([]);
  });

  describe('while jobs are active', () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    test('the list is read again every 10 s (missed events), and no more once the queue is idle', async () => {
      fake.on('jobs.list', () => queue.active);
      fake.emit('job', job({ id: 1, status: 'running' }));
      await vi.advanceTimersByTimeAsync(10_000);
      expect(fake.calls('jobs.list')).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(fake.calls('jobs.list')).toHaveLength(2);
      fake.emit('job', job({ id: 1, status: 'done' }));
      await vi.advanceTimersByTimeAsync(60_000);
      await settle();
      expect(fake.calls('jobs.list')).toHaveLength(2);
    });
  });
});

test('describeJob names what each kind of job works on', () => {
  expect(describeJob(job({ id: 1, args: { prompt: 'a cat', settings: { n: 2 } } }))).toBe('“a cat” × 2');
  expect(describeJob(job({ id: 1, kind: 'vary', args: { id: 4, n: 3 } }))).toBe('of image 4 × 3');
  expect(describeJob(job({ id: 1, kind: 'interpolate', args: { a: 1, b: 2, frames: 8 } }))).toBe(
    'image 1 → image 2, 8 frames',
  );
  expect(describeJob(job({ id: 1, kind: 'textdiff', args: { id: 5, to: 'at night' } }))).toBe('image 5 → “at night”');
});

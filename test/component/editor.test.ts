// EditorState (renderer/lib/editor.svelte.ts): variations, interpolation and text diff of one image,
// each a job followed to its saved images; an image without x_T is inverted by its first edit.
import { beforeEach, describe, expect, test } from 'vitest';
import type { ImageView, JobView } from '../../preload/contract.ts';
import { EditorState, thetaSweep } from '../../renderer/lib/editor.svelte.ts';
import { QueueState } from '../../renderer/lib/queue.svelte.ts';
import { detail, FakeStudio, image, job } from './fake-api.ts';

const url = (kind: 'image' | 'thumb', id: number): string => `/media/${kind}/${id}`;

describe('EditorState', () => {
  let fake: FakeStudio;
  let queue: QueueState;
  let editor: EditorState;
  /** The library as the fake answers gallery.get. */
  let rows: Map<number, ImageView>;
  let nextJob: number;

  function queued(kind: JobView['kind']) {
    return (args: unknown): JobView => job({ id: ++nextJob, kind, args, status: 'queued' });
  }

  beforeEach(() => {
    sessionStorage.clear();
    fake = new FakeStudio();
    rows = new Map([
      [1, image({ id: 1, prompt: 'a red fox', inverted: false, psnr: null })],
      [2, image({ id: 2, prompt: 'a blue bird' })],
    ]);
    nextJob = 100;
    fake.on('gallery.get', ({ id }) => {
      const row = rows.get(id);
      if (!row) throw new Error(`image ${id} not found`);
      return detail(row);
    });
    fake.on('vary', queued('vary'));
    fake.on('interpolate', queued('interpolate'));
    fake.on('textdiff', queued('textdiff'));
    fake.on('jobs.get', ({ id }) => job({ id, kind: 'vary', status: 'done', imageIds: [id * 10] }));
    queue = new QueueState(fake.api);
    editor = new EditorState(fake.api, queue, url);
  });

  test('an image with no stored x_T says its first edit inverts it; once inverted, no more', async () => {
    await editor.open(1);
    expect(editor.image?.id).toBe(1);
    expect(editor.needsInversion).toBe(true);
    await editor.vary.make();
    const run = editor.vary.run!;
    fake.emit('job', { ...run.job, status: 'running' });
    // The job's inversion saved x_T: the library says the image changed, the editor reads it again.
    rows.set(1, { ...rows.get(1)!, inverted: true, psnr: 30 });
    fake.emit('library', { added: [11, 12], changed: [1], removed: [] });
    await expect.poll(() => editor.needsInversion).toBe(false);
    fake.emit('job', { ...run.job, status: 'done', imageIds: [11, 12] });
    expect(run.ended).toBe(true);
    expect(run.imageIds).toEqual([11, 12]);
    // The second batch is queued like the first: the service inverts nothing again.
    await editor.vary.make();
    expect(fake.calls('vary')).toHaveLength(2);
    expect(fake.calls('invert')).toEqual([]);
  });

  test('variations send η, the count, fresh noise, a typed seed and the decoder settings', async () => {
    await editor.open(2);
    Object.assign(editor.vary, { eta: 0.35, count: 2, fresh: true, seed: ' 77 ' });
    editor.steps = 30;
    editor.guidance = '';
    await editor.vary.make();
    expect(fake.calls('vary')).toEqual([{ id: 2, eta: 0.35, n: 2, fresh: true, seed: 77, steps: 30 }]);
    // Every batch stays listed, newest first, and the queue follows it.
    await editor.vary.make();
    expect(editor.vary.runs.map((r) => r.job.id)).toEqual([102, 101]);
    expect(queue.active.map((j) => j.id)).toEqual([101, 102]);
  });

  test('a bad field is named in words and nothing is queued', async () => {
    await editor.open(2);
    editor.vary.count = 0;
    await editor.vary.make();
    expect(editor.vary.error).toBe('Count: enter a whole number from 1 to 64.');
    editor.vary.count = 4;
    editor.vary.seed = 'abc';
    await editor.vary.make();
    expect(editor.vary.error).toBe(
      'Seed: enter a whole number from 0 to 4294967295. Leave it empty for a random seed.',
    );
    editor.vary.seed = '';
    editor.steps = 1;
    await editor.vary.make();
    expect(editor.vary.error).toBe(
      "Decoder steps: enter a whole number from 2 to 1000. Leave it empty for the pack's default.",
    );
    expect(fake.calls('vary')).toEqual([]);
  });

  test('a refused edit shows the service’s reason', async () => {
    await editor.open(2);
    fake.on('vary', () => {
      throw new Error('image 2 has no embedding yet');
    });
    await editor.vary.make();
    expect(editor.vary.error).toBe('image 2 has no embedding yet');
    expect(editor.vary.busy).toBe(false);
  });

  test('cancel and retry go through the queue and follow the answer', async () => {
    fake.on('jobs.cancel', ({ id }) => job({ id, kind: 'vary', status: 'cancelled' }));
    fake.on('jobs.retry', ({ id }) => job({ id, kind: 'vary', status: 'queued' }));
    await editor.open(2);
    await editor.vary.make();
    expect(editor.vary.busy).toBe(true);
    await editor.vary.cancel();
    expect(fake.calls('jobs.cancel')).toEqual([{ id: 101 }]);
    expect(editor.vary.run?.status).toBe('cancelled');
    expect(editor.vary.busy).toBe(false);

    await editor.vary.make();
    fake.emit('job', job({ id: 102, kind: 'vary', status: 'failed', error: 'engine crashed' }));
    expect(editor.vary.run?.status).toBe('failed');
    await editor.vary.retry();
    expect(fake.calls('jobs.retry')).toEqual([{ id: 102 }]);
    expect(editor.vary.run?.status).toBe('queued');
  });

  test('interpolation needs a second, different image, then queues frames and noise', async () => {
    await editor.open(1);
    await editor.interpolate.make();
    expect(editor.interpolate.error).toBe('Pick the second image from the list first.');
    editor.interpolate.pick(rows.get(1)!);
    await editor.interpolate.make();
    expect(editor.interpolate.error).toBe('Pick another image: an interpolation needs two different ones.');
    editor.interpolate.pick(rows.get(2)!);
    editor.interpolate.frames = 40;
    await editor.interpolate.make();
    expect(editor.interpolate.error).toBe('Frames: enter a whole number from 2 to 32.');
    editor.interpolate.frames = 5;
    editor.interpolate.noise = 'b';
    await editor.interpolate.make();
    expect(fake.calls('interpolate')).toEqual([{ a: 1, b: 2, frames: 5, noise: 'b' }]);
    const run = editor.interpolate.run!;
    fake.emit('job', { ...run.job, status: 'done', imageIds: [21, 22, 23, 24, 25] });
    expect(editor.interpolate.frameIds).toEqual([21, 22, 23, 24, 25]);
    editor.interpolate.seek(9);
    expect(editor.interpolate.current).toBe(25);
  });

  test('text diff sweeps θ over the frames asked for; Keep stars one, Discard trashes the others', async () => {
    fake.on('gallery.star', ({ ids }) => ({ changed: ids.length }));
    fake.on('gallery.trash', ({ ids }) => ({ changed: ids.length }));
    await editor.open(2);
    const diff = editor.textdiff;
    expect(diff.from).toBe('a blue bird');
    diff.to = 'a blue bird at night';
    diff.thetaFrom = 0;
    diff.thetaTo = 0.5;
    diff.count = 3;
    expect(diff.thetas).toEqual([0, 0.25, 0.5]);
    await diff.make();
    expect(fake.calls('textdiff')).toEqual([
      { id: 2, from: 'a blue bird', to: 'a blue bird at night', thetas: [0, 0.25, 0.5] },
    ]);
    fake.emit('job', { ...diff.run!.job, status: 'done', imageIds: [31, 32, 33] });
    expect(diff.frames).toEqual([
      { id: 31, theta: 0 },
      { id: 32, theta: 0.25 },
      { id: 33, theta: 0.5 },
    ]);
    diff.select(1);
    await diff.keep();
    expect(fake.calls('gallery.star')).toEqual([{ ids: [32], starred: true }]);
    expect(diff.unkept.map((f) => f.id)).toEqual([31, 33]);
    diff.askDiscard();
    expect(diff.confirming).toBe(true);
    await diff.discardOthers();
    expect(fake.calls('gallery.trash')).toEqual([{ ids: [31, 33] }]);
    expect(diff.frames).toEqual([{ id: 32, theta: 0.25 }]);
    expect(diff.current?.id).toBe(32);
    expect(diff.message).toBe("Moved 2 frames to the trash (restore them from the Gallery's Trash).");
  });

  test('the editor’s jobs are saved for the tab: reopening the image brings its batches and kept frames back', async () => {
    await editor.open(2);
    await editor.vary.make();
    editor.select('textdiff');
    const saved = JSON.parse(sessionStorage.getItem('unclip-studio.editor') ?? 'null');
    expect(saved).toMatchObject({ sourceId: 2, tab: 'textdiff', vary: [101] });

    // A reload: a new editor over the same session storage.
    const again = new EditorState(fake.api, new QueueState(fake.api), url);
    await again.open(2);
    expect(again.tab).toBe('textdiff');
    expect(fake.calls('jobs.get')).toEqual([{ id: 101 }]);
    expect(again.vary.runs.map((r) => [r.job.id, r.status, r.imageIds])).toEqual([[101, 'done', [1010]]]);
  });

  test('a missing image says why it could not be opened', async () => {
    await editor.open(99);
    expect(editor.sourceError).toBe('image 99 not found');
    expect(editor.image).toBeNull();
  });
});

test('thetaSweep spaces the angles evenly (4 decimals); one frame is the end angle', () => {
  expect(thetaSweep(0, 0.5, 6)).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5]);
  expect(thetaSweep(0.1, 0.2, 4)).toEqual([0.1, 0.1333, 0.1667, 0.2]);
  expect(thetaSweep(0, 0.7, 1)).toEqual([0.7]);
});

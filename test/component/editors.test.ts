// The editors (renderer/components/editors/*): their sliders, counts and buttons drive EditorState.
import { fireEvent, render, screen, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, test, vi } from 'vitest';
import type { ImageView, JobView } from '../../preload/contract.ts';
import Interpolate from '../../renderer/components/editors/Interpolate.svelte';
import TextDiff from '../../renderer/components/editors/TextDiff.svelte';
import Variations from '../../renderer/components/editors/Variations.svelte';
import { EditorState } from '../../renderer/lib/editor.svelte.ts';
import { QueueState } from '../../renderer/lib/queue.svelte.ts';
import { detail, FakeStudio, image, job } from './fake-api.ts';

let fake: FakeStudio;
let editor: EditorState;
let rows: Map<number, ImageView>;
let nextJob: number;

beforeEach(() => {
  sessionStorage.clear();
  fake = new FakeStudio();
  rows = new Map(
    [
      image({ id: 1, prompt: 'a red fox', inverted: false, psnr: null }),
      image({ id: 2, prompt: 'a blue bird' }),
      image({ id: 3, prompt: 'a green frog' }),
    ].map((r) => [r.id, r]),
  );
  nextJob = 100;
  const queued =
    (kind: JobView['kind']) =>
    (args: unknown): JobView =>
      job({ id: ++nextJob, kind, args });
  fake.on('gallery.get', ({ id }) => detail(rows.get(id)!));
  fake.on('gallery.list', () => ({ items: [...rows.values()].reverse(), nextCursor: null }));
  fake.on('vary', queued('vary'));
  fake.on('interpolate', queued('interpolate'));
  fake.on('textdiff', queued('textdiff'));
  editor = new EditorState(fake.api, new QueueState(fake.api), (kind, id) => `/media/${kind}/${id}`);
});

describe('Variations', () => {
  test('η slider, count, noise and seed go into the job “Make variations” queues', async () => {
    const user = userEvent.setup();
    await editor.open(2);
    render(Variations, { editor, onopen: vi.fn() });
    const eta = screen.getByRole('slider', { name: /η \(eta\)/ });
    await fireEvent.input(eta, { target: { value: '0.25' } });
    expect(eta).toHaveAttribute('aria-valuetext', 'η 0.25');
    expect(screen.getByText('0.25')).toBeVisible();
    const count = screen.getByRole('spinbutton', { name: 'Count' });
    await user.clear(count);
    await user.type(count, '3');
    await user.click(screen.getByRole('radio', { name: /Fresh noise/ }));
    await user.type(screen.getByRole('textbox', { name: 'Seed' }), '42');
    await user.click(screen.getByRole('button', { name: 'Make variations' }));
    expect(fake.calls('vary')).toEqual([{ id: 2, eta: 0.25, n: 3, fresh: true, seed: 42 }]);
    // The batch is listed with what it asked for, and its status while it waits.
    const batch = await screen.findByRole('article', { name: 'Variations, job 101' });
    expect(within(batch).getByRole('heading')).toHaveTextContent('Job 101 · η 0.25 · 3 images · fresh noise · seed 42');
    expect(within(batch).getByRole('status')).toHaveTextContent(
      '3 variations: queued (job 101), waiting for the engine.',
    );
  });

  test('an emptied count is refused with a sentence, as an alert', async () => {
    const user = userEvent.setup();
    await editor.open(2);
    render(Variations, { editor, onopen: vi.fn() });
    await user.clear(screen.getByRole('spinbutton', { name: 'Count' }));
    await user.click(screen.getByRole('button', { name: 'Make variations' }));
    expect(screen.getByRole('alert')).toHaveTextContent('Count: enter a whole number from 1 to 64.');
    expect(fake.calls('vary')).toEqual([]);
  });

  test('an image without x_T says the job inverts it first; the running job shows the inversion’s steps', async () => {
    await editor.open(1);
    render(Variations, { editor, onopen: vi.fn() });
    expect(screen.getByTestId('inversion-note')).toHaveTextContent('Image 1 has no stored x_T yet');
    await editor.vary.make();
    fake.emit('job', job({ id: 101, kind: 'vary', status: 'running', args: { id: 1, n: 4 } }));
    fake.emit('progress', {
      jobId: 101,
      stage: 'decoder',
      step: 7,
      total: 50,
      elapsedMs: 0,
      etaMs: 9000,
      manipulation: { phase: 'invert' },
    });
    expect(await screen.findByText(/Inverting the image first \(no stored x_T yet\): step 7 of 50/)).toBeVisible();
    const bar = screen.getByRole('progressbar', { name: 'Progress of job 101' });
    expect(Number(bar.getAttribute('value'))).toBeCloseTo(0.14);
  });

  test('the results of a finished batch open in the Gallery; Cancel cancels a waiting one', async () => {
    const user = userEvent.setup();
    const onopen = vi.fn();
    fake.on('jobs.cancel', ({ id }) => job({ id, kind: 'vary', status: 'cancelled' }));
    await editor.open(2);
    render(Variations, { editor, onopen });
    await editor.vary.make();
    fake.emit('job', job({ id: 101, kind: 'vary', status: 'done', imageIds: [41, 42], args: { id: 2, n: 2 } }));
    const results = await screen.findByRole('list', { name: 'Results of job 101' });
    await user.click(
      within(results).getByRole('button', { name: /Open image 42 in the Gallery \(variation 2 of image 2\)/ }),
    );
    expect(onopen).toHaveBeenCalledWith(42);

    await editor.vary.make();
    const batch = await screen.findByRole('article', { name: 'Variations, job 102' });
    await user.click(within(batch).getByRole('button', { name: 'Cancel' }));
    expect(fake.calls('jobs.cancel')).toEqual([{ id: 102 }]);
    expect(await within(batch).findByRole('status')).toHaveTextContent('4 variations: cancelled.');
  });
});

describe('Interpolate', () => {
  test('pick B from the picker (not A itself), set frames and noise, then Interpolate', async () => {
    const user = userEvent.setup();
    await editor.open(2);
    render(Interpolate, { editor, onopen: vi.fn() });
    const picker = await screen.findByRole('list', { name: 'Images to interpolate with' });
    const offered = await within(picker).findAllByRole('button');
    expect(offered.map((b) => b.getAttribute('aria-label'))).toEqual([
      'Pick image 3: a green frog',
      'Pick image 1: a red fox',
    ]);
    const frog = within(picker).getByRole('button', { name: 'Pick image 3: a green frog' });
    await user.click(frog);
    expect(frog).toHaveAttribute('aria-pressed', 'true');
    expect(screen.getByTestId('interpolate-b')).toHaveTextContent('B: image 3');
    const frames = screen.getByRole('spinbutton', { name: 'Frames' });
    await user.clear(frames);
    await user.type(frames, '4');
    await user.click(screen.getByRole('radio', { name: 'Random' }));
    await user.click(screen.getByRole('button', { name: 'Interpolate' }));
    expect(fake.calls('interpolate')).toEqual([{ a: 2, b: 3, frames: 4, noise: 'random' }]);
    // The picker asked only for images of A's pack.
    expect(fake.calls('gallery.list').at(-1)).toMatchObject({ pack: rows.get(2)!.pack.sha256 });
  });

  test('picking an image B that has no x_T says that one is inverted first', async () => {
    const user = userEvent.setup();
    await editor.open(2);
    render(Interpolate, { editor, onopen: vi.fn() });
    await user.click(await screen.findByRole('button', { name: 'Pick image 1: a red fox' }));
    expect(screen.getByTestId('inversion-note')).toHaveTextContent('Image 1 has no stored x_T yet');
  });

  test('a finished interpolation: scrubber, frame strip and play/pause walk its frames', async () => {
    const user = userEvent.setup();
    const onopen = vi.fn();
    await editor.open(2);
    editor.interpolate.pick(rows.get(3)!);
    render(Interpolate, { editor, onopen });
    await editor.interpolate.make();
    fake.emit(
      'job',
      job({ id: 101, kind: 'interpolate', status: 'done', imageIds: [51, 52, 53], args: { a: 2, b: 3, frames: 3 } }),
    );
    expect(await screen.findByTestId('interpolate-position')).toHaveTextContent('1 / 3');
    await fireEvent.input(screen.getByRole('slider', { name: 'Frame' }), { target: { value: '2' } });
    expect(screen.getByTestId('interpolate-position')).toHaveTextContent('3 / 3');
    expect(screen.getByRole('img', { name: 'Frame 3 of 3' })).toHaveAttribute('data-image-id', '53');
    const strip = screen.getByRole('list', { name: 'Interpolation frames' });
    await user.click(within(strip).getByRole('button', { name: 'Show frame 2 (image 52)' }));
    expect(within(strip).getByRole('button', { name: 'Show frame 2 (image 52)' })).toHaveAttribute(
      'aria-current',
      'true',
    );
    await user.click(screen.getByRole('button', { name: 'Open frame in Gallery' }));
    expect(onopen).toHaveBeenCalledWith(52);
    await user.click(screen.getByRole('button', { name: 'Play' }));
    expect(editor.interpolate.playing).toBe(true);
    await user.click(screen.getByRole('button', { name: 'Pause' }));
    expect(editor.interpolate.playing).toBe(false);
  });
});

test('Interpolate: leaving the editor stops the playback', async () => {
  const user = userEvent.setup();
  await editor.open(2);
  editor.interpolate.pick(rows.get(3)!);
  const view = render(Interpolate, { editor, onopen: vi.fn() });
  await editor.interpolate.make();
  fake.emit(
    'job',
    job({ id: 101, kind: 'interpolate', status: 'done', imageIds: [51, 52], args: { a: 2, b: 3, frames: 2 } }),
  );
  await user.click(await screen.findByRole('button', { name: 'Play' }));
  expect(editor.interpolate.playing).toBe(true);
  view.unmount();
  expect(editor.interpolate.playing).toBe(false);
});

describe('TextDiff', () => {
  test('from is the prompt; the θ fields show the sweep they ask for; Sweep θ queues it', async () => {
    const user = userEvent.setup();
    await editor.open(2);
    render(TextDiff, { editor, onopen: vi.fn() });
    expect(screen.getByRole('textbox', { name: 'From (what it shows)' })).toHaveValue('a blue bird');
    await user.type(screen.getByRole('textbox', { name: 'To (what it should become)' }), 'a bird at night');
    const count = screen.getByRole('spinbutton', { name: 'Frames' });
    await user.clear(count);
    await user.type(count, '3');
    expect(screen.getByTestId('textdiff-thetas')).toHaveTextContent('θ = 0, 0.25, 0.5');
    await user.click(screen.getByRole('button', { name: 'Sweep θ' }));
    expect(fake.calls('textdiff')).toEqual([
      { id: 2, from: 'a blue bird', to: 'a bird at night', thetas: [0, 0.25, 0.5] },
    ]);
  });

  test('an emptied θ field shows no sweep (the one Sweep θ would refuse), and Sweep θ says which field', async () => {
    const user = userEvent.setup();
    await editor.open(2);
    render(TextDiff, { editor, onopen: vi.fn() });
    expect(screen.getByTestId('textdiff-thetas')).toHaveTextContent('θ = 0, 0.1, 0.2, 0.3, 0.4, 0.5');
    await user.type(screen.getByRole('textbox', { name: 'To (what it should become)' }), 'at night');
    await user.clear(screen.getByRole('spinbutton', { name: 'From θ' }));
    expect(screen.getByTestId('textdiff-thetas')).toHaveTextContent('θ from 0 to 1, 1 to 32 frames.');
    await user.click(screen.getByRole('button', { name: 'Sweep θ' }));
    expect(screen.getByRole('alert')).toHaveTextContent('θ from: enter a number from 0 to 1.');
    expect(fake.calls('textdiff')).toEqual([]);
  });

  test('without a “to” it says what is missing', async () => {
    const user = userEvent.setup();
    await editor.open(2);
    render(TextDiff, { editor, onopen: vi.fn() });
    await user.click(screen.getByRole('button', { name: 'Sweep θ' }));
    expect(screen.getByRole('alert')).toHaveTextContent('To: say what the image should become.');
  });

  test('Keep stars the chosen frame; Discard the others asks, then trashes the rest', async () => {
    const user = userEvent.setup();
    fake.on('gallery.star', ({ ids }) => ({ changed: ids.length }));
    fake.on('gallery.trash', ({ ids }) => ({ changed: ids.length }));
    await editor.open(2);
    editor.textdiff.to = 'at night';
    render(TextDiff, { editor, onopen: vi.fn() });
    await editor.textdiff.make();
    const args = fake.calls('textdiff')[0];
    fake.emit('job', job({ id: 101, kind: 'textdiff', status: 'done', imageIds: [61, 62, 63, 64, 65, 66], args }));
    const strip = await screen.findByRole('list', { name: 'Text diff frames' });
    expect(within(strip).getAllByRole('button')).toHaveLength(6);
    expect(screen.getByRole('button', { name: 'Discard the others…' })).toBeDisabled();
    await fireEvent.input(screen.getByRole('slider', { name: 'θ' }), { target: { value: '2' } });
    expect(screen.getByTestId('textdiff-theta')).toHaveTextContent('θ = 0.2');
    await user.click(screen.getByRole('button', { name: 'Keep' }));
    expect(fake.calls('gallery.star')).toEqual([{ ids: [63], starred: true }]);
    expect(await screen.findByRole('button', { name: 'Kept' })).toHaveAttribute('aria-pressed', 'true');
    expect(within(strip).getByRole('button', { name: 'Select θ = 0.2 (image 63, kept)' })).toBeVisible();

    await user.click(screen.getByRole('button', { name: 'Discard the others…' }));
    const dialog = screen.getByRole('dialog', { name: 'Discard the other frames?' });
    expect(dialog).toHaveTextContent('5 frames of this sweep that you did not keep will go to the trash.');
    await user.click(within(dialog).getByRole('button', { name: 'Move 5 to the trash' }));
    expect(fake.calls('gallery.trash')).toEqual([{ ids: [61, 62, 64, 65, 66] }]);
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(within(strip).getAllByRole('button')).toHaveLength(1);
    expect(screen.getByTestId('textdiff-frame')).toHaveAttribute('data-image-id', '63');
  });

  test('“Keep them” closes the question and trashes nothing', async () => {
    const user = userEvent.setup();
    fake.on('gallery.star', ({ ids }) => ({ changed: ids.length }));
    await editor.open(2);
    editor.textdiff.to = 'at night';
    render(TextDiff, { editor, onopen: vi.fn() });
    await editor.textdiff.make();
    fake.emit(
      'job',
      job({ id: 101, kind: 'textdiff', status: 'done', imageIds: [61, 62], args: fake.calls('textdiff')[0] }),
    );
    await user.click(await screen.findByRole('button', { name: 'Keep' }));
    await user.click(await screen.findByRole('button', { name: 'Discard the others…' }));
    await user.click(screen.getByRole('button', { name: 'Keep them' }));
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(fake.calls('gallery.trash')).toEqual([]);
  });
});

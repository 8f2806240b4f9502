// ConfirmDialog and QueuePanel, rendered and used as a person would (by role and accessible name).
import { fireEvent, render, screen, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { createRawSnippet } from 'svelte';
import { describe, expect, test, vi } from 'vitest';
import ConfirmDialog from '../../renderer/components/ConfirmDialog.svelte';
import QueuePanel from '../../renderer/components/QueuePanel.svelte';
import { QueueState } from '../../renderer/lib/queue.svelte.ts';
import { FakeStudio, job } from './fake-api.ts';

describe('ConfirmDialog', () => {
  function dialog(props: { open?: boolean } = {}) {
    const onconfirm = vi.fn();
    const oncancel = vi.fn();
    const children = createRawSnippet(() => ({
      render: () => '<label>Folder <input name="dir" value="/tmp/out" /></label>',
    }));
    const view = render(ConfirmDialog, {
      open: true,
      title: 'Export 3 images?',
      confirmLabel: 'Export',
      cancelLabel: 'Not now',
      onconfirm,
      oncancel,
      children,
      ...props,
    });
    return { ...view, onconfirm, oncancel };
  }

  test('open: a modal dialog named by its title, with its body and two answers', () => {
    dialog();
    const box = screen.getByRole('dialog', { name: 'Export 3 images?' });
    expect(box).toHaveAttribute('open');
    expect(within(box).getByRole('textbox', { name: 'Folder' })).toHaveValue('/tmp/out');
    expect(within(box).getByRole('button', { name: 'Not now' })).toBeVisible();
    expect(within(box).getByRole('button', { name: 'Export' })).toHaveAttribute('type', 'submit');
  });

  test('the confirm button (or Enter in its field) confirms; the cancel button cancels', async () => {
    const user = userEvent.setup();
    const { onconfirm, oncancel } = dialog();
    await user.click(screen.getByRole('button', { name: 'Export' }));
    expect(onconfirm).toHaveBeenCalledTimes(1);
    await user.type(screen.getByRole('textbox', { name: 'Folder' }), '/x{Enter}');
    expect(onconfirm).toHaveBeenCalledTimes(2);
    await user.click(screen.getByRole('button', { name: 'Not now' }));
    expect(oncancel).toHaveBeenCalledTimes(1);
  });

  test('Esc (the dialog’s cancel event) and a click on the backdrop answer no; a click inside does not', async () => {
    const { oncancel } = dialog();
    const box = screen.getByRole('dialog');
    const esc = new Event('cancel', { cancelable: true });
    box.dispatchEvent(esc);
    expect(oncancel).toHaveBeenCalledTimes(1);
    // The page answers; the browser must not close the dialog behind Svelte's back.
    expect(esc.defaultPrevented).toBe(true);
    await fireEvent.click(box);
    expect(oncancel).toHaveBeenCalledTimes(2);
    await fireEvent.click(screen.getByRole('heading', { name: 'Export 3 images?' }));
    expect(oncancel).toHaveBeenCalledTimes(2);
  });

  test('closed: nothing is in the page; opening it shows it', async () => {
    const view = dialog({ open: false });
    expect(screen.queryByRole('dialog')).toBeNull();
    await view.rerender({ open: true });
    expect(screen.getByRole('dialog', { name: 'Export 3 images?' })).toBeVisible();
  });
});

describe('QueuePanel', () => {
  function panel() {
    const fake = new FakeStudio();
    const queue = new QueueState(fake.api);
    render(QueuePanel, { queue });
    return { fake, queue };
  }

  test('idle: says nothing is waiting', () => {
    panel();
    expect(screen.getByText('idle')).toBeVisible();
    expect(screen.getByText(/Nothing is waiting/)).toBeVisible();
    expect(screen.queryByRole('list', { name: 'Jobs' })).toBeNull();
  });

  test('running and waiting jobs, each with its place, its stage, step and ETA, and a progress bar', async () => {
    const { fake } = panel();
    fake.emit('job', job({ id: 1, status: 'running', args: { prompt: 'a red fox', settings: { n: 2 } } }));
    fake.emit('job', job({ id: 2, status: 'queued', position: 1 }));
    fake.emit('job', job({ id: 3, kind: 'vary', status: 'queued', position: 2, args: { id: 9, n: 4 } }));
    fake.emit('progress', { jobId: 1, stage: 'decoder', step: 6, total: 24, elapsedMs: 1000, etaMs: 12_400 });
    const running = await screen.findByRole('listitem', { name: 'Generate · job 1' });
    expect(screen.getByText('1 running · 2 waiting')).toBeVisible();
    expect(within(running).getByText('“a red fox” × 2')).toBeVisible();
    expect(within(running).getByText('Decoder (embedding → image)')).toBeVisible();
    expect(within(running).getByText('step 6/24 · ETA 12 s')).toBeVisible();
    const bar = within(running).getByRole('progressbar', { name: 'Progress of job 1' });
    // One bar for the whole job: elapsed / (elapsed + ETA of every stage left) = 1 / 13.4.
    expect(bar).toHaveAttribute('max', '100');
    expect(bar).toHaveAttribute('value', '7');

    fake.emit('progress', { jobId: 1, stage: 'decoder', step: 20, total: 24, elapsedMs: 4000, etaMs: 800 });
    expect(await within(running).findByText('step 20/24 · ETA 0.8 s')).toBeVisible();
    expect(bar).toHaveAttribute('value', '83');
    // The next stage starts at step 1 of its own, and the bar does not go back with it.
    fake.emit('progress', { jobId: 1, stage: 'super_res', step: 1, total: 7, elapsedMs: 4100, etaMs: 1500 });
    expect(await within(running).findByText('step 1/7 · ETA 1.5 s')).toBeVisible();
    expect(bar).toHaveAttribute('value', '83');
    const vary = screen.getByRole('listitem', { name: 'Variations · job 3' });
    expect(within(vary).getByText('waiting #3')).toBeVisible();
    expect(within(vary).getByText('of image 9 × 4')).toBeVisible();
  });

  test('no ETA while the engine cannot tell yet (it says 0 before its first timed step)', async () => {
    const { fake } = panel();
    fake.emit('job', job({ id: 1, status: 'running' }));
    fake.emit('progress', { jobId: 1, stage: 'text', step: 1, total: 1, elapsedMs: 40, etaMs: 0 });
    expect(await screen.findByText('Encoding the prompt')).toBeVisible();
    expect(screen.getByTestId('job-progress')).toHaveTextContent(/^step 1\/1$/);
    fake.emit('progress', { jobId: 1, stage: 'prior', step: 1, total: 10, elapsedMs: 90, etaMs: 61_000 });
    expect(await screen.findByText('step 1/10 · ETA 61 s')).toBeVisible();
  });

  test('an inversion running inside an edit is named so', async () => {
    const { fake } = panel();
    fake.emit('job', job({ id: 4, kind: 'vary', status: 'running', args: { id: 1 } }));
    fake.emit('progress', {
      jobId: 4,
      stage: 'decoder',
      step: 2,
      total: 50,
      elapsedMs: 100,
      etaMs: 5000,
      manipulation: { phase: 'invert' },
    });
    expect(await screen.findByText('Inverting (image → noise)')).toBeVisible();
  });

  test('Cancel and Run next call the queue; only a job behind another waiting one can run next', async () => {
    const user = userEvent.setup();
    const { fake } = panel();
    fake.on('jobs.cancel', ({ id }) => job({ id, status: 'running', cancelRequested: true }));
    fake.on('jobs.move', ({ id }) => job({ id, status: 'queued', position: 0 }));
    fake.emit('job', job({ id: 1, status: 'running' }));
    fake.emit('job', job({ id: 2, status: 'queued', position: 1 }));
    fake.emit('job', job({ id: 3, status: 'queued', position: 2 }));
    await screen.findByRole('listitem', { name: 'Generate · job 3' });
    expect(screen.queryByRole('button', { name: 'Run job 2 next' })).toBeNull();
    await user.click(screen.getByRole('button', { name: 'Run job 3 next' }));
    expect(fake.calls('jobs.move')).toEqual([{ id: 3, to: 'front' }]);
    // Job 3 is now first among the waiting: it has no "Run next" any more, job 2 has.
    expect(await screen.findByRole('button', { name: 'Run job 2 next' })).toBeVisible();
    expect(screen.queryByRole('button', { name: 'Run job 3 next' })).toBeNull();

    await user.click(screen.getByRole('button', { name: 'Cancel job 1' }));
    expect(fake.calls('jobs.cancel')).toEqual([{ id: 1 }]);
    expect(await screen.findByText('cancelling')).toBeVisible();
    expect(screen.getByRole('button', { name: 'Cancel job 1' })).toBeDisabled();
  });

  test('a failure stays with its reason until retried or dismissed', async () => {
    const user = userEvent.setup();
    const { fake } = panel();
    fake.on('jobs.retry', ({ id }) => job({ id, status: 'queued' }));
    fake.emit('job', job({ id: 7, status: 'failed', error: 'decoder ran out of memory' }));
    fake.emit('job', job({ id: 8, status: 'failed', error: null }));
    const failed = await screen.findByRole('listitem', { name: 'Generate · job 7, failed' });
    expect(within(failed).getByText('decoder ran out of memory')).toBeVisible();
    expect(screen.getByText('No reason was given.')).toBeVisible();
    await user.click(within(failed).getByRole('button', { name: 'Retry job 7' }));
    expect(fake.calls('jobs.retry')).toEqual([{ id: 7 }]);
    expect(await screen.findByRole('listitem', { name: 'Generate · job 7' })).toBeVisible();
    await user.click(screen.getByRole('button', { name: 'Dismiss job 8' }));
    expect(screen.queryByRole('listitem', { name: /job 8/ })).toBeNull();
  });

  test('an error of the queue is an alert with a Dismiss button', async () => {
    const user = userEvent.setup();
    const { fake, queue } = panel();
    fake.on('jobs.cancel', () => {
      throw new Error('job 5 already finished');
    });
    await queue.cancel(5);
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('job 5 already finished');
    await user.click(within(alert).getByRole('button', { name: 'Dismiss' }));
    expect(screen.queryByRole('alert')).toBeNull();
  });
});

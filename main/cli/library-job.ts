// Runs one studio operation as a library job from the CLI: queued in the library like the desktop
// app's, run by this process, progress on a TTY, Ctrl-C cancels it; the saved images come back.

import type { ProgressEvent } from '../engine/api.ts';
import type { ImageView, JobView } from '../../preload/contract.ts';
import { fmtMs } from './args.ts';
import type { CliStudio } from './studio-session.ts';

type JobOp = 'generate' | 'vary' | 'interpolate' | 'textdiff' | 'invert';

export function showProgress(e: ProgressEvent): void {
  if (!process.stderr.isTTY) return;
  const phase = e.manipulation ? `${e.manipulation.phase} ` : '';
  process.stderr.write(
    `\r\x1b[K${phase}${e.stage} ${e.step}/${e.total}  ${fmtMs(e.elapsedMs)} elapsed, ~${fmtMs(e.etaMs)} left`,
  );
}

/** A job that did not finish: its one-line error, exit code 1 (130 when cancelled with Ctrl-C). */
export class JobFailed extends Error {
  override name = 'JobFailed';
  constructor(readonly job: JobView) {
    super(job.status === 'cancelled' ? `job ${job.id} was cancelled` : (job.error ?? `job ${job.id} ${job.status}`));
  }
}

export async function runLibraryJob(
  studio: CliStudio,
  op: JobOp,
  raw: unknown,
): Promise<{ job: JobView; images: ImageView[] }> {
  const queued = (await studio.call(op, raw)) as JobView;
  const unsubscribe = studio.service.subscribe((event) => {
    if (event.name === 'progress' && event.payload.jobId === queued.id) showProgress(event.payload);
  });
  const onSigint = (): void => void studio.call('jobs.cancel', { id: queued.id }).catch(() => undefined);
  process.once('SIGINT', onSigint);
  try {
    const job = await studio.service.waitForJob(queued.id);
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    if (job.status !== 'done') throw new JobFailed(job);
    const images = await Promise.all(job.imageIds.map(async (id) => (await studio.call('gallery.get', { id })).image));
    return { job, images };
  } finally {
    unsubscribe();
    process.off('SIGINT', onSigint);
  }
}

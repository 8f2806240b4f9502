// worker_thread bootstrap: starts worker.ts, registering tsx first when this thread cannot load
// TypeScript yet (hooks from the parent's `--import tsx` or in-process register() do not always reach
// a worker on Node 20).
try {
  await import('./worker.ts');
} catch (err) {
  if (err?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
  const { register } = await import('tsx/esm/api');
  register();
  // a new URL: the failed import above stays cached under the plain one
  await import('./worker.ts?tsx');
}

// Error kinds that cross the worker boundary by name, so callers can tell bad input (fix the request),
// a broken pack (fix the files), a cancellation and an engine failure apart.
export { InputError } from './settings.ts';

/** The pack on disk is missing, malformed or corrupt; the message names the file. */
export class PackError extends Error {
  override name = 'PackError';
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
  }
}

/** The request was cancelled through its AbortSignal. */
export class CancelledError extends Error {
  override name = 'AbortError';
  constructor(message = 'generation cancelled') {
    super(message);
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}

/** First line of an error's message (no stack traces across the boundary or on the console). */
export function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (message.split('\n').find((l) => l.trim()) ?? message).trim() || 'unknown error';
}

// Errors from the engine and the library, as the contract's StudioError: one line, with a code the
// transports map to a status (web mode) or an exit code (CLI).

import { StudioError, type ErrorCode } from '../../preload/contract.ts';
import { oneLine } from '../engine/errors.ts';
import { LibraryError, type LibraryErrorKind } from '../library/errors.ts';

export { oneLine };

const LIBRARY_CODES: Record<LibraryErrorKind, ErrorCode> = {
  not_found: 'not_found',
  invalid: 'invalid_argument',
  conflict: 'conflict',
  corrupt: 'library',
  newer: 'library',
  io: 'library',
};

/** Engine errors cross the worker boundary by name (main/engine/errors.ts); library errors by kind. */
export function toStudioError(err: unknown): StudioError {
  if (err instanceof StudioError) return err;
  if (err instanceof LibraryError) return new StudioError(LIBRARY_CODES[err.kind], err.message);
  const message = oneLine(err);
  const name = err instanceof Error ? err.name : '';
  if (name === 'InputError') return new StudioError('invalid_argument', message);
  if (name === 'AbortError') return new StudioError('cancelled', message);
  if (name === 'PackError') return new StudioError('engine', `model pack: ${message}`);
  return new StudioError('engine', `engine: ${message}`);
}

// The engine's message protocol (plain structured-clone data), shared by serve.ts (engine side) and
// client.ts (caller side). Replies carry the request id; progress events stream before the result.
import type { GenerateRequest, ManipulationRequest, ProgressEvent } from './api.ts';

export type EngineRequest =
  | { type: 'info'; id: number }
  | { type: 'generate'; id: number; request: GenerateRequest; progress: boolean }
  | { type: 'manipulate'; id: number; request: ManipulationRequest; progress: boolean }
  | { type: 'embedText'; id: number; text: string }
  | { type: 'countTokens'; id: number; text: string }
  | { type: 'cancel'; id: number }
  | { type: 'close'; id: number };

export type EngineReply =
  | { type: 'result'; id: number; value: unknown }
  /** `name`: InputError (bad request), PackError (bad pack), AbortError (cancelled), Error (engine). */
  | { type: 'error'; id: number; name: string; message: string }
  | { type: 'progress'; id: number; event: ProgressEvent };

export interface MessagePortLike {
  post(msg: unknown, transfer?: ArrayBuffer[]): void;
  onMessage(cb: (msg: unknown) => void): void;
}

export function isRequest(msg: unknown): msg is EngineRequest {
  if (typeof msg !== 'object' || msg === null) return false;
  const m = msg as { type?: unknown; id?: unknown };
  return (
    typeof m.id === 'number' &&
    ['info', 'generate', 'manipulate', 'embedText', 'countTokens', 'cancel', 'close'].includes(m.type as string)
  );
}

export function isReply(msg: unknown): msg is EngineReply {
  if (typeof msg !== 'object' || msg === null) return false;
  const m = msg as { type?: unknown; id?: unknown };
  return typeof m.id === 'number' && ['result', 'error', 'progress'].includes(m.type as string);
}

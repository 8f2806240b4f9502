// The caller's side of the engine protocol over any port (worker_thread, utilityProcess): request ids,
// streamed progress, cancellation through AbortSignal, errors as rejected promises carrying the engine's
// one-line message and kind (error.name: InputError, PackError, AbortError or Error).
import type {
  EngineClient,
  EngineInfo,
  GenerateRequest,
  GenerateResult,
  ManipulationRequest,
  ManipulationResult,
  ProgressEvent,
  TokenCount,
} from './api.ts';
import { isReply, type EngineRequest, type MessagePortLike } from './protocol.ts';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  onProgress?: (event: ProgressEvent) => void;
}

export interface PortEngineClient extends EngineClient {
  countTokens(text: string): Promise<TokenCount>;
  /** Rejects every call in flight (e.g. the worker died); later calls are rejected too. */
  dispose(reason: Error): void;
}

function engineError(name: string, message: string): Error {
  const err = new Error(message);
  err.name = name;
  return err;
}

export function createPortEngineClient(port: MessagePortLike): PortEngineClient {
  let nextId = 1;
  let disposed: Error | null = null;
  const pending = new Map<number, Pending>();

  port.onMessage((msg) => {
    if (!isReply(msg)) return;
    const p = pending.get(msg.id);
    if (!p) return; // a cancelled request's late messages
    if (msg.type === 'progress') {
      try {
        p.onProgress?.(msg.event);
      } catch (err) {
        console.error('engine: progress listener failed:', err);
      }
      return;
    }
    pending.delete(msg.id);
    if (msg.type === 'result') p.resolve(msg.value);
    else p.reject(engineError(msg.name, msg.message));
  });

  function call<T>(
    make: (id: number) => EngineRequest,
    onProgress?: (e: ProgressEvent) => void,
  ): { id: number; promise: Promise<T> } {
    const id = nextId++;
    const promise = new Promise<T>((resolve, reject) => {
      if (disposed) return reject(disposed);
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject, ...(onProgress ? { onProgress } : {}) });
      try {
        port.post(make(id));
      } catch (err) {
        pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    return { id, promise };
  }

  /** A call that an AbortSignal can cancel: the worker is told, the promise rejects with AbortError at once. */
  function cancellable<T>(
    make: (id: number) => EngineRequest,
    { signal, onProgress }: { signal?: AbortSignal; onProgress?: (e: ProgressEvent) => void },
  ): Promise<T> {
    if (signal?.aborted) return Promise.reject(engineError('AbortError', 'generation cancelled'));
    const { id, promise } = call<T>(make, onProgress);
    if (!signal) return promise;
    const onAbort = (): void => {
      const p = pending.get(id);
      if (!p) return;
      pending.delete(id);
      port.post({ type: 'cancel', id } satisfies EngineRequest);
      p.reject(engineError('AbortError', 'generation cancelled'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    return promise.finally(() => signal.removeEventListener('abort', onAbort));
  }

  return {
    info: () => call<EngineInfo>((id) => ({ type: 'info', id })).promise,

    generate: (request: GenerateRequest, options = {}) =>
      cancellable<GenerateResult>(
        (i) => ({ type: 'generate', id: i, request, progress: Boolean(options.onProgress) }),
        options,
      ),

    manipulate: (request: ManipulationRequest, options = {}) =>
      cancellable<ManipulationResult>(
        (i) => ({ type: 'manipulate', id: i, request, progress: Boolean(options.onProgress) }),
        options,
      ),

    embedText: (text: string) => call<Float32Array>((id) => ({ type: 'embedText', id, text })).promise,
    countTokens: (text: string) => call<TokenCount>((id) => ({ type: 'countTokens', id, text })).promise,

    async close() {
      if (disposed) return;
      await call<void>((id) => ({ type: 'close', id })).promise;
    },

    dispose(reason: Error) {
      disposed = reason;
      for (const p of pending.values()) p.reject(reason);
      pending.clear();
    },
  };
}

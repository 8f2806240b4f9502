// The studio's operations, each implemented once. IPC (main/app), the web server (main/web) and
// the CLI call these; none of them holds logic of its own. Arguments arrive already validated
// against preload/contract.ts (the transports call parseArgs); results are plain data.

import type { EngineClient, GenerateResult, PackInfo } from '../engine/api.ts';
import {
  StudioError,
  type GenerateView,
  type OperationName,
  type ParsedArgs,
  type Result,
  type StudioEvent,
} from '../../preload/contract.ts';
import { aboutView, REPOSITORY_APP_DIR } from './about.ts';

export type Handlers = { [K in OperationName]: (args: ParsedArgs<K>) => Promise<Result<K>> };

export interface StudioService {
  readonly handlers: Handlers;
  /** Runs one operation (arguments already parsed). */
  call<K extends OperationName>(op: K, args: ParsedArgs<K>): Promise<Result<K>>;
  /** Listens to pushed events (progress); returns the unsubscribe function. */
  subscribe(listener: (event: StudioEvent) => void): () => void;
  /** Cancels running jobs and closes the engine. */
  close(): Promise<void>;
}

export interface StudioServiceOptions {
  engine: EngineClient;
  /** Where the gallery lives (used by the library operations). */
  libraryDir?: string;
  /**
   * The app's folder, holding package.json, LICENSE and THIRD_PARTY_NOTICES.md (the About box).
   * Default: the repository root; the desktop app passes app.getAppPath().
   */
  appDir?: string;
}

function toView(jobId: string, result: GenerateResult): GenerateView {
  return {
    jobId,
    prompt: result.prompt,
    settings: result.settings,
    truncated: result.truncated,
    images: result.images.map(({ seed, png, width, height, score }) =>
      score === undefined ? { seed, png, width, height } : { seed, png, width, height, score },
    ),
    timings: result.timings,
  };
}

export function createStudioService({ engine, appDir = REPOSITORY_APP_DIR }: StudioServiceOptions): StudioService {
  const listeners = new Set<(event: StudioEvent) => void>();
  const jobs = new Map<string, AbortController>();

  const emit = (event: StudioEvent): void => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (err) {
        console.error('studio: event listener failed:', err);
      }
    }
  };

  // Engine errors cross the worker boundary by name (main/engine/errors.ts).
  const engineError = (err: unknown): StudioError => {
    if (err instanceof StudioError) return err;
    const message = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
    const name = err instanceof Error ? err.name : '';
    if (name === 'InputError') return new StudioError('invalid_argument', message);
    if (name === 'AbortError') return new StudioError('cancelled', message);
    return new StudioError('engine', `engine: ${message}`);
  };

  const handlers: Handlers = {
    async 'engine.info'() {
      try {
        return await engine.info();
      } catch (err) {
        throw engineError(err);
      }
    },

    async generate({ jobId, prompt, settings }) {
      if (jobs.has(jobId)) throw new StudioError('busy', `generate: job ${jobId} is already running`);
      const controller = new AbortController();
      jobs.set(jobId, controller);
      try {
        const result = await engine.generate(
          { prompt, settings },
          {
            signal: controller.signal,
            onProgress: (progress) => emit({ name: 'progress', payload: { ...progress, jobId } }),
          },
        );
        return toView(jobId, result);
      } catch (err) {
        if (controller.signal.aborted) throw new StudioError('cancelled', `generate: job ${jobId} was cancelled`);
        throw engineError(err);
      } finally {
        jobs.delete(jobId);
      }
    },

    async 'generate.cancel'({ jobId }) {
      const controller = jobs.get(jobId);
      if (!controller) return { cancelled: false };
      controller.abort();
      return { cancelled: true };
    },

    // The engine knows which pack it loaded (and where); the app's part still shows without one.
    async about() {
      let pack: PackInfo | null = null;
      let packError: string | undefined;
      try {
        pack = (await engine.info()).pack;
      } catch (err) {
        packError = engineError(err).message;
      }
      return aboutView({ appDir, pack, packError });
    },
  };

  return {
    handlers,
    call: (op, args) => handlers[op](args),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      for (const controller of jobs.values()) controller.abort();
      listeners.clear();
      await engine.close();
    },
  };
}

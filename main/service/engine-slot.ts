// The engine the service talks to, which the Models and Settings views can swap for one with another
// pack, backend or thread count. A restart closes the old engine (its memory is freed before the new
// pack loads), starts the new one and waits until its pack has loaded; a pack that fails to load
// brings the previous configuration back and the error is reported. Calls made meanwhile wait for
// the restart, then go to whichever engine runs. (The service pauses its job runner around a
// restart, so a running job finishes on the engine it started with.)

import type { Backend, EngineClient, EngineInfo } from '../engine/api.ts';
import { oneLine } from '../engine/errors.ts';
import { StudioError } from '../../preload/contract.ts';

/** What an engine is started with (absent: the engine's defaults). */
export interface EngineConfig {
  packDir?: string;
  backend?: Backend;
  threads?: number;
}

export type StartEngine = (config: EngineConfig) => EngineClient;

/** The engine process's argv for a config (main/engine/serve.ts's engineOptionsFromArgv reads it). */
export function engineArgv(config: EngineConfig): string[] {
  return [
    ...(config.packDir !== undefined ? ['--pack', config.packDir] : []),
    ...(config.backend !== undefined ? ['--backend', config.backend] : []),
    ...(config.threads !== undefined ? ['--threads', String(config.threads)] : []),
  ];
}

export class EngineSlot {
  private current: EngineClient;
  private cfg: EngineConfig;
  /** The last restart asked for (restarts run one after another). */
  private switching: Promise<unknown> = Promise.resolve();
  /** Forwards every call to the engine that runs, after any restart in progress. */
  readonly client: EngineClient;

  constructor(
    engine: EngineClient,
    config: EngineConfig,
    private readonly start: StartEngine | undefined,
  ) {
    this.current = engine;
    this.cfg = { ...config };
    const ready = async (): Promise<EngineClient> => {
      await this.switching.catch(() => undefined);
      return this.current;
    };
    this.client = {
      info: async () => (await ready()).info(),
      generate: async (request, options) => (await ready()).generate(request, options),
      manipulate: async (request, options) => {
        const e = await ready();
        if (!e.manipulate) throw new StudioError('engine', 'this engine cannot edit images');
        return e.manipulate(request, options);
      },
      embedText: async (text) => {
        const e = await ready();
        if (!e.embedText) throw new StudioError('engine', 'this engine cannot embed text');
        return e.embedText(text);
      },
      countTokens: async (text) => {
        const e = await ready();
        if (!e.countTokens) throw new StudioError('engine', 'this engine cannot count tokens');
        return e.countTokens(text);
      },
      close: async () => {
        await this.switching.catch(() => undefined);
        await this.current.close();
      },
    };
  }

  /** What the running engine was started with. */
  get config(): EngineConfig {
    return { ...this.cfg };
  }

  get canRestart(): boolean {
    return this.start !== undefined;
  }

  /** Restarts the engine with `next`; resolves with its info once the pack has loaded. */
  restart(next: EngineConfig): Promise<EngineInfo> {
    const start = this.start;
    if (!start) {
      return Promise.reject(
        new StudioError(
          'conflict',
          'this studio runs a fixed engine; start it again with --pack, --backend or --threads',
        ),
      );
    }
    const run = async (): Promise<EngineInfo> => {
      const previous = this.cfg;
      await this.current.close().catch(() => undefined);
      this.current = start(next);
      try {
        const info = await this.current.info();
        this.cfg = { ...next };
        return info;
      } catch (err) {
        await this.current.close().catch(() => undefined);
        this.current = start(previous);
        throw new StudioError('engine', `the engine could not start that way (${oneLine(err)}); it runs as before`);
      }
    };
    const p = this.switching.catch(() => undefined).then(run);
    this.switching = p;
    return p;
  }
}

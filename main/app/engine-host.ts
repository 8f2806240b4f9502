// The desktop app's EngineClient: the engine runs in a utilityProcess (engine-process.ts) and
// main talks to it with the engine's port client. If that process dies, calls in flight fail
// with a clear error and the next call starts a fresh process (a crash loop is cut off).

import type { EngineClient } from '../engine/api.ts';
import { createPortEngineClient, type PortEngineClient } from '../engine/client.ts';

/** What the host uses of Electron's UtilityProcess. */
export interface UtilityChild {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  once(event: 'exit', listener: (code: number) => void): unknown;
  kill(): boolean;
}

/** Electron's utilityProcess.fork (main/app/index.ts passes it; tests pass a fake, as Electron is absent). */
export type ForkUtility = (
  modulePath: string,
  args: string[],
  options: { serviceName: string; stdio: 'inherit' },
) => UtilityChild;

export interface UtilityEngineOptions {
  /** Built engine-process.js. */
  modulePath: string;
  /** argv for the engine process: --pack DIR --backend NAME --threads N. */
  args?: string[];
  fork: ForkUtility;
}

/** How long close() waits for the engine to finish and exit before killing it. */
const CLOSE_GRACE_MS = 5000;

const MAX_CRASHES = 3;
const CRASH_WINDOW_MS = 60_000;

interface Running {
  child: UtilityChild;
  client: PortEngineClient;
}

export function createUtilityEngine({ modulePath, args = [], fork }: UtilityEngineOptions): EngineClient {
  let running: Running | null = null;
  let closed = false;
  const crashes: number[] = [];

  function start(): Running {
    const recent = crashes.filter((t) => Date.now() - t < CRASH_WINDOW_MS);
    if (recent.length >= MAX_CRASHES) {
      throw new Error(`the engine process crashed ${recent.length} times in a minute; restart the studio`);
    }
    const child = fork(modulePath, args, { serviceName: 'unCLIP engine', stdio: 'inherit' });
    const client = createPortEngineClient({
      post: (msg) => child.postMessage(msg),
      onMessage: (cb) => child.on('message', cb),
    });
    const r: Running = { child, client };
    child.once('exit', (code) => {
      client.dispose(new Error(`the engine process exited (code ${code})`));
      if (running === r) running = null;
      if (!closed) crashes.push(Date.now());
    });
    return r;
  }

  const current = (): Running => {
    if (closed) throw new Error('engine closed');
    return (running ??= start());
  };

  return {
    info: async () => current().client.info(),
    generate: async (request, options) => current().client.generate(request, options),
    manipulate: async (request, options) => current().client.manipulate!(request, options),
    embedText: async (text) => current().client.embedText!(text),
    countTokens: async (text) => current().client.countTokens!(text),
    async close() {
      closed = true;
      const r = running;
      running = null;
      if (!r) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        r.client.close().catch(() => undefined),
        new Promise((done) => (timer = setTimeout(done, CLOSE_GRACE_MS))),
      ]);
      clearTimeout(timer);
      r.child.kill();
    },
  };
}

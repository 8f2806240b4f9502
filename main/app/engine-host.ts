// The desktop app's EngineClient: the engine runs in a utilityProcess (engine-process.ts) and
// main talks to it with the engine's port client. If that process dies, calls in flight fail
// with a clear error and the next call starts a fresh process (crash loops are cut off).

import { utilityProcess, type UtilityProcess } from 'electron';
import type { EngineClient } from '../engine/api.ts';
import { createPortEngineClient } from '../engine/client.ts';

export interface UtilityEngineOptions {
  /** Built engine-process.js. */
  modulePath: string;
  /** Extra argv for the engine process (pack dir, backend, threads). */
  args?: string[];
}

const MAX_CRASHES = 3;
const CRASH_WINDOW_MS = 60_000;

interface Running {
  child: UtilityProcess;
  client: EngineClient;
  /** Rejects when the process exits. */
  died: Promise<never>;
}

export function createUtilityEngine({ modulePath, args = [] }: UtilityEngineOptions): EngineClient {
  let running: Running | null = null;
  let closing = false;
  const crashes: number[] = [];

  function start(): Running {
    const recent = crashes.filter((t) => Date.now() - t < CRASH_WINDOW_MS);
    if (recent.length >= MAX_CRASHES) {
      throw new Error(`the engine process crashed ${recent.length} times in a minute; restart the studio`);
    }
    const child = utilityProcess.fork(modulePath, args, { serviceName: 'unCLIP engine', stdio: 'inherit' });
    const client = createPortEngineClient({
      post: (msg: unknown) => child.postMessage(msg),
      onMessage: (cb: (msg: unknown) => void) => child.on('message', cb),
    });
    const died = new Promise<never>((_, reject) => {
      child.once('exit', (code) => {
        if (running?.child === child) running = null;
        if (!closing) crashes.push(Date.now());
        reject(new Error(`the engine process exited (code ${code})`));
      });
    });
    died.catch(() => undefined);
    return { child, client, died };
  }

  const current = (): Running => (running ??= start());

  return {
    async info() {
      const r = current();
      return Promise.race([r.client.info(), r.died]);
    },
    async generate(request, options) {
      const r = current();
      return Promise.race([r.client.generate(request, options), r.died]);
    },
    async close() {
      closing = true;
      const r = running;
      running = null;
      if (!r) return;
      await Promise.race([r.client.close(), r.died, new Promise((resolve) => setTimeout(resolve, 2000))]).catch(
        () => undefined,
      );
      r.child.kill();
    },
  };
}

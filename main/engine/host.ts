// Runs the engine in a worker_thread so the caller's event loop never blocks on inference
// (onnxruntime-node's run() is synchronous native work, perf-anchors §5.1). Used by web mode and the CLI;
// the desktop app runs the same loop (serve.ts) in a utilityProcess instead.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Backend, EngineClient } from './api.ts';
import { createPortEngineClient, type PortEngineClient } from './client.ts';
import type { EngineOptions } from './engine.ts';

export interface WorkerEngineOptions {
  packDir?: string;
  backend?: Backend;
  threads?: number;
  /** Images per network call (see EngineOptions.maxBatch). */
  maxBatch?: number;
  /** sha256-check the pack at load (default true). */
  verify?: boolean;
  /**
   * The worker script. Default: ./worker.mjs next to this file (sources run through tsx); in a bundle
   * (electron-vite), an `engine-worker.js` entry built from main/engine/worker.ts next to the bundle.
   */
  workerUrl?: URL;
}

/** How long close() waits for a hung worker before terminating it. */
const CLOSE_TIMEOUT_MS = 5000;

interface Running {
  worker: Worker;
  client: PortEngineClient;
}

function defaultWorkerUrl(): URL {
  const source = new URL('./worker.mjs', import.meta.url);
  if (existsSync(fileURLToPath(source))) return source;
  const bundled = new URL('./engine-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(bundled))) return bundled;
  throw new Error(`engine worker script not found (${fileURLToPath(source)}); pass workerUrl`);
}

export function createWorkerEngine(options: WorkerEngineOptions = {}): EngineClient {
  const { workerUrl, ...rest } = options;
  const engineOptions: EngineOptions = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  let running: Running | null = null;
  let closed = false;

  function start(): Running {
    const worker = new Worker(workerUrl ?? defaultWorkerUrl(), { workerData: engineOptions });
    const client = createPortEngineClient({
      post: (msg, transfer) => worker.postMessage(msg, transfer ?? []),
      onMessage: (cb) => worker.on('message', cb),
    });
    const r: Running = { worker, client };
    const died = (why: string): void => {
      client.dispose(new Error(`engine worker ${why}`));
      if (running === r) running = null; // the next call starts a fresh worker
    };
    worker.on('error', (err) => died(`failed: ${String(err?.message ?? err).split('\n')[0]}`));
    worker.on('exit', (code) => died(`exited (code ${code})`));
    return r;
  }

  const current = (): Running => {
    if (closed) throw new Error('engine closed');
    return (running ??= start());
  };

  return {
    info: async () => current().client.info(),
    generate: async (request, opts) => current().client.generate(request, opts),
    manipulate: async (request, opts) => current().client.manipulate!(request, opts),
    embedText: async (text) => current().client.embedText!(text),
    countTokens: async (text) => current().client.countTokens!(text),
    async close() {
      closed = true;
      const r = running;
      running = null;
      if (!r) return;
      // A graceful close (the worker releases its sessions) ends as soon as the worker answers or exits (the
      // client is then disposed); the timer is only for a hung worker, and cleared so it never holds the
      // process open.
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise((res) => (timer = setTimeout(res, CLOSE_TIMEOUT_MS)));
      await Promise.race([r.client.close().catch(() => undefined), hung]);
      clearTimeout(timer);
      await r.worker.terminate();
    },
  };
}

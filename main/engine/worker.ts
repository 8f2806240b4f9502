// worker_thread entry: the engine's message loop over parentPort (options come as workerData).
import { parentPort, workerData } from 'node:worker_threads';
import type { EngineOptions } from './engine.ts';
import { serveEngine } from './serve.ts';

if (!parentPort) throw new Error('main/engine/worker.ts must run in a worker_thread');
const port = parentPort;
serveEngine(
  {
    post: (msg, transfer) => port.postMessage(msg, transfer ?? []),
    onMessage: (cb) => port.on('message', cb),
  },
  (workerData ?? {}) as EngineOptions,
);

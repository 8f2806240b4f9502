// The engine's message loop over any port: a worker_thread's parentPort (worker.ts) or Electron's
// utilityProcess parentPort (main/app/engine-process.ts). Generations run one at a time in arrival order;
// a cancel stops the running one before its next network call (or drops a queued one), and the loop
// carries on with the next request. Errors go back as one line with a kind, never a stack trace.
import { parseArgs } from 'node:util';
import type { Backend, GenerateResult, ManipulationResult } from './api.ts';
import { Engine, type EngineOptions } from './engine.ts';
import { oneLine } from './errors.ts';
import { isRequest, type EngineReply, type EngineRequest, type MessagePortLike } from './protocol.ts';
import { BackendSchema } from './settings.ts';

/** `--pack DIR --backend NAME --threads N` (the utilityProcess's argv). */
export function engineOptionsFromArgv(argv: string[]): EngineOptions {
  const { values } = parseArgs({
    args: argv,
    options: { pack: { type: 'string' }, backend: { type: 'string' }, threads: { type: 'string' } },
    strict: false,
  });
  const out: EngineOptions = {};
  if (typeof values.pack === 'string') out.packDir = values.pack;
  if (typeof values.backend === 'string' && BackendSchema.safeParse(values.backend).success) {
    out.backend = values.backend as Backend;
  }
  const threads = Number(values.threads);
  if (Number.isInteger(threads) && threads > 0) out.threads = threads;
  return out;
}

function transferables(result: GenerateResult | ManipulationResult): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  if ('op' in result) {
    for (const f of result.frames) out.add(f.png.buffer as ArrayBuffer);
    for (const s of result.sources) out.add(s.latent.buffer as ArrayBuffer);
    for (const b of [result.gif, result.strip]) if (b) out.add(b.buffer as ArrayBuffer);
    return [...out];
  }
  for (const img of result.images) {
    out.add(img.png.buffer as ArrayBuffer);
    out.add(img.imageEmbedding.buffer as ArrayBuffer);
  }
  out.add(result.textEmbedding.buffer as ArrayBuffer);
  return [...out];
}

export function serveEngine(
  port: MessagePortLike,
  options: EngineOptions = engineOptionsFromArgv(process.argv.slice(2)),
): { engine: Engine } {
  const engine = new Engine({ ...options, warn: options.warn ?? ((m) => console.warn(`engine: ${m}`)) });
  // Start loading (and warming up) right away; a failure is reported to each request.
  engine.pack().catch(() => undefined);

  const reply = (msg: EngineReply, transfer?: ArrayBuffer[]): void => port.post(msg, transfer);
  const fail = (id: number, err: unknown): void => {
    const name = err instanceof Error ? err.name : 'Error';
    reply({
      type: 'error',
      id,
      name: ['InputError', 'PackError', 'AbortError'].includes(name) ? name : 'Error',
      message: oneLine(err),
    });
  };

  const queue: Extract<EngineRequest, { type: 'generate' | 'manipulate' }>[] = [];
  const controllers = new Map<number, AbortController>();
  let running = false;

  async function pump(): Promise<void> {
    if (running) return;
    running = true;
    try {
      for (let job = queue.shift(); job; job = queue.shift()) {
        const controller = new AbortController();
        controllers.set(job.id, controller);
        const id = job.id;
        try {
          const run = job.type === 'manipulate' ? engine.manipulate.bind(engine) : engine.generate.bind(engine);
          const result = await run(job.request, {
            signal: controller.signal,
            ...(job.progress
              ? {
                  onProgress: (event) => {
                    if (!controller.signal.aborted) {
                      reply(
                        { type: 'progress', id, event },
                        event.preview ? [event.preview.buffer as ArrayBuffer] : undefined,
                      );
                    }
                  },
                }
              : {}),
          });
          if (controller.signal.aborted)
            fail(id, Object.assign(new Error('generation cancelled'), { name: 'AbortError' }));
          else reply({ type: 'result', id, value: result }, transferables(result));
        } catch (err) {
          fail(
            id,
            controller.signal.aborted ? Object.assign(new Error('generation cancelled'), { name: 'AbortError' }) : err,
          );
        } finally {
          controllers.delete(id);
        }
      }
    } finally {
      running = false;
    }
  }

  port.onMessage((msg) => {
    if (!isRequest(msg)) return;
    switch (msg.type) {
      case 'info':
        engine.info().then(
          (value) => reply({ type: 'result', id: msg.id, value }),
          (err) => fail(msg.id, err),
        );
        break;
      case 'embedText':
        engine.embedText(msg.text).then(
          (value) => reply({ type: 'result', id: msg.id, value }, [value.buffer as ArrayBuffer]),
          (err) => fail(msg.id, err),
        );
        break;
      case 'countTokens':
        engine.countTokens(msg.text).then(
          (value) => reply({ type: 'result', id: msg.id, value }),
          (err) => fail(msg.id, err),
        );
        break;
      case 'generate':
      case 'manipulate':
        queue.push(msg);
        void pump();
        break;
      case 'cancel': {
        const queued = queue.findIndex((j) => j.id === msg.id);
        if (queued >= 0) {
          queue.splice(queued, 1);
          fail(msg.id, Object.assign(new Error('generation cancelled'), { name: 'AbortError' }));
        }
        controllers.get(msg.id)?.abort();
        break;
      }
      case 'close':
        for (const c of controllers.values()) c.abort();
        for (const j of queue.splice(0)) fail(j.id, Object.assign(new Error('engine closed'), { name: 'AbortError' }));
        engine.close().then(
          () => reply({ type: 'result', id: msg.id, value: null }),
          (err) => fail(msg.id, err),
        );
        break;
    }
  });
  return { engine };
}

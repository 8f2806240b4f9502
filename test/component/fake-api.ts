// A fake of the studio's backend for the component tests: a StudioBridge (preload/contract.ts) whose
// operations answer from handlers a test sets, wrapped by the contract's own apiFromBridge, so the
// renderer's state classes get a real StudioApi (errors arrive as StudioError, arguments are checked
// against the contract's schemas as the service would). It records every call and lets a test push
// the events main pushes (job, progress, library).

import {
  apiFromBridge,
  errorInfo,
  eventNames,
  listenerName,
  methodName,
  operationNames,
  parseArgs,
  type Args,
  type EngineInfo,
  type EventName,
  type EventPayload,
  type ImageDetailView,
  type ImageView,
  type JobView,
  type OperationName,
  type Reply,
  type Result,
  type StudioApi,
  type StudioBridge,
} from '../../preload/contract.ts';

export type Handler<K extends OperationName> = (args: Args<K>) => Result<K> | Promise<Result<K>>;

export interface Call<K extends OperationName = OperationName> {
  op: K;
  args: Args<K>;
}

export class FakeStudio {
  /** What the state classes program against. */
  readonly api: StudioApi;
  /** Every operation called, in order, with the argument as the renderer sent it. */
  readonly log: Call[] = [];

  #handlers = new Map<OperationName, Handler<OperationName>>();
  #listeners = new Map<EventName, Set<(payload: never) => void>>();

  constructor() {
    const bridge: Record<string, unknown> = {};
    for (const op of operationNames) bridge[methodName(op)] = (args?: unknown) => this.#call(op, args);
    for (const name of eventNames) {
      bridge[listenerName(name)] = (listener: (payload: never) => void) => {
        const set = this.#listeners.get(name) ?? new Set();
        set.add(listener);
        this.#listeners.set(name, set);
        return () => set.delete(listener);
      };
    }
    this.api = apiFromBridge(bridge as unknown as StudioBridge);
  }

  /** Answers operation `op` with `handler` (a value, or a function of the argument; a throw is an error reply). */
  on<K extends OperationName>(op: K, handler: Handler<K> | Result<K>): this {
    const fn = typeof handler === 'function' ? (handler as Handler<K>) : () => handler;
    this.#handlers.set(op, fn as unknown as Handler<OperationName>);
    return this;
  }

  /** The arguments of every call of `op`, in order. */
  calls<K extends OperationName>(op: K): Args<K>[] {
    return this.log.filter((c) => c.op === op).map((c) => c.args as Args<K>);
  }

  /** Pushes an event to every listener, as main does. */
  emit<E extends EventName>(name: E, payload: EventPayload<E>): void {
    for (const listener of this.#listeners.get(name) ?? []) (listener as (p: EventPayload<E>) => void)(payload);
  }

  /** How many listeners an event has (state classes subscribe in their constructors). */
  listeners(name: EventName): number {
    return this.#listeners.get(name)?.size ?? 0;
  }

  async #call(op: OperationName, args: unknown): Promise<Reply<unknown>> {
    this.log.push({ op, args: args as Args<OperationName> });
    try {
      parseArgs(op, args);
      const handler = this.#handlers.get(op);
      if (!handler) return { ok: false, error: { code: 'unknown_operation', message: `the fake has no ${op}` } };
      return { ok: true, value: await handler(args as Args<OperationName>) };
    } catch (err) {
      return { ok: false, error: errorInfo(err) };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Plain data the handlers answer with

export function job(fields: Partial<JobView> & Pick<JobView, 'id'>): JobView {
  return {
    kind: 'generate',
    status: 'queued',
    args: { prompt: 'a red fox', settings: { n: 4 } },
    position: fields.id,
    attempts: 0,
    maxAttempts: 3,
    progress: null,
    error: null,
    result: null,
    imageIds: [],
    createdAt: 1_700_000_000_000,
    startedAt: null,
    finishedAt: null,
    cancelRequested: false,
    ...fields,
  };
}

export const PACK = { name: 'emoji-tiny', sha256: 'a'.repeat(64) };

export function image(fields: Partial<ImageView> & Pick<ImageView, 'id'>): ImageView {
  return {
    kind: 'generated',
    prompt: `image ${fields.id}`,
    settings: {},
    seed: 1000 + fields.id,
    pack: PACK,
    width: 64,
    height: 64,
    sha256: String(fields.id).padStart(64, '0'),
    bytes: 4096,
    mime: 'image/png',
    createdAt: 1_700_000_000_000 + fields.id * 1000,
    starred: false,
    trashedAt: null,
    jobId: null,
    hasEmbedding: true,
    inverted: true,
    psnr: 31.2,
    ...fields,
  };
}

export function detail(img: ImageView, fields: Partial<Omit<ImageDetailView, 'image'>> = {}): ImageDetailView {
  return { image: img, parents: [], children: [], boards: [], parameters: '', inversion: null, ...fields };
}

export function engineInfo(defaults: Partial<EngineInfo['pack']['defaults']> = {}): EngineInfo {
  return {
    pack: {
      dir: '/packs/emoji-tiny',
      name: 'emoji-tiny',
      title: 'Emoji (tiny)',
      outputSize: 64,
      defaults: {
        stepsPrior: 10,
        stepsDecoder: 12,
        stepsSuperRes: 3,
        guidancePrior: 2,
        guidanceDecoder: 3,
        ...defaults,
      },
      license: 'MIT',
      attribution: 'test',
      capabilities: { superRes: true, imageEncoder: true },
    },
    availableBackends: ['cpu'],
    sessionBackends: {},
  };
}

/** A promise and the functions that settle it (an operation that answers when the test says so). */
export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

// The studio's one contract: every operation the UI can ask for, named once, with the zod schema
// its argument must satisfy, the type of its result, and the events pushed back to the UI.
// Main (IPC wrapper), preload (bridge), the web server and the renderer's clients all import this
// file, so adding an operation here is the only way to add one anywhere.
// Pure module: no Electron, no Node, no DOM.

import { z } from 'zod';
import type { EngineInfo, GenerateSettings, ProgressEvent } from '../main/engine/api.ts';
import { LIMITS } from '../main/engine/settings.ts';

// The engine's plain-data types the UI shows, re-exported so the renderer imports only this file.
export type { Backend, EngineInfo, GenerateSettings, PackInfo, ProgressEvent, Stage } from '../main/engine/api.ts';

// ---------------------------------------------------------------------------------------------
// Argument schemas

/** Client-chosen id of one generation, used to cancel it and to match its progress events. */
export const jobIdSchema = z.string().regex(/^[\w-]{1,64}$/, 'must be 1–64 letters, digits, "_" or "-"');

// The engine's own limits (main/engine/settings.ts), so the UI, the transports and the engine agree.
export { LIMITS };
const steps = z.int().min(LIMITS.steps.min).max(LIMITS.steps.max);
const guidance = z.number().min(LIMITS.guidance.min).max(LIMITS.guidance.max);

export const generateSettingsSchema = z
  .strictObject({
    n: z.int().min(LIMITS.n.min).max(LIMITS.n.max),
    seed: z.int().min(0).max(0xffffffff),
    stepsPrior: steps,
    stepsDecoder: steps,
    stepsSuperRes: steps,
    guidancePrior: guidance,
    guidanceDecoder: guidance,
    rerank: z.boolean(),
    previewEvery: z.int().min(LIMITS.previewEvery.min).max(LIMITS.previewEvery.max),
  })
  .partial();

export const generateArgsSchema = z.strictObject({
  jobId: jobIdSchema,
  prompt: z.string().trim().min(1, 'must not be empty').max(LIMITS.promptChars),
  settings: generateSettingsSchema.default({}),
});

// ---------------------------------------------------------------------------------------------
// Result and event types (plain, structured-clone-able data; bytes stay Uint8Array on every transport)

export interface GeneratedImageView {
  seed: number;
  /** PNG file bytes. */
  png: Uint8Array;
  width: number;
  height: number;
  /** CLIP text–image cosine, when the request asked for reranking. */
  score?: number;
}

export interface GenerateView {
  jobId: string;
  prompt: string;
  /** The settings actually used (request merged over the pack's defaults). */
  settings: GenerateSettings;
  /** True when the prompt was cut to the tokenizer's 77 tokens. */
  truncated: boolean;
  images: GeneratedImageView[];
  timings: Record<string, number>;
}

export type ProgressView = ProgressEvent & { jobId: string };

/** The most of one About document that crosses to the UI (a hostile pack cannot flood it). */
export const ABOUT_DOCUMENT_MAX_BYTES = 256 * 1024;

export interface AboutDocument {
  /** File name, e.g. `ATTRIBUTION.md`, `LICENSE-MIT.txt`, `THIRD_PARTY_NOTICES.md`. */
  name: string;
  /** Whether the file comes from the model pack's folder or ships with the app. */
  source: 'pack' | 'app';
  /** The file's text (UTF-8), at most ABOUT_DOCUMENT_MAX_BYTES of it. */
  text: string;
  /** True when the file was longer than ABOUT_DOCUMENT_MAX_BYTES and `text` is its beginning. */
  truncated: boolean;
}

/** What the About box shows: the app, the pack the engine runs, and their attribution/licence texts. */
export interface AboutView {
  /** From the app's package.json. */
  app: { name: string; version: string; license: string };
  /** From the pack's manifest.json (null when the engine could not load a pack; see packError). */
  pack: { name: string; title: string; license: string; attribution: string } | null;
  /** Why `pack` is null. */
  packError?: string;
  /**
   * The pack's ATTRIBUTION.md, NOTICE.md and LICENSE-*.txt (sorted), in that order, then the app's
   * THIRD_PARTY_NOTICES.md and LICENSE. Files that are absent are left out.
   */
  documents: AboutDocument[];
}

// ---------------------------------------------------------------------------------------------
// The operation table

declare const resultBrand: unique symbol;
/** An operation: its argument schema plus (at the type level only) its result type. */
export interface Operation<A extends z.ZodType, R> {
  readonly args: A;
  readonly [resultBrand]?: R;
}
const operation =
  <R>() =>
  <A extends z.ZodType>(args: A): Operation<A, R> => ({ args });

export const operations = {
  'engine.info': operation<EngineInfo>()(z.strictObject({})),
  generate: operation<GenerateView>()(generateArgsSchema),
  'generate.cancel': operation<{ cancelled: boolean }>()(z.strictObject({ jobId: jobIdSchema })),
  about: operation<AboutView>()(z.strictObject({})),
} as const;

declare const payloadBrand: unique symbol;
export interface StudioEventSpec<P> {
  readonly [payloadBrand]?: P;
}
const event = <P>(): StudioEventSpec<P> => ({});

export const events = {
  progress: event<ProgressView>(),
} as const;

export type OperationName = keyof typeof operations;
export type EventName = keyof typeof events;
/** What a caller sends. */
export type Args<K extends OperationName> = z.input<(typeof operations)[K]['args']>;
/** What a handler receives, after validation and defaults. */
export type ParsedArgs<K extends OperationName> = z.output<(typeof operations)[K]['args']>;
export type Result<K extends OperationName> = (typeof operations)[K] extends Operation<z.ZodType, infer R> ? R : never;
export type EventPayload<E extends EventName> = (typeof events)[E] extends StudioEventSpec<infer P> ? P : never;
/** One pushed event, as it travels (IPC channel, WebSocket frame). */
export type StudioEvent = { [E in EventName]: { name: E; payload: EventPayload<E> } }[EventName];

export const operationNames = Object.keys(operations) as OperationName[];
export const eventNames = Object.keys(events) as EventName[];

export function isOperationName(name: string): name is OperationName {
  return Object.hasOwn(operations, name);
}

// ---------------------------------------------------------------------------------------------
// Names on each transport

/** IPC channel of an operation. */
export const ipcChannel = (op: OperationName): string => `studio:${op}`;
/** IPC channel main pushes an event on. */
export const ipcEventChannel = (name: EventName): string => `studio:event:${name}`;

type CamelCase<S extends string> = S extends `${infer H}.${infer T}` ? `${H}${Capitalize<CamelCase<T>>}` : S;
/** `engine.info` → `engineInfo`: the name of the function window.studio exposes for an operation. */
export type MethodName<K extends OperationName> = CamelCase<K>;
export function methodName<K extends OperationName>(op: K): MethodName<K> {
  return op.replace(/\.(\w)/g, (_, c: string) => c.toUpperCase()) as MethodName<K>;
}
/** `progress` → `onProgress`. */
export function listenerName<E extends EventName>(name: E): `on${Capitalize<E>}` {
  return `on${name.charAt(0).toUpperCase()}${name.slice(1)}` as `on${Capitalize<E>}`;
}

type CallArgs<K extends OperationName> = Record<never, never> extends Args<K> ? [args?: Args<K>] : [args: Args<K>];
type Listeners = {
  [E in EventName as `on${Capitalize<E>}`]: (listener: (payload: EventPayload<E>) => void) => () => void;
};

/**
 * What a transport offers: window.studio (preload, over IPC) or web mode's HTTP/WebSocket client.
 * Operations answer a Reply rather than throwing, because errors crossing contextBridge or IPC
 * lose everything but their message.
 */
export type StudioBridge = {
  [K in OperationName as MethodName<K>]: (...args: CallArgs<K>) => Promise<Reply<Result<K>>>;
} & Listeners;

/** The API the renderer programs against: a bridge whose replies are unwrapped (errors thrown as StudioError). */
export type StudioApi = {
  [K in OperationName as MethodName<K>]: (...args: CallArgs<K>) => Promise<Result<K>>;
} & Listeners;

// ---------------------------------------------------------------------------------------------
// Errors and replies

export type ErrorCode =
  'invalid_argument' | 'unknown_operation' | 'unauthorized' | 'cancelled' | 'busy' | 'engine' | 'internal';

/** An error meant for the user: its message is one line that names what was wrong. */
export class StudioError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StudioError';
  }
}

export interface ErrorInfo {
  code: ErrorCode;
  message: string;
}

/** Handlers answer with a reply, never a thrown error: Electron keeps only an error's message. */
export type Reply<R> = { ok: true; value: R } | { ok: false; error: ErrorInfo };

export function errorInfo(err: unknown): ErrorInfo {
  if (err instanceof StudioError) return { code: err.code, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'internal', message: message.split('\n')[0] ?? 'unknown error' };
}

/** Turns a reply back into a value, or throws its error as a StudioError. */
export function unwrapReply<R>(reply: Reply<R>): R {
  if (reply.ok) return reply.value;
  throw new StudioError(reply.error.code, reply.error.message);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/**
 * Validates an operation's argument. Returns the parsed value (defaults applied) or throws a
 * StudioError('invalid_argument') whose one-line message names the operation, each bad field
 * and the value it got, e.g. `generate: settings.n: Too big: expected number to be <=16 (got 40)`.
 */
export function parseArgs<K extends OperationName>(op: K, raw: unknown): ParsedArgs<K> {
  const result = operations[op].args.safeParse(raw ?? {});
  if (result.success) return result.data as ParsedArgs<K>;
  const problems = result.error.issues.map((issue) => {
    const where = issue.path.length ? `${issue.path.map(String).join('.')}: ` : '';
    const got = issue.code === 'unrecognized_keys' ? '' : ` (got ${describe(valueAt(raw, issue.path))})`;
    return `${where}${issue.message}${got}`;
  });
  throw new StudioError('invalid_argument', `${op}: ${problems.join('; ')}`);
}

/** Wraps a bridge so operations resolve to their value or reject with a StudioError. */
export function apiFromBridge(bridge: StudioBridge): StudioApi {
  const api: Record<string, unknown> = {};
  const source = bridge as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const op of operationNames) {
    const call = source[methodName(op)];
    if (typeof call !== 'function') throw new Error(`studio bridge lacks ${methodName(op)}`);
    api[methodName(op)] = async (args?: unknown) => unwrapReply((await call(args)) as Reply<unknown>);
  }
  for (const name of eventNames) {
    const subscribe = source[listenerName(name)];
    if (typeof subscribe !== 'function') throw new Error(`studio bridge lacks ${listenerName(name)}`);
    api[listenerName(name)] = subscribe;
  }
  return api as StudioApi;
}

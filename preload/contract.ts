// The studio's one contract: every operation the UI can ask for, named once, with the zod schema
// its argument must satisfy, the type of its result, and the events pushed back to the UI.
// Main (IPC wrapper), preload (bridge), the web server and the renderer's clients all import this
// file, so adding an operation here is the only way to add one anywhere.
// Pure module: no Electron, no Node, no DOM.

import { z } from 'zod';
import type { Backend, BackendSupport, EngineInfo, ProgressEvent, TokenCount } from '../main/engine/api.ts';
import { BACKENDS, LIMITS } from '../main/engine/settings.ts';
import {
  IMAGE_KINDS,
  JOB_KINDS,
  JOB_STATUSES,
  MAX_PAGE,
  MAX_PROMPT_CHARS,
  type Board,
  type CheckReport,
  type ImageKind,
  type ImageRecord,
  type Job,
  type JobKind,
  type JobStatus,
  type LineageEdge,
  type Page,
} from '../main/library/kinds.ts';

// The engine's plain-data types the UI shows, re-exported so the renderer imports only this file.
export type {
  Backend,
  BackendSupport,
  EngineInfo,
  GenerateSettings,
  PackInfo,
  ProgressEvent,
  Stage,
} from '../main/engine/api.ts';
export { BACKENDS };
export { IMAGE_KINDS, JOB_KINDS, JOB_STATUSES, MAX_PAGE };
export type { ImageKind, JobKind, JobStatus, Page };

/** One image of the library. Its file and thumbnail are fetched by URL (mediaPath), never sent inline. */
export type ImageView = ImageRecord;
export type LineageEdgeView = LineageEdge;
export type BoardView = Board;
export type CheckView = CheckReport;
/** A job as the UI sees it (which process holds its lease stays in main). */
export type JobView = Omit<Job, 'leaseOwner'>;

// ---------------------------------------------------------------------------------------------
// Argument schemas

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
    prior: z.enum(['diffusion', 'ar']),
    priorSamples: z.int().min(LIMITS.priorSamples.min).max(LIMITS.priorSamples.max),
    arTemperature: z.number().min(LIMITS.arTemperature.min).max(LIMITS.arTemperature.max),
    arTopK: z.int().min(LIMITS.arTopK.min).max(LIMITS.arTopK.max),
    arTopP: z.number().min(LIMITS.arTopP.min).max(LIMITS.arTopP.max),
  })
  .partial();

export const generateArgsSchema = z.strictObject({
  prompt: z.string().trim().min(1, 'must not be empty').max(LIMITS.promptChars),
  settings: generateSettingsSchema.default({}),
});

/** A library row id (image, board or job). */
export const idSchema = z.int().min(1).max(Number.MAX_SAFE_INTEGER);
const idsSchema = z.array(idSchema).min(1, 'must name at least one image').max(10_000);

/** The gallery's filters (shared by listing, counting and similarity search). */
export const galleryFilterSchema = z.strictObject({
  text: z.string().max(MAX_PROMPT_CHARS).optional(),
  kinds: z.array(z.enum(IMAGE_KINDS)).max(IMAGE_KINDS.length).optional(),
  starred: z.boolean().optional(),
  boardId: idSchema.optional(),
  /** created time bounds, ms since the epoch, inclusive. */
  from: z.number().nonnegative().optional(),
  to: z.number().nonnegative().optional(),
  /** A pack's name or manifest sha256. */
  pack: z.string().max(200).optional(),
  /** The trash instead of the gallery. */
  trashed: z.boolean().optional(),
});

export const galleryListSchema = galleryFilterSchema.extend({
  sort: z.enum(['newest', 'oldest']).optional(),
  limit: z.int().min(1).max(MAX_PAGE).optional(),
  cursor: z.string().max(200).nullable().optional(),
});

/** "More like this" (an image's z_i) or a text's CLIP embedding z_t, against stored z_i. */
export const gallerySimilarSchema = z
  .strictObject({
    id: idSchema.optional(),
    text: z.string().trim().min(1).max(LIMITS.promptChars).optional(),
    k: z.int().min(1).max(MAX_PAGE).default(50),
    filter: galleryFilterSchema.omit({ text: true }).default({}),
  })
  .refine((a) => (a.id === undefined) !== (a.text === undefined), 'give either id or text');

/** The largest file gallery.import takes (the renderer refuses bigger ones before reading them). */
export const MAX_IMPORT_FILE_BYTES = 64 * 1024 * 1024;
export const importFileSchema = z
  .strictObject({
    name: z.string().min(1).max(255),
    bytes: z.instanceof(Uint8Array),
  })
  .superRefine((f, ctx) => {
    const n = f.bytes.byteLength;
    if (n > 0 && n <= MAX_IMPORT_FILE_BYTES) return;
    ctx.addIssue({
      code: 'custom',
      path: ['bytes'],
      message:
        n === 0
          ? `${f.name} is empty`
          : `${f.name} is ${(n / 2 ** 20).toFixed(1)} MiB, over the ${MAX_IMPORT_FILE_BYTES / 2 ** 20} MiB limit per file`,
    });
  });

const exportTargetSchema = z
  .strictObject({
    ids: idsSchema.optional(),
    boardId: idSchema.optional(),
    all: z.literal(true).optional(),
    /** A folder on this computer (created when missing). */
    dir: z.string().min(1).max(4096),
  })
  .refine(
    (a) => [a.ids, a.boardId, a.all].filter((x) => x !== undefined).length === 1,
    'give one of ids, boardId or all',
  );

const boardName = z.string().trim().min(1, 'must not be empty').max(200);

const manipSteps = z.int().min(LIMITS.steps.min).max(LIMITS.steps.max);
const manipCommon = {
  steps: manipSteps.optional(),
  guidance: guidance.optional(),
  seed: z.int().min(0).max(0xffffffff).optional(),
  superRes: z.boolean().optional(),
};

export const varyArgsSchema = z.strictObject({
  id: idSchema,
  n: z.int().min(1).max(LIMITS.n.max).default(4),
  /** DDIM η: 0 reproduces the image, 1 is as varied as the paper's variations. */
  eta: z.number().min(0).max(1).default(1),
  /** Fresh noise instead of the image's x_T (only z_i kept). */
  fresh: z.boolean().optional(),
  ...manipCommon,
});

export const interpolateArgsSchema = z.strictObject({
  a: idSchema,
  b: idSchema,
  frames: z.int().min(2).max(32).default(5),
  noise: z.enum(['slerp', 'a', 'b', 'random']).default('slerp'),
  ...manipCommon,
});

export const textdiffArgsSchema = z.strictObject({
  id: idSchema,
  /** The image's description (default: its prompt). */
  from: z.string().max(LIMITS.promptChars).optional(),
  to: z.string().trim().min(1, 'must not be empty').max(LIMITS.promptChars),
  /** Rotation angles (fractions of the way from z_i towards the text diff), each a frame. */
  thetas: z.array(z.number().min(0).max(1)).min(1).max(32).default([0.25, 0.5]),
  ...manipCommon,
});

export const invertArgsSchema = z.strictObject({
  id: idSchema,
  steps: manipSteps.optional(),
  /** Fixed-point refinements per step on the noisiest fifth (0 = plain DDIM). */
  refine: z.int().min(0).max(8).optional(),
});

/** A folder on this computer, typed or picked. */
const folderPath = z.string().trim().min(1, 'must not be empty').max(4096);
/** A pack's name, as its manifest spells it. */
const packName = z
  .string()
  .regex(/^[a-z0-9-]+$/, 'a pack name has lower-case letters, digits and "-" only')
  .max(64);

export const THEMES = ['light', 'dark', 'system'] as const;
export type Theme = (typeof THEMES)[number];

export const settingsUpdateSchema = z
  .strictObject({
    /** The library folder (reopened at once when no job is queued or running, else at the next start). */
    libraryDir: folderPath.optional(),
    backend: z.enum(BACKENDS).optional(),
    threads: z.int().min(1).max(1024).optional(),
    theme: z.enum(THEMES).optional(),
  })
  .refine((a) => Object.keys(a).length > 0, 'give at least one of libraryDir, backend, threads, theme');

// ---------------------------------------------------------------------------------------------
// Result and event types (plain, structured-clone-able data; bytes stay Uint8Array on every transport)

export interface ImageDetailView {
  image: ImageView;
  parents: LineageEdgeView[];
  children: LineageEdgeView[];
  boards: { id: number; name: string }[];
  /** The A1111-style `parameters` text of the file (what other tools show). */
  parameters: string;
  inversion: { steps: number; guidance: number; refine: number; psnr: number | null } | null;
}

export interface LibraryInfoView {
  dir: string;
  schemaVersion: number;
  images: number;
  trashed: number;
  packs: { name: string; sha256: string; count: number }[];
  jobs: Record<JobStatus, number>;
}

export interface ExportView {
  dir: string;
  /** Image files written (each with its metadata; an inverted one with its .latent.safetensors). */
  written: number;
  /** Already there with the same bytes. */
  skipped: number;
}

export interface ImportView {
  /** New images (lineage roots unless their recipe names parents already in the library). */
  imported: number[];
  /** Files already in the library (same sha256): not stored twice. */
  duplicates: number[];
  /** Files left out (not a PNG, JPEG or WebP, damaged, too many pixels), each with its one-line reason. */
  refused: { name: string; error: string }[];
  /** The queued CLIP-encode + inversion jobs (none for an image that came with its latent). */
  jobs: JobView[];
}

/** Progress of the job that is running (x0 preview PNG when asked for). */
export type ProgressView = ProgressEvent & { jobId: number };

/** What changed in the gallery (so views refresh only when they must). */
export interface LibraryChange {
  added: number[];
  changed: number[];
  removed: number[];
}

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

/** Where a pack lives: shipped with the app, imported by the user, or elsewhere (--pack, $UNCLIP_PACK). */
export type PackSource = 'bundled' | 'user' | 'other';

/** An installed pack, from its manifest. */
export interface PackView {
  name: string;
  title: string;
  description: string;
  dir: string;
  source: PackSource;
  /** manifest.json and every file it lists. */
  bytes: number;
  schemaVersion: number;
  exporterVersion: string;
  precision: 'fp32' | 'fp16';
  /** The diffusers pipeline it was exported from. */
  pipeline: string;
  /** Its networks (manifest component roles), e.g. text_encoder, prior, decoder. */
  networks: string[];
  optional: { arPrior: boolean; imageEncoder: boolean; superRes: boolean };
  resolution: { decoder: number; output: number };
  license: string;
  attribution: string;
  /** The engine runs this pack. */
  active: boolean;
}

export interface PacksView {
  packs: PackView[];
  /** Folders with a manifest.json that does not load, and why. */
  broken: { dir: string; source: PackSource; error: string }[];
  /** Where imported packs go. */
  userDir: string;
  bundledDirs: string[];
  /** Why the running pack is unknown (the engine failed to start). */
  engineError?: string;
}

export interface PackVerifyView {
  name: string;
  dir: string;
  ok: boolean;
  files: { name: string; bytes: number | null; ok: boolean; problem?: string }[];
  /** One line: all files match, or which do not and why. */
  summary: string;
}

export interface SettingsView {
  /** The settings file. */
  file: string;
  /** Why the file was not used (it did not parse): the defaults are shown. */
  warning?: string;
  theme: Theme;
  library: {
    /** The folder open now. */
    current: string;
    /** The folder saved for the next start (null: the default). */
    saved: string | null;
    /** Saved differs from current: it applies when the studio starts again. */
    pending: boolean;
  };
  engine: {
    /** The engine can be restarted with other settings (false: a fixed engine, e.g. in tests). */
    restartable: boolean;
    /** What the engine was started with (null: its default). */
    backend: Backend | null;
    threads: number | null;
    /** Every backend, available or not (null: the engine did not start, see error). */
    backends: BackendSupport[] | null;
    /** The threads the running engine uses. */
    runningThreads: number | null;
    /** Which backend runs each network. */
    sessionBackends: Record<string, Backend> | null;
    error?: string;
  };
  /** The most threads this machine offers. */
  maxThreads: number;
  /** What the last update did (e.g. that the library moves at the next start, and why). */
  note?: string;
}

/** A prompt's token count in the running pack (prompt.tokens). */
export type PromptTokensView = TokenCount;

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

const none = z.strictObject({});
const byId = z.strictObject({ id: idSchema });
const byIds = z.strictObject({ ids: idsSchema });

export const operations = {
  'engine.info': operation<EngineInfo>()(none),
  about: operation<AboutView>()(none),
  'library.info': operation<LibraryInfoView>()(none),
  /** How many CLIP tokens a prompt takes in the running pack (Create warns before a run that its end is cut). */
  'prompt.tokens': operation<PromptTokensView>()(z.strictObject({ prompt: z.string().max(LIMITS.promptChars) })),

  // Work for the engine: each queues a job and answers at once; its images arrive in the gallery.
  generate: operation<JobView>()(generateArgsSchema),
  vary: operation<JobView>()(varyArgsSchema),
  interpolate: operation<JobView>()(interpolateArgsSchema),
  textdiff: operation<JobView>()(textdiffArgsSchema),
  invert: operation<JobView>()(invertArgsSchema),
  'gallery.import': operation<ImportView>()(z.strictObject({ files: z.array(importFileSchema).min(1).max(100) })),

  'gallery.list': operation<Page<ImageView>>()(galleryListSchema),
  'gallery.count': operation<{ count: number }>()(galleryFilterSchema),
  'gallery.get': operation<ImageDetailView>()(byId),
  'gallery.similar': operation<(ImageView & { score: number })[]>()(gallerySimilarSchema),
  'gallery.star': operation<{ changed: number }>()(z.strictObject({ ids: idsSchema, starred: z.boolean() })),
  'gallery.trash': operation<{ changed: number }>()(byIds),
  'gallery.restore': operation<{ changed: number }>()(byIds),
  /** Deletes for good the whole trash, or only the given images of it (images not in the trash stay). */
  'gallery.emptyTrash': operation<{ deleted: number; filesRemoved: number }>()(
    z.strictObject({ ids: idsSchema.optional() }),
  ),
  'gallery.export': operation<ExportView>()(exportTargetSchema),
  'gallery.check': operation<CheckView>()(
    z.strictObject({ repair: z.boolean().default(false), verifyHashes: z.boolean().default(false) }),
  ),

  'boards.list': operation<BoardView[]>()(none),
  'boards.create': operation<BoardView>()(z.strictObject({ name: boardName })),
  'boards.rename': operation<BoardView>()(z.strictObject({ id: idSchema, name: boardName })),
  'boards.delete': operation<{ deleted: boolean }>()(byId),
  'boards.add': operation<{ changed: number }>()(z.strictObject({ boardId: idSchema, ids: idsSchema })),
  'boards.remove': operation<{ changed: number }>()(z.strictObject({ boardId: idSchema, ids: idsSchema })),

  'jobs.list': operation<JobView[]>()(
    z.strictObject({
      status: z.array(z.enum(JOB_STATUSES)).min(1).optional(),
      limit: z.int().min(1).max(1000).optional(),
    }),
  ),
  'jobs.get': operation<JobView>()(byId),
  'jobs.cancel': operation<JobView>()(byId),
  'jobs.move': operation<JobView>()(
    z.strictObject({
      id: idSchema,
      to: z.union([z.enum(['front', 'back']), z.strictObject({ before: idSchema })]),
    }),
  ),
  'jobs.retry': operation<JobView>()(byId),

  'packs.list': operation<PacksView>()(none),
  /** Re-hashes every file of a pack against its manifest. */
  'packs.verify': operation<PackVerifyView>()(z.strictObject({ name: packName })),
  /** Copies a pack folder into the user's packs (validated first; a pack is never half copied). */
  'packs.import': operation<PackView>()(z.strictObject({ dir: folderPath })),
  /** Restarts the engine with that pack (queued jobs wait); remembered for the next start. */
  'packs.use': operation<EngineInfo>()(z.strictObject({ name: packName })),

  'settings.get': operation<SettingsView>()(none),
  'settings.update': operation<SettingsView>()(settingsUpdateSchema),
} as const;

/** Operations whose argument may be larger than the web server's usual 1 MiB body limit. */
export const LARGE_BODY_OPERATIONS: ReadonlySet<OperationName> = new Set(['gallery.import']);
export const LARGE_BODY_BYTES = 200 * 1024 * 1024;

declare const payloadBrand: unique symbol;
export interface StudioEventSpec<P> {
  readonly [payloadBrand]?: P;
}
const event = <P>(): StudioEventSpec<P> => ({});

export const events = {
  progress: event<ProgressView>(),
  /** A job was queued, started, finished, failed, was cancelled or moved. */
  job: event<JobView>(),
  library: event<LibraryChange>(),
  /** The engine restarted (another pack, backend or thread count): what it runs now. */
  engine: event<EngineInfo>(),
  /** Settings changed; when library.current changed, everything shown from the library is stale. */
  settings: event<SettingsView>(),
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
// Media: image files and thumbnails travel by URL, not inside replies. The path is the same on
// both transports: app://bundle/media/… on the desktop, http://127.0.0.1:PORT/media/…?token=… in web mode.

export type MediaKind = 'image' | 'thumb';
export const mediaPath = (kind: MediaKind, id: number): string => `/media/${kind}/${id}`;
/** The kind and id a media path names, or null. */
export function parseMediaPath(pathname: string): { kind: MediaKind; id: number } | null {
  const m = /^\/media\/(image|thumb)\/([1-9]\d{0,15})$/.exec(pathname);
  if (!m) return null;
  const id = Number(m[2]);
  return Number.isSafeInteger(id) ? { kind: m[1] as MediaKind, id } : null;
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
// Desktop only: the native folder picker (Electron's dialog in main). Web mode has none; its folder
// fields are typed.

export const CHOOSE_FOLDER_CHANNEL = 'studio:desktop:chooseFolder';
export const chooseFolderArgsSchema = z.strictObject({
  /** The dialog's title, e.g. "Library folder". */
  title: z.string().trim().min(1).max(200),
  /** Where the dialog opens. */
  defaultPath: z.string().max(4096).optional(),
});
export type ChooseFolderArgs = z.input<typeof chooseFolderArgsSchema>;

/** What the desktop preload adds to window.studio besides the operations. */
export interface DesktopBridge {
  /** The folder picked, or null when the dialog was cancelled. */
  chooseFolder(args: ChooseFolderArgs): Promise<Reply<{ path: string | null }>>;
}

// ---------------------------------------------------------------------------------------------
// Errors and replies

export type ErrorCode =
  | 'invalid_argument'
  | 'not_found'
  | 'conflict'
  | 'unknown_operation'
  | 'unauthorized'
  | 'cancelled'
  | 'busy'
  | 'engine'
  | 'library'
  | 'internal';

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
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
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

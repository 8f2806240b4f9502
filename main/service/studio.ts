// The studio's operations, each implemented once. IPC (main/app), the web server (main/web) and
// the CLI call these; none of them holds logic of its own. Arguments arrive already validated
// against preload/contract.ts (the transports call parseArgs); results are plain data. Work for
// the engine is queued in the library's job table and run by a JobRunner; its images reach the UI
// by URL (media()).

import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import type { EngineClient, EngineInfo, PackInfo } from '../engine/api.ts';
import type { Manifest } from '../engine/manifest.ts';
import { BUNDLED_MODELS_DIR } from '../engine/packs.ts';
import { DB_FILE } from '../library/db.ts';
import { goneMessage, LibraryError } from '../library/errors.ts';
import { checkFolderPath, FolderError } from '../library/folders.ts';
import type { Job } from '../library/jobs.ts';
import { Library, MAX_PAGE, type ListQuery } from '../library/library.ts';
import { readPngMetadata } from '../library/png-metadata.ts';
import { SCHEMA_VERSION } from '../library/migrations.ts';
import {
  StudioError,
  type JobView,
  type LibraryChange,
  type OperationName,
  type ParsedArgs,
  type Result,
  type SettingsView,
  type StudioEvent,
} from '../../preload/contract.ts';
import { aboutView, REPOSITORY_APP_DIR } from './about.ts';
import { EngineSlot, type EngineConfig, type StartEngine } from './engine-slot.ts';
import { oneLine, toStudioError } from './errors.ts';
import { findPacks, importPack, packView, verifyPack, type FoundPack, type PackFolders } from './packs.ts';
import { appDataDir } from './paths.ts';
import { JobRunner } from './runner.ts';
import { loadSettings, saveSettings, settingsFile, type LoadedSettings, type StoredSettings } from './settings.ts';
import { exportImages, importFiles } from './transfer.ts';
import { runJob, type WorkDeps } from './work.ts';

export type Handlers = { [K in OperationName]: (args: ParsedArgs<K>) => Promise<Result<K>> };

export interface StudioService {
  readonly handlers: Handlers;
  /** Runs one operation (arguments already parsed); failures are StudioErrors. */
  call<K extends OperationName>(op: K, args: ParsedArgs<K>): Promise<Result<K>>;
  /** Listens to pushed events (progress, jobs, library changes); returns the unsubscribe function. */
  subscribe(listener: (event: StudioEvent) => void): () => void;
  /** The file behind a media URL (/media/image/<id>, /media/thumb/<id>). */
  media(kind: 'image' | 'thumb', id: number): Promise<{ path: string; mime: string }>;
  /** Resolves with the job once it has ended (done, failed or cancelled). */
  waitForJob(id: number): Promise<JobView>;
  /** Stops the runner (a running job goes back to the queue), closes the library and the engine. */
  close(): Promise<void>;
}

export interface StudioServiceOptions {
  engine: EngineClient;
  /** The library folder (opened on first use, so a damaged library still lets the rest work). */
  libraryDir: string;
  /**
   * The app's folder, holding package.json, LICENSE and THIRD_PARTY_NOTICES.md (the About box).
   * Default: the repository root; the desktop app passes app.getAppPath().
   */
  appDir?: string;
  /** 'all' (desktop, web): run the whole queue; 'own' (CLI): only jobs this service queued. */
  runScope?: 'all' | 'own';
  /** What `engine` was started with. */
  engineConfig?: EngineConfig;
  /** Starts an engine with another pack, backend or thread count (absent: the engine cannot change). */
  startEngine?: StartEngine;
  /** The app's data folder: settings.json and the user's packs (models/). Default: appDataDir(). */
  dataDir?: string;
  /** Folders of the packs shipped with the app. Default: the repository's models/. */
  bundledPacksDirs?: string[];
  /**
   * settings.json as the caller read it to choose the library and engine (main/service/startup.ts),
   * its warning already shown; absent: read here from `dataDir`, a warning logged.
   */
  settings?: LoadedSettings;
}

const ENDED = new Set(['done', 'failed', 'cancelled']);

/** Every id a filter selects, oldest first (keyset pages, never OFFSET). */
function allIds(l: Library, q: ListQuery): number[] {
  const out: number[] = [];
  let cursor: string | null = null;
  do {
    const page = l.list({ ...q, limit: MAX_PAGE, cursor, sort: 'oldest' });
    out.push(...page.items.map((i) => i.id));
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

function jobView(job: Job): JobView {
  const { leaseOwner: _owner, ...view } = job;
  return view;
}

type LoadedPack = FoundPack & { manifest: Manifest };
const loaded = (p: FoundPack): p is LoadedPack => 'manifest' in p;

export function createStudioService({
  engine: firstEngine,
  libraryDir: firstLibraryDir,
  appDir = REPOSITORY_APP_DIR,
  runScope = 'all',
  engineConfig = {},
  startEngine,
  dataDir = appDataDir(),
  bundledPacksDirs = [BUNDLED_MODELS_DIR],
  settings: readSettings,
}: StudioServiceOptions): StudioService {
  const listeners = new Set<(event: StudioEvent) => void>();
  const slot = new EngineSlot(firstEngine, engineConfig, startEngine);
  const engine = slot.client;
  let libraryDir = resolve(firstLibraryDir);
  let library: Library | null = null;
  let runner: JobRunner | null = null;
  let packInfo: Promise<PackInfo & { fingerprint: string }> | null = null;
  const stored = readSettings ?? loadSettings(dataDir);
  let settings: StoredSettings = stored.settings;
  let settingsWarning = stored.warning;
  if (settingsWarning && !readSettings) console.warn(`studio: ${settingsWarning}`);
  const packFolders: PackFolders = { bundled: bundledPacksDirs, user: join(dataDir, 'models') };
  /** Restarts, imports and settings changes run one at a time. */
  let serial: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const p = serial.catch(() => undefined).then(work);
    serial = p;
    return p;
  };

  const emit = (event: StudioEvent): void => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (err) {
        console.error('studio: event listener failed:', err);
      }
    }
  };
  const changed = (c: Partial<LibraryChange>): void =>
    emit({ name: 'library', payload: { added: c.added ?? [], changed: c.changed ?? [], removed: c.removed ?? [] } });
  const jobEvent = (job: Job): void => emit({ name: 'job', payload: jobView(job) });

  const pack = (): Promise<PackInfo & { fingerprint: string }> => {
    if (!packInfo) {
      const p = engine.info().then(({ pack: info }) => {
        if (!info.fingerprint) throw new StudioError('engine', 'engine: the pack has no fingerprint');
        return info as PackInfo & { fingerprint: string };
      });
      packInfo = p;
      p.catch(() => {
        if (packInfo === p) packInfo = null; // a failed load is retried next time
      });
    }
    return packInfo;
  };

  /** Makes `opened` the service's library, with a runner working through its queue. */
  const install = (opened: Library): void => {
    library = opened;
    {
      const deps: WorkDeps = {
        library,
        engine,
        pack,
        changed,
        enqueue: (kind, args) => {
          if (!library!.jobs.findActive(kind, args)) enqueue(kind, args, { followUp: true });
        },
      };
      runner = new JobRunner({
        library,
        scope: runScope,
        execute: (job, ctx) => runJob(deps, job, ctx),
        onJob: jobEvent,
        onProgress: (jobId, event) => emit({ name: 'progress', payload: { ...event, jobId } }),
      });
      runner.kick(); // jobs left queued by an earlier run
    }
  };

  /** The library folder went away while open (deleted, moved, its disk unplugged): not made again. */
  let vanished = false;
  const dbThere = (): boolean => existsSync(join(libraryDir, DB_FILE));

  /** Lets go of a library whose folder is gone: its runner gives a running job back, then it closes. */
  const drop = (): void => {
    const [old, oldRunner] = [library, runner];
    library = null;
    runner = null;
    void (oldRunner?.close() ?? Promise.resolve()).finally(() => old?.close());
  };

  const lib = (): Library => {
    if (library && !library.present()) {
      vanished = true;
      // Still missing: say so (and keep the handle, in case the same folder is put back). Back as
      // another file (a copy restored, a disk mounted again): open that one.
      if (!dbThere()) throw new LibraryError('io', goneMessage(libraryDir));
      drop();
    }
    if (!library) {
      if (vanished && !dbThere()) throw new LibraryError('io', goneMessage(libraryDir));
      install(Library.open(libraryDir));
      vanished = false;
    }
    return library!;
  };

  /** Restarts the engine once the running job (if any) has finished; queued jobs wait for it. */
  async function restartEngine(next: EngineConfig): Promise<EngineInfo> {
    const paused = runner;
    await paused?.pause();
    try {
      const info = await slot.restart(next);
      emit({ name: 'engine', payload: info });
      return info;
    } finally {
      packInfo = null; // the new pack's fingerprint (or the old one again)
      paused?.resume();
    }
  }

  /** Opens `dir` as the library now, or says why it must wait for the next start. */
  async function relocateLibrary(dir: string): Promise<string | null> {
    if (dir === libraryDir) return null;
    if (library?.present()) {
      const { queued, running } = library.jobs.counts();
      if (queued + running > 0)
        return `${queued + running} job${queued + running === 1 ? ' is' : 's are'} queued or running in the current one`;
    }
    const opened = Library.open(dir); // a damaged or newer library is refused here, the old one still open
    const old = library;
    await runner?.close();
    old?.close();
    library = null;
    runner = null;
    libraryDir = dir;
    vanished = false;
    install(opened);
    return null;
  }

  function persist(next: StoredSettings): void {
    try {
      saveSettings(dataDir, next, { keepOld: settingsWarning !== undefined });
    } catch (err) {
      throw new StudioError('internal', `settings: cannot write ${settingsFile(dataDir)} (${oneLine(err)})`);
    }
    settings = next;
    settingsWarning = undefined;
  }

  async function settingsView(note?: string): Promise<SettingsView> {
    let info: EngineInfo | null = null;
    let error: string | undefined;
    try {
      info = await engine.info();
    } catch (err) {
      error = toStudioError(err).message;
    }
    const config = slot.config;
    const saved = settings.libraryDir ?? null;
    return {
      file: settingsFile(dataDir),
      ...(settingsWarning ? { warning: settingsWarning } : {}),
      theme: settings.theme,
      library: { current: libraryDir, saved, pending: saved !== null && resolve(saved) !== libraryDir },
      engine: {
        restartable: slot.canRestart,
        backend: config.backend ?? null,
        threads: config.threads ?? null,
        backends: info?.backends ?? null,
        runningThreads: info?.threads ?? null,
        sessionBackends: info?.sessionBackends ?? null,
        ...(error ? { error } : {}),
      },
      maxThreads: availableParallelism(),
      ...(note ? { note } : {}),
    };
  }

  /** The packs on disk and the folder of the one the engine runs (or why that is unknown). */
  async function installedPacks(): Promise<{ found: FoundPack[]; active: string | null; engineError?: string }> {
    try {
      const active = (await engine.info()).pack.dir;
      return { found: await findPacks(packFolders, active), active };
    } catch (err) {
      const active = slot.config.packDir ?? null;
      return {
        found: await findPacks(packFolders, active ?? undefined),
        active,
        engineError: toStudioError(err).message,
      };
    }
  }

  async function packNamed(op: string, name: string): Promise<{ pack: LoadedPack; active: string | null }> {
    const { found, active } = await installedPacks();
    const pack = found.filter(loaded).find((p) => p.manifest.name === name);
    if (!pack)
      throw new StudioError('not_found', `${op}: no pack named "${name}" (packs.list shows the installed ones)`);
    return { pack, active };
  }

  function enqueue(kind: Job['kind'], args: unknown, opts: { followUp?: boolean } = {}): JobView {
    const job = lib().jobs.enqueue(kind, args, opts);
    jobEvent(job);
    runner!.take(job.id);
    return jobView(job);
  }

  const handlers: Handlers = {
    async 'engine.info'() {
      return engine.info();
    },

    // The engine knows which pack it loaded (and where); the app's part still shows without one.
    async about() {
      let info: PackInfo | null = null;
      let packError: string | undefined;
      try {
        info = (await engine.info()).pack;
      } catch (err) {
        packError = toStudioError(err).message;
      }
      return aboutView({ appDir, pack: info, packError });
    },

    async 'prompt.tokens'({ prompt }) {
      if (!engine.countTokens) throw new StudioError('engine', 'this engine cannot count tokens');
      return engine.countTokens(prompt);
    },

    async 'library.info'() {
      const l = lib();
      return {
        dir: l.dir,
        schemaVersion: SCHEMA_VERSION,
        images: l.count(),
        trashed: l.count({ trashed: true }),
        packs: l.packs(),
        jobs: l.jobs.counts(),
      };
    },

    async generate(args) {
      return enqueue('generate', args);
    },
    async vary(args) {
      lib().get(args.id);
      // A fresh seed per request unless one is asked for (asking twice gives new variations); it is
      // fixed in the job's arguments, so a retried job remakes the same pictures.
      return enqueue('vary', { ...args, seed: args.seed ?? randomInt(2 ** 32) });
    },
    async interpolate(args) {
      lib().getMany([args.a, args.b]);
      if (args.a === args.b) throw new StudioError('invalid_argument', 'interpolate: a and b are the same image');
      return enqueue(
        'interpolate',
        args.noise === 'random' ? { ...args, seed: args.seed ?? randomInt(2 ** 32) } : args,
      );
    },
    async textdiff(args) {
      const image = lib().get(args.id);
      if (!(args.from ?? image.prompt).trim())
        throw new StudioError(
          'invalid_argument',
          `textdiff: image ${args.id} has no caption; say what it shows (from)`,
        );
      return enqueue('textdiff', args);
    },
    async invert(args) {
      lib().get(args.id);
      return enqueue('invert', args);
    },

    async 'gallery.import'({ files }) {
      const l = lib();
      const info = await pack();
      const out = await importFiles(l, { name: info.name, sha256: info.fingerprint }, files);
      if (out.imported.length) changed({ added: out.imported });
      // The images are saved: their encoding is queued even when the queue is full.
      const jobs = out.toInvert.map((id) => enqueue('import', { id }, { followUp: true }));
      return { imported: out.imported, duplicates: out.duplicates, refused: out.refused, jobs };
    },

    async 'gallery.list'(query) {
      return lib().list(query);
    },
    async 'gallery.count'(filter) {
      return { count: lib().count(filter) };
    },
    async 'gallery.get'({ id }) {
      const l = lib();
      const image = l.get(id);
      const { parents, children } = l.lineage(id);
      const inv = image.inverted ? l.latents(id).inversion : null;
      const s = inv?.settings ?? {};
      const parameters = image.mime === 'image/png' ? (readPngMetadata(l.readFile(id)).parameters ?? '') : '';
      return {
        image,
        parents,
        children,
        boards: l.boardsOf(id),
        parameters,
        inversion: inv
          ? { steps: Number(s.steps), guidance: Number(s.guidance), refine: Number(s.refine ?? 0), psnr: inv.psnr }
          : null,
      };
    },
    async 'gallery.similar'({ id, text, k, filter }) {
      const l = lib();
      if (id !== undefined) {
        const image = l.get(id);
        if (!image.hasEmbedding)
          throw new StudioError('conflict', `image ${id} has no CLIP embedding yet (its import job is queued)`);
        return l.similar(l.latents(id).zi, image.pack.sha256, k, filter, id);
      }
      if (!engine.embedText) throw new StudioError('engine', 'this engine cannot embed text');
      const info = await pack();
      return l.similar(await engine.embedText(text!), info.fingerprint, k, filter);
    },
    async 'gallery.star'({ ids, starred }) {
      const n = lib().star(ids, starred);
      changed({ changed: ids });
      return { changed: n };
    },
    async 'gallery.trash'({ ids }) {
      const n = lib().trash(ids);
      changed({ changed: ids });
      return { changed: n };
    },
    async 'gallery.restore'({ ids }) {
      const n = lib().restore(ids);
      changed({ changed: ids });
      return { changed: n };
    },
    async 'gallery.emptyTrash'({ ids: only }) {
      const { ids, ...out } = lib().emptyTrash(only);
      changed({ removed: ids });
      return out;
    },
    async 'gallery.export'({ ids, boardId, dir }) {
      const l = lib();
      return exportImages(
        l,
        ids ? l.getMany(ids).map((r) => r.id) : allIds(l, boardId !== undefined ? { boardId } : {}),
        dir,
      );
    },
    async 'gallery.check'({ repair, verifyHashes }) {
      return lib().check({ repair, verifyHashes });
    },

    async 'boards.list'() {
      return lib().listBoards();
    },
    async 'boards.create'({ name }) {
      return lib().createBoard(name);
    },
    async 'boards.rename'({ id, name }) {
      return lib().renameBoard(id, name);
    },
    async 'boards.delete'({ id }) {
      lib().deleteBoard(id);
      return { deleted: true };
    },
    async 'boards.add'({ boardId, ids }) {
      const n = lib().addToBoard(boardId, ids);
      changed({ changed: ids });
      return { changed: n };
    },
    async 'boards.remove'({ boardId, ids }) {
      const n = lib().removeFromBoard(boardId, ids);
      changed({ changed: ids });
      return { changed: n };
    },

    async 'jobs.list'({ status, limit }) {
      return lib()
        .jobs.list({ ...(status ? { status } : {}), ...(limit ? { limit } : {}) })
        .map(jobView);
    },
    async 'jobs.get'({ id }) {
      return jobView(lib().jobs.get(id));
    },
    async 'jobs.cancel'({ id }) {
      const job = lib().jobs.cancel(id);
      runner!.abortIfRunning(id);
      jobEvent(job);
      return jobView(job);
    },
    async 'jobs.move'({ id, to }) {
      const job = lib().jobs.move(id, to);
      jobEvent(job);
      return jobView(job);
    },
    async 'jobs.retry'({ id }) {
      const job = lib().jobs.retry(id);
      jobEvent(job);
      runner!.take(id);
      return jobView(job);
    },

    async 'packs.list'() {
      const { found, active, engineError } = await installedPacks();
      return {
        packs: await Promise.all(found.filter(loaded).map((p) => packView(p, active))),
        broken: found.flatMap((p) => ('error' in p ? [{ dir: p.dir, source: p.source, error: p.error }] : [])),
        userDir: packFolders.user,
        bundledDirs: packFolders.bundled,
        ...(engineError ? { engineError } : {}),
      };
    },
    async 'packs.verify'({ name }) {
      const { pack } = await packNamed('packs.verify', name);
      return verifyPack(pack.dir, pack.manifest);
    },
    async 'packs.import'({ dir }) {
      return exclusive(async () => {
        const { found, active } = await installedPacks();
        const added = await importPack(dir, packFolders.user, found);
        return packView({ ...added, source: 'user' }, active);
      });
    },
    async 'packs.use'({ name }) {
      return exclusive(async () => {
        const { pack, active } = await packNamed('packs.use', name);
        const info =
          pack.dir === active ? await engine.info() : await restartEngine({ ...slot.config, packDir: pack.dir });
        if (settings.pack !== pack.dir) persist({ ...settings, pack: pack.dir });
        return info;
      });
    },

    async 'settings.get'() {
      return settingsView();
    },
    async 'settings.update'(patch) {
      return exclusive(async () => {
        const maxThreads = availableParallelism();
        if (patch.threads !== undefined && patch.threads > maxThreads)
          throw new StudioError(
            'invalid_argument',
            `settings.update: threads: at most ${maxThreads} on this machine (got ${patch.threads})`,
          );
        let dir: string | undefined;
        if (patch.libraryDir !== undefined) {
          try {
            dir = checkFolderPath(patch.libraryDir);
          } catch (err) {
            if (err instanceof FolderError)
              throw new StudioError('invalid_argument', `settings.update: libraryDir: ${err.message}`);
            throw err;
          }
        }
        const notes: string[] = [];
        const next: StoredSettings = { ...settings };
        const config = slot.config;
        const engineNext: EngineConfig = {
          ...config,
          ...(patch.backend !== undefined ? { backend: patch.backend } : {}),
          ...(patch.threads !== undefined ? { threads: patch.threads } : {}),
        };
        if ((engineNext.backend ?? 'cpu') !== (config.backend ?? 'cpu') || engineNext.threads !== config.threads) {
          const info = await restartEngine(engineNext);
          const on = [...new Set(Object.values(info.sessionBackends))].join(', ') || 'cpu';
          const threads = info.threads ?? engineNext.threads;
          notes.push(
            `The engine restarted: ${threads === undefined ? 'default threads' : `${threads} thread${threads === 1 ? '' : 's'}`}, running on ${on}.`,
          );
        }
        if (patch.backend !== undefined) next.backend = patch.backend;
        if (patch.threads !== undefined) next.threads = patch.threads;
        if (patch.theme !== undefined) next.theme = patch.theme;
        if (dir !== undefined) {
          const why = await relocateLibrary(dir);
          next.libraryDir = dir;
          notes.push(
            why === null
              ? `The library is now ${dir}.`
              : `The library moves to ${dir} when the studio starts again: ${why}.`,
          );
        }
        persist(next);
        const view = await settingsView(notes.join(' ') || undefined);
        emit({ name: 'settings', payload: view });
        return view;
      });
    },
  };

  const call = async <K extends OperationName>(op: K, args: ParsedArgs<K>): Promise<Result<K>> => {
    try {
      return await handlers[op](args);
    } catch (err) {
      throw toStudioError(err);
    }
  };

  return {
    handlers,
    call,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async media(kind, id) {
      try {
        const l = lib();
        if (kind === 'thumb') return { path: await l.thumbPath(id), mime: 'image/webp' };
        const image = l.get(id);
        return { path: l.filePath(image), mime: image.mime };
      } catch (err) {
        throw toStudioError(err);
      }
    },
    waitForJob(id) {
      return new Promise<JobView>((resolve, reject) => {
        const finish = (end: () => void): void => {
          unsubscribe();
          clearInterval(timer);
          end();
        };
        const unsubscribe = this.subscribe((event) => {
          if (event.name === 'job' && event.payload.id === id && ENDED.has(event.payload.status))
            finish(() => resolve(event.payload));
        });
        // Another process may be the one running it: look at the row too.
        const look = (): void => {
          try {
            const job = lib().jobs.get(id);
            if (ENDED.has(job.status)) finish(() => resolve(jobView(job)));
          } catch (err) {
            finish(() => reject(toStudioError(err)));
          }
        };
        const timer = setInterval(look, 250);
        look();
      });
    },
    async close() {
      await runner?.close();
      library?.close();
      library = null;
      listeners.clear();
      await engine.close();
    },
  };
}

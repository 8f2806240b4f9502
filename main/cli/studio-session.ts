// The CLI's way into the studio: the same service the desktop app and web mode run, over the library
// and with the engine that main/service/startup.ts's rule picks (flag, else environment variable,
// else the saved settings, else the default). The worker engine starts on its first call, so listing
// the gallery never loads a model. The CLI's runner runs only the jobs it queued itself, so it never
// starts working through a desktop app's queue.

import { createWorkerEngine, type WorkerEngineOptions } from '../engine/host.ts';
import { checkLibraryFolder } from '../library/library.ts';
import { sourceName, type StartupChoice } from '../service/startup.ts';
import { createStudioService, type StudioService } from '../service/studio.ts';
import { parseArgs, type OperationName, type Result } from '../../preload/contract.ts';
import { UsageError } from './args.ts';
import { cliStartup, engineOptionsOf, type CliStartup } from './startup.ts';

/** The chosen library folder, checked; a bad one is one line naming where it came from. */
export function checkedLibraryDir(c: StartupChoice): string {
  try {
    checkLibraryFolder(c.libraryDir);
  } catch (err) {
    const where =
      c.from.library === 'saved' ? 'the library folder saved in settings.json' : sourceName('library', c.from.library);
    throw new UsageError(`${where}: ${(err as Error).message}`, { cause: err });
  }
  return c.libraryDir;
}

export interface CliStudio {
  service: StudioService;
  libraryDir: string;
  /** What the library and engine were chosen by. */
  startup: CliStartup;
  /** One contract operation, its argument validated exactly as IPC and web mode validate it. */
  call<K extends OperationName>(op: K, raw: unknown): Promise<Result<K>>;
  close(): Promise<void>;
}

export function openCliStudio(opts: {
  /** --library, when the command has it. */
  library?: string;
  /** --pack, --backend, --threads (and engine extras), when the command has them. */
  engine?: WorkerEngineOptions;
  /** 'all': work through the whole queue (`unclip gallery jobs run`). */
  runScope?: 'own' | 'all';
}): CliStudio {
  const given = opts.engine ?? {};
  const startup = cliStartup({
    library: opts.library,
    pack: given.packDir,
    backend: given.backend,
    threads: given.threads,
  });
  const libraryDir = checkedLibraryDir(startup);
  const config = engineOptionsOf(startup);
  const { packDir: _p, backend: _b, threads: _t, ...extras } = given;
  const engine: WorkerEngineOptions = { ...extras, ...config };
  const service = createStudioService({
    engine: createWorkerEngine(engine),
    engineConfig: config,
    startEngine: (next) => createWorkerEngine({ ...engine, ...next }),
    libraryDir,
    runScope: opts.runScope ?? 'own',
    dataDir: startup.dataDir,
    settings: startup.settings,
  });
  return {
    service,
    libraryDir,
    startup,
    call: (op, raw) => service.call(op, parseArgs(op, raw)),
    close: () => service.close(),
  };
}

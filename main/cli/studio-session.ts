// The CLI's way into the studio: the same service the desktop app and web mode run, over the library
// folder (--library, UNCLIP_LIBRARY or the per-user default). The worker engine starts on its first
// call, so listing the gallery never loads a model. The CLI's runner runs only the jobs
// it queued itself, so it never starts working through a desktop app's queue.

import { resolve } from 'node:path';
import { createWorkerEngine, type WorkerEngineOptions } from '../engine/host.ts';
import { checkLibraryFolder } from '../library/library.ts';
import { defaultLibraryDir } from '../service/paths.ts';
import { createStudioService, type StudioService } from '../service/studio.ts';
import { parseArgs, type OperationName, type Result } from '../../preload/contract.ts';

/** --library DIR, else $UNCLIP_LIBRARY, else the per-user library the desktop app uses. */
export function libraryDirFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const dir = resolve(flag ?? (env.UNCLIP_LIBRARY || defaultLibraryDir(env)));
  checkLibraryFolder(dir);
  return dir;
}

export interface CliStudio {
  service: StudioService;
  libraryDir: string;
  /** One contract operation, its argument validated exactly as IPC and web mode validate it. */
  call<K extends OperationName>(op: K, raw: unknown): Promise<Result<K>>;
  close(): Promise<void>;
}

export function openCliStudio(opts: {
  library?: string;
  engine?: WorkerEngineOptions;
  /** 'all': work through the whole queue (`unclip gallery jobs run`). */
  runScope?: 'own' | 'all';
}): CliStudio {
  const libraryDir = libraryDirFrom(opts.library);
  const engine = opts.engine ?? {};
  const service = createStudioService({
    engine: createWorkerEngine(engine),
    engineConfig: {
      ...(engine.packDir !== undefined ? { packDir: engine.packDir } : {}),
      ...(engine.backend !== undefined ? { backend: engine.backend } : {}),
      ...(engine.threads !== undefined ? { threads: engine.threads } : {}),
    },
    startEngine: (config) => createWorkerEngine({ ...engine, ...config }),
    libraryDir,
    runScope: opts.runScope ?? 'own',
  });
  return {
    service,
    libraryDir,
    call: (op, raw) => service.call(op, parseArgs(op, raw)),
    close: () => service.close(),
  };
}

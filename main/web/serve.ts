// Web mode, end to end: parse the command line, build the renderer if needed, start the engine
// in a worker thread, and serve the studio on 127.0.0.1 with a fresh token.
//   npm run serve -- [--port N] [--library DIR] [--pack DIR] [--backend cpu|cuda|...] [--threads N]

import { parseArgs as parseCli } from 'node:util';
import type { Backend } from '../engine/api.ts';
import { createWorkerEngine } from '../engine/host.ts';
import { BACKENDS } from '../engine/settings.ts';
import { checkLibraryFolder } from '../library/library.ts';
import { bundledPackDir } from '../engine/packs.ts';
import { defaultLibraryDir } from '../service/paths.ts';
import { DEFAULT_SETTINGS, type LoadedSettings } from '../service/settings.ts';
import { readStartupSettings, resolveStartup } from '../service/startup.ts';
import { createStudioService } from '../service/studio.ts';
import { ensureRendererBuilt } from './renderer-build.ts';
import { startWebServer, type WebServer } from './server.ts';

export interface WebModeOptions {
  port: number;
  libraryDir: string;
  packDir?: string;
  backend?: Backend;
  threads?: number;
  /** One line each: a damaged settings file, a saved pack that is gone, a bad environment value. */
  warnings: string[];
}

/**
 * Reads web mode's flags; a bad flag is a one-line Error naming it. What a flag leaves open follows
 * main/service/startup.ts: $UNCLIP_LIBRARY, $UNCLIP_PACK, $UNCLIP_BACKEND, $UNCLIP_THREADS, else the
 * saved settings (`settings`: settings.json as read; the Settings and Models views), else the defaults.
 */
export function parseWebArgs(
  argv: string[],
  settings: LoadedSettings = { settings: DEFAULT_SETTINGS },
  env: NodeJS.ProcessEnv = process.env,
): WebModeOptions {
  let values;
  try {
    ({ values } = parseCli({
      args: argv,
      options: {
        web: { type: 'boolean' },
        port: { type: 'string' },
        library: { type: 'string' },
        pack: { type: 'string' },
        backend: { type: 'string' },
        threads: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new Error((err as Error).message.split('\n')[0], { cause: err });
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port: expected an integer 0–65535 (got ${values.port})`);
  }
  let threads: number | undefined;
  if (values.threads !== undefined) {
    threads = Number(values.threads);
    if (!Number.isInteger(threads) || threads < 1)
      throw new Error(`--threads: expected a positive integer (got ${values.threads})`);
  }
  const backend = values.backend as Backend | undefined;
  if (backend !== undefined && !(BACKENDS as readonly string[]).includes(backend)) {
    throw new Error(`--backend: expected one of ${BACKENDS.join(', ')} (got ${values.backend})`);
  }
  const choice = resolveStartup({
    flags: { library: values.library, pack: values.pack, backend, threads },
    env,
    settings,
    defaultLibraryDir: defaultLibraryDir(env),
    defaultPack: bundledPackDir,
  });
  return {
    port,
    libraryDir: choice.libraryDir,
    ...(choice.packDir !== undefined ? { packDir: choice.packDir } : {}),
    ...(choice.backend !== undefined ? { backend: choice.backend } : {}),
    ...(choice.threads !== undefined ? { threads: choice.threads } : {}),
    warnings: choice.warnings,
  };
}

export async function runWebMode(argv: string[], log: (line: string) => void = console.log): Promise<WebServer> {
  const { dataDir, settings } = readStartupSettings();
  const options = parseWebArgs(argv, settings);
  for (const w of options.warnings) console.warn(`warning: ${w}`);
  const staticDir = await ensureRendererBuilt({ log });
  // Refuses a system folder, a file, a damaged or newer library before anything starts.
  checkLibraryFolder(options.libraryDir);
  const engineConfig = {
    ...(options.packDir !== undefined ? { packDir: options.packDir } : {}),
    ...(options.backend !== undefined ? { backend: options.backend } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
  };
  const service = createStudioService({
    engine: createWorkerEngine(engineConfig),
    engineConfig,
    startEngine: (config) => createWorkerEngine(config),
    libraryDir: options.libraryDir,
    dataDir,
    settings,
  });
  try {
    await service.call('library.info', {});
  } catch (err) {
    await service.close();
    throw err;
  }
  const server = await startWebServer({ service, staticDir, port: options.port });

  let closing = false;
  const shutdown = (): void => {
    if (closing) return;
    closing = true;
    void server
      .close()
      .then(() => service.close())
      .finally(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);

  log(`library: ${options.libraryDir}`);
  log(`unCLIP Studio is running in web mode: ${server.url}`);
  return server;
}

// Web mode, end to end: parse the command line, build the renderer if needed, start the engine
// in a worker thread, and serve the studio on 127.0.0.1 with a fresh token.
//   npm run serve -- [--port N] [--library DIR] [--pack DIR] [--backend cpu|cuda|...] [--threads N]

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs as parseCli } from 'node:util';
import type { Backend } from '../engine/api.ts';
import { createWorkerEngine } from '../engine/host.ts';
import { BACKENDS } from '../engine/settings.ts';
import { checkLibraryFolder } from '../library/library.ts';
import { appDataDir, defaultLibraryDir } from '../service/paths.ts';
import { loadSettings, type StoredSettings } from '../service/settings.ts';
import { createStudioService } from '../service/studio.ts';
import { ensureRendererBuilt } from './renderer-build.ts';
import { startWebServer, type WebServer } from './server.ts';

export interface WebModeOptions {
  port: number;
  libraryDir: string;
  packDir?: string;
  backend?: Backend;
  threads?: number;
}

/**
 * Reads web mode's flags; a bad flag is a one-line Error naming it. What a flag (or $UNCLIP_LIBRARY,
 * $UNCLIP_PACK) leaves open comes from the saved settings (the Settings and Models views).
 */
export function parseWebArgs(argv: string[], saved: Partial<StoredSettings> = {}): WebModeOptions {
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
  threads ??= saved.threads;
  const backend = (values.backend as Backend | undefined) ?? saved.backend;
  if (backend !== undefined && !(BACKENDS as readonly string[]).includes(backend)) {
    throw new Error(`--backend: expected one of ${BACKENDS.join(', ')} (got ${values.backend})`);
  }
  const savedPack =
    !process.env.UNCLIP_PACK?.trim() && saved.pack && existsSync(join(saved.pack, 'manifest.json'))
      ? saved.pack
      : undefined;
  const pack = values.pack ?? savedPack;
  return {
    port,
    libraryDir: resolve(values.library ?? (process.env.UNCLIP_LIBRARY || saved.libraryDir || defaultLibraryDir())),
    ...(pack !== undefined ? { packDir: resolve(pack) } : {}),
    ...(backend !== undefined ? { backend } : {}),
    ...(threads !== undefined ? { threads } : {}),
  };
}

export async function runWebMode(argv: string[], log: (line: string) => void = console.log): Promise<WebServer> {
  const options = parseWebArgs(argv, loadSettings(appDataDir()).settings);
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

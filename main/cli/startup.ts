// Which library, pack, backend and threads a CLI command uses: main/service/startup.ts's rule (flag,
// else environment variable, else settings.json, else the default), read once per command, its
// warnings on stderr. Light on purpose: cold `unclip generate` and `unclip info` import it.

import { join } from 'node:path';
import type { Backend } from '../engine/api.ts';
import { bundledPackDir } from '../engine/packs.ts';
import type { LoadedSettings } from '../service/settings.ts';
import { readStartupSettings, resolveStartup, type StartupChoice, type StartupFlags } from '../service/startup.ts';

export interface CliStartup extends StartupChoice {
  dataDir: string;
  settings: LoadedSettings;
}

const warned = new Set<string>();

/**
 * The library, pack, backend and threads for this command: `flags`, else $UNCLIP_LIBRARY, $UNCLIP_PACK,
 * $UNCLIP_BACKEND, $UNCLIP_THREADS, else settings.json, else the defaults (the per-user library, the
 * first shipped pack, `defaults`). Each warning (damaged settings file, saved pack gone) goes to stderr once.
 */
export function cliStartup(
  flags: StartupFlags = {},
  defaults: { backend?: Backend; threads?: number } = {},
  env: NodeJS.ProcessEnv = process.env,
): CliStartup {
  const { dataDir, settings } = readStartupSettings(env);
  const choice = resolveStartup({
    flags,
    env,
    settings,
    defaultLibraryDir: join(dataDir, 'library'),
    defaultPack: bundledPackDir,
    ...(defaults.backend !== undefined ? { defaultBackend: defaults.backend } : {}),
    ...(defaults.threads !== undefined ? { defaultThreads: defaults.threads } : {}),
  });
  for (const w of choice.warnings) {
    if (warned.has(w)) continue;
    warned.add(w);
    process.stderr.write(`warning: ${w}\n`);
  }
  return { ...choice, dataDir, settings };
}

/** The engine options of a startup choice (what the worker engine or an in-process Engine is given). */
export function engineOptionsOf(c: StartupChoice): { packDir?: string; backend?: Backend; threads?: number } {
  return {
    ...(c.packDir !== undefined ? { packDir: c.packDir } : {}),
    ...(c.backend !== undefined ? { backend: c.backend } : {}),
    ...(c.threads !== undefined ? { threads: c.threads } : {}),
  };
}

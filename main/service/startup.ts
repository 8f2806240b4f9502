// Which library, pack, backend and thread count a start uses: one rule for the desktop app, web mode
// and every CLI command. For each, the flag (--library, --pack, --backend, --threads), else its
// environment variable ($UNCLIP_LIBRARY, $UNCLIP_PACK, $UNCLIP_BACKEND, $UNCLIP_THREADS; empty counts
// as unset), else the saved setting (settings.json: the Settings and Models views, `unclip packs use`),
// else the built-in default. A saved pack whose folder no longer holds a manifest.json falls back to
// the default with a warning; a damaged settings file means the defaults and its warning (never a
// crash); a bad environment value is ignored with a warning. Plain Node (no Electron) and cheap:
// one small JSON file is read, nothing heavy is imported.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Backend } from '../engine/api.ts';
import { BACKENDS } from '../engine/settings.ts';
import { appDataDir } from './paths.ts';
import { DEFAULT_SETTINGS, loadSettings, SETTINGS_FILE, type LoadedSettings } from './settings.ts';

/** Where a choice came from. */
export type ChoiceSource = 'flag' | 'env' | 'saved' | 'default';

export type StartupKey = 'library' | 'pack' | 'backend' | 'threads';

/** The environment variable of each choice. */
export const STARTUP_ENV: Record<StartupKey, string> = {
  library: 'UNCLIP_LIBRARY',
  pack: 'UNCLIP_PACK',
  backend: 'UNCLIP_BACKEND',
  threads: 'UNCLIP_THREADS',
};

/** What the command line gave, already checked by the caller's own flag parsing. */
export interface StartupFlags {
  library?: string | undefined;
  pack?: string | undefined;
  backend?: Backend | undefined;
  threads?: number | undefined;
}

export interface StartupChoice {
  libraryDir: string;
  /** Absent only when the caller has no default pack (the engine then picks its own). */
  packDir?: string;
  /** Absent: the engine's default (cpu). */
  backend?: Backend;
  /** Absent: the engine's default. */
  threads?: number;
  from: Record<StartupKey, ChoiceSource>;
  /** One line each: a damaged settings file, a saved pack that is gone, a bad environment value. */
  warnings: string[];
}

export interface StartupOptions {
  flags?: StartupFlags;
  env?: NodeJS.ProcessEnv;
  /** The settings file as read (loadSettings); absent: no saved settings. */
  settings?: LoadedSettings;
  /** The library when nothing names one (the per-user one: <app data>/library). */
  defaultLibraryDir: string;
  /** The pack when nothing names one (absent or undefined: left to the engine). */
  defaultPack?: () => string | undefined;
  /** The backend / thread count when nothing names one (absent: left to the engine). */
  defaultBackend?: Backend;
  defaultThreads?: number;
}

/** How a choice's source is named in messages: "--threads", "$UNCLIP_THREADS", "settings.json", "default". */
export function sourceName(key: StartupKey, source: ChoiceSource): string {
  if (source === 'flag') return `--${key}`;
  if (source === 'env') return `$${STARTUP_ENV[key]}`;
  return source === 'saved' ? SETTINGS_FILE : 'default';
}

const MAX_THREADS = 1024;

export function resolveStartup(o: StartupOptions): StartupChoice {
  const env = o.env ?? process.env;
  const flags = o.flags ?? {};
  const saved = o.settings?.settings ?? DEFAULT_SETTINGS;
  const warnings: string[] = o.settings?.warning ? [o.settings.warning] : [];
  const envValue = (key: StartupKey): string | undefined => {
    const v = env[STARTUP_ENV[key]];
    return v !== undefined && v.trim() !== '' ? v.trim() : undefined;
  };
  const from = {} as Record<StartupKey, ChoiceSource>;

  // library
  let libraryDir: string;
  const envLibrary = envValue('library');
  if (flags.library !== undefined) [libraryDir, from.library] = [resolve(flags.library), 'flag'];
  else if (envLibrary !== undefined) [libraryDir, from.library] = [resolve(envLibrary), 'env'];
  else if (saved.libraryDir !== undefined) [libraryDir, from.library] = [resolve(saved.libraryDir), 'saved'];
  else [libraryDir, from.library] = [resolve(o.defaultLibraryDir), 'default'];

  // pack
  let packDir: string | undefined;
  const envPack = envValue('pack');
  if (flags.pack !== undefined) [packDir, from.pack] = [resolve(flags.pack), 'flag'];
  else if (envPack !== undefined) [packDir, from.pack] = [resolve(envPack), 'env'];
  else if (saved.pack !== undefined && existsSync(join(saved.pack, 'manifest.json')))
    [packDir, from.pack] = [resolve(saved.pack), 'saved'];
  else {
    const fallback = o.defaultPack?.();
    [packDir, from.pack] = [fallback === undefined ? undefined : resolve(fallback), 'default'];
    if (saved.pack !== undefined)
      warnings.push(
        `the saved pack ${saved.pack} (${SETTINGS_FILE}) is gone (no manifest.json there); using ${packDir ?? 'the default pack'}`,
      );
  }

  // backend
  let backend: Backend | undefined;
  const envBackend = envValue('backend');
  const knownBackend = envBackend !== undefined && (BACKENDS as readonly string[]).includes(envBackend);
  if (flags.backend === undefined && envBackend !== undefined && !knownBackend)
    warnings.push(`$${STARTUP_ENV.backend}: must be one of ${BACKENDS.join(', ')} (got "${envBackend}"); ignored`);
  if (flags.backend !== undefined) [backend, from.backend] = [flags.backend, 'flag'];
  else if (knownBackend) [backend, from.backend] = [envBackend as Backend, 'env'];
  else if (saved.backend !== undefined) [backend, from.backend] = [saved.backend, 'saved'];
  else [backend, from.backend] = [o.defaultBackend, 'default'];

  // threads
  let threads: number | undefined;
  const envThreadsText = envValue('threads');
  const envThreads = envThreadsText !== undefined ? Number(envThreadsText) : undefined;
  const goodThreads =
    envThreads !== undefined && Number.isInteger(envThreads) && envThreads >= 1 && envThreads <= MAX_THREADS;
  if (flags.threads === undefined && envThreadsText !== undefined && !goodThreads)
    warnings.push(
      `$${STARTUP_ENV.threads}: must be an integer in [1, ${MAX_THREADS}] (got "${envThreadsText}"); ignored`,
    );
  if (flags.threads !== undefined) [threads, from.threads] = [flags.threads, 'flag'];
  else if (goodThreads) [threads, from.threads] = [envThreads, 'env'];
  else if (saved.threads !== undefined) [threads, from.threads] = [saved.threads, 'saved'];
  else [threads, from.threads] = [o.defaultThreads, 'default'];

  return {
    libraryDir,
    ...(packDir !== undefined ? { packDir } : {}),
    ...(backend !== undefined ? { backend } : {}),
    ...(threads !== undefined ? { threads } : {}),
    from,
    warnings,
  };
}

/** The settings file of the app data folder `env` points at (what a start reads once). */
export function readStartupSettings(env: NodeJS.ProcessEnv = process.env): {
  dataDir: string;
  settings: LoadedSettings;
} {
  const dataDir = appDataDir(env);
  return { dataDir, settings: loadSettings(dataDir) };
}

// The studio's settings file, <app data>/settings.json: library folder, chosen pack, backend,
// threads and theme. Read once per start and validated; a missing file means the defaults, a file
// that does not parse means the defaults plus a warning (it is kept as settings.json.bad the next
// time settings are saved, never silently lost). Written to a temporary file, fsynced and renamed,
// so a crash leaves the old file or the new one.

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { describeZodError } from '../engine/manifest.ts';
import { BACKENDS } from '../engine/settings.ts';
import { THEMES } from '../../preload/contract.ts';

export const SETTINGS_FILE = 'settings.json';

export const StoredSettingsSchema = z.object({
  /** The library folder (absent: the per-user default). */
  libraryDir: z.string().min(1).optional(),
  /** The pack folder chosen in the Models view (absent: the first bundled pack). */
  pack: z.string().min(1).optional(),
  backend: z.enum(BACKENDS).optional(),
  threads: z.int().min(1).max(1024).optional(),
  theme: z.enum(THEMES).default('system'),
});

export type StoredSettings = z.infer<typeof StoredSettingsSchema>;

export const DEFAULT_SETTINGS: StoredSettings = { theme: 'system' };

export interface LoadedSettings {
  settings: StoredSettings;
  /** Why the file was not used (the defaults were), in one line. */
  warning?: string;
}

export const settingsFile = (dataDir: string): string => join(dataDir, SETTINGS_FILE);

export function loadSettings(dataDir: string): LoadedSettings {
  const file = settingsFile(dataDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { settings: { ...DEFAULT_SETTINGS } };
    return { settings: { ...DEFAULT_SETTINGS }, warning: `${file}: unreadable (${code}); using the defaults` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { settings: { ...DEFAULT_SETTINGS }, warning: `${file}: not valid JSON; using the defaults` };
  }
  const parsed = StoredSettingsSchema.safeParse(json);
  if (!parsed.success)
    return {
      settings: { ...DEFAULT_SETTINGS },
      warning: `${file}: ${describeZodError(parsed.error)}; using the defaults`,
    };
  return { settings: parsed.data };
}

/**
 * Writes the settings atomically. `keepOld`: the file there did not parse, so it is copied to
 * settings.json.bad first.
 */
export function saveSettings(dataDir: string, settings: StoredSettings, { keepOld = false } = {}): void {
  mkdirSync(dataDir, { recursive: true });
  const file = settingsFile(dataDir);
  if (keepOld) {
    try {
      copyFileSync(file, `${file}.bad`);
    } catch {
      // nothing there to keep
    }
  }
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fd = openSync(tmp, 'wx');
    try {
      writeSync(fd, `${JSON.stringify(StoredSettingsSchema.parse(settings), null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

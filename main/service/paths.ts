// Where the studio keeps its data. Electron's main process sets userData to appDataDir(), so the
// desktop app, web mode and the CLI all find the same gallery by default.

import { homedir } from 'node:os';
import { join } from 'node:path';

export const APP_DIR_NAME = 'unclip-studio';

/** The per-user application data folder (what Electron calls userData). */
export function appDataDir(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (platform === 'win32') return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), APP_DIR_NAME);
  if (platform === 'darwin') return join(homedir(), 'Library', 'Application Support', APP_DIR_NAME);
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), APP_DIR_NAME);
}

/** The gallery's default folder: <app data>/library. */
export function defaultLibraryDir(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  return join(appDataDir(env, platform), 'library');
}

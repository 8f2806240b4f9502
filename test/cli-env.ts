// The environment tests spawn the CLI (or web mode) with: never the developer's own app data folder
// (settings.json: a saved library, pack, backend or threads), nor their UNCLIP_* choices.

import { join } from 'node:path';
import { STARTUP_ENV } from '../main/service/startup.ts';

/**
 * process.env with the app data folder moved under `dir` (XDG_CONFIG_HOME, APPDATA; macOS has no
 * variable for it) and $UNCLIP_LIBRARY, $UNCLIP_PACK, $UNCLIP_BACKEND, $UNCLIP_THREADS removed; `extra` on top.
 */
export function hermeticEnv(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.values(STARTUP_ENV)) delete env[name];
  return { ...env, XDG_CONFIG_HOME: join(dir, 'config'), APPDATA: join(dir, 'appdata'), ...extra };
}

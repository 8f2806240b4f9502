// The studio window: sandboxed, isolated, no Node in the page, loading only app:// (or the dev
// server while developing).

import { BrowserWindow } from 'electron';
import { join } from 'node:path';
import { APP_ENTRY_URL } from './origins.ts';

export function createStudioWindow(options: { preloadPath: string; devUrl: string | null }): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 860,
    minWidth: 720,
    minHeight: 560,
    show: false,
    title: 'unCLIP Studio',
    webPreferences: {
      preload: options.preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  void win.loadURL(options.devUrl ?? APP_ENTRY_URL);
  return win;
}

export const preloadPathFrom = (mainDir: string): string => join(mainDir, '..', 'preload', 'index.cjs');

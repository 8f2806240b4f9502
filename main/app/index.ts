// The desktop app's main process: hardening, the app:// protocol, the engine in a
// utilityProcess, the service behind the validating IPC wrapper, and the window.
// Flags: --library DIR  --pack DIR  --backend NAME  --threads N

import { app, BrowserWindow, utilityProcess } from 'electron';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BackendSchema } from '../engine/settings.ts';
import { engineArgv, type EngineConfig } from '../service/engine-slot.ts';
import { appDataDir } from '../service/paths.ts';
import { loadSettings } from '../service/settings.ts';
import { resolveStartup } from '../service/startup.ts';
import { createStudioService, type StudioService } from '../service/studio.ts';
import { createUtilityEngine } from './engine-host.ts';
import { forwardEvents, registerIpc } from './ipc.ts';
import { devOrigin } from './origins.ts';
import { defaultAppPack } from './packs.ts';
import { registerAppScheme, serveRenderer } from './protocol.ts';
import { hardenSessions } from './security.ts';
import { createStudioWindow, preloadPathFrom } from './window.ts';

// Must happen before `ready`.
app.enableSandbox();
registerAppScheme();
app.setPath('userData', appDataDir());

const mainDir = import.meta.dirname;
const devUrl = !app.isPackaged ? (process.env.ELECTRON_RENDERER_URL ?? null) : null;
const dev = devOrigin(devUrl ?? undefined);

const { values: flags } = parseArgs({
  args: process.argv.slice(app.isPackaged ? 1 : 2),
  options: {
    library: { type: 'string' },
    pack: { type: 'string' },
    backend: { type: 'string' },
    threads: { type: 'string' },
  },
  strict: false,
  allowPositionals: true,
});
const flag = (name: string): string | undefined => {
  const value = flags[name];
  return typeof value === 'string' ? value : undefined;
};

// One rule (main/service/startup.ts): the flag, else the environment variable, else the Settings and
// Models views' choices (settings.json), else the defaults.
const userData = app.getPath('userData');
const settings = loadSettings(userData);
// The default pack ships as extraResources beside app.asar (electron-builder.yml).
const modelsDir = app.isPackaged ? join(process.resourcesPath, 'models') : join(app.getAppPath(), 'models');
const backendFlag = BackendSchema.safeParse(flag('backend'));
const threadsFlag = Number(flag('threads'));
const startup = resolveStartup({
  flags: {
    library: flag('library'),
    pack: flag('pack') || undefined,
    backend: backendFlag.success ? backendFlag.data : undefined,
    threads: Number.isInteger(threadsFlag) && threadsFlag > 0 ? threadsFlag : undefined,
  },
  settings,
  defaultLibraryDir: join(userData, 'library'),
  defaultPack: () =>
    defaultAppPack(modelsDir, app.isPackaged ? null : join(app.getAppPath(), 'test', 'fixtures', 'tiny-pack')),
});
for (const w of startup.warnings) console.warn(`warning: ${w}`);
const { libraryDir, packDir, backend, threads } = startup;
const engineConfig: EngineConfig = {
  ...(packDir !== undefined ? { packDir } : {}),
  ...(backend !== undefined ? { backend } : {}),
  ...(threads !== undefined ? { threads } : {}),
};

let service: StudioService | null = null;

function openWindow(): void {
  createStudioWindow({ preloadPath: preloadPathFrom(mainDir), devUrl: dev === null ? null : devUrl });
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    const win = BrowserWindow.getAllWindows()[0];
    if (win) {
      if (win.isMinimized()) win.restore();
      win.focus();
    }
  });

  void app.whenReady().then(() => {
    hardenSessions(dev);
    const startEngine = (config: EngineConfig) =>
      createUtilityEngine({
        modulePath: join(mainDir, 'engine-process.js'),
        args: engineArgv(config),
        fork: (path, argv, options) => utilityProcess.fork(path, argv, options),
      });
    service = createStudioService({
      engine: startEngine(engineConfig),
      engineConfig,
      startEngine,
      libraryDir,
      appDir: app.getAppPath(),
      dataDir: userData,
      bundledPacksDirs: [modelsDir],
      settings,
    });
    serveRenderer(join(mainDir, '..', 'renderer'), service);
    registerIpc(service, dev);
    forwardEvents(service, () => BrowserWindow.getAllWindows());
    openWindow();
    app.on('activate', () => {
      if (BrowserWindow.getAllWindows().length === 0) openWindow();
    });
  });

  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });

  app.on('will-quit', () => {
    void service?.close();
    service = null;
  });
}

// The one place IPC enters main: every contract operation is registered through the same guarded
// handler (ipc-handler.ts: sender check + schema validation), and the service's events are
// forwarded to the studio windows. Besides the operations, the desktop has one function of its own:
// the native folder picker (folder-picker.ts).

import { BrowserWindow, dialog, ipcMain } from 'electron';
import { CHOOSE_FOLDER_CHANNEL, ipcChannel, ipcEventChannel, operationNames } from '../../preload/contract.ts';
import type { StudioService } from '../service/studio.ts';
import { createFolderPickerHandler } from './folder-picker.ts';
import { createIpcHandler } from './ipc-handler.ts';

export function registerIpc(service: StudioService, dev: string | null): () => void {
  for (const op of operationNames) ipcMain.handle(ipcChannel(op), createIpcHandler(op, service, dev));
  ipcMain.handle(
    CHOOSE_FOLDER_CHANNEL,
    createFolderPickerHandler(
      {
        showOpenDialog: (win: BrowserWindow | null, options) =>
          win ? dialog.showOpenDialog(win, options) : dialog.showOpenDialog(options),
      },
      (event: Electron.IpcMainInvokeEvent) => BrowserWindow.fromWebContents(event.sender),
      dev,
    ),
  );
  return () => {
    for (const op of operationNames) ipcMain.removeHandler(ipcChannel(op));
    ipcMain.removeHandler(CHOOSE_FOLDER_CHANNEL);
  };
}

/** Forwards the service's events to the studio windows. */
export function forwardEvents(service: StudioService, windows: () => BrowserWindow[]): () => void {
  return service.subscribe((event) => {
    for (const win of windows()) {
      if (!win.isDestroyed()) win.webContents.send(ipcEventChannel(event.name), event.payload);
    }
  });
}

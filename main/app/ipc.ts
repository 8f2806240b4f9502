// The one place IPC enters main: every contract operation is registered through this wrapper,
// which refuses senders that are not the studio's own top-level page and validates the argument
// with the contract's schema before the service sees it. Handlers answer a Reply, not a throw.

import { ipcMain, type BrowserWindow, type IpcMainInvokeEvent } from 'electron';
import {
  errorInfo,
  ipcChannel,
  ipcEventChannel,
  operationNames,
  parseArgs,
  type OperationName,
  type Reply,
} from '../../preload/contract.ts';
import type { StudioService } from '../service/studio.ts';
import { isTrustedSender } from './origins.ts';

export function registerIpc(service: StudioService, dev: string | null): () => void {
  for (const op of operationNames) {
    ipcMain.handle(ipcChannel(op), async (event: IpcMainInvokeEvent, raw: unknown): Promise<Reply<unknown>> => {
      if (!isTrustedSender(event.senderFrame, dev)) {
        console.warn(`ipc: refused ${op} from ${event.senderFrame?.url ?? 'a destroyed frame'}`);
        return { ok: false, error: { code: 'unauthorized', message: `${op}: sender is not the studio` } };
      }
      try {
        const args = parseArgs(op, raw);
        return { ok: true, value: await service.call(op as OperationName, args as never) };
      } catch (err) {
        return { ok: false, error: errorInfo(err) };
      }
    });
  }
  return () => {
    for (const op of operationNames) ipcMain.removeHandler(ipcChannel(op));
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

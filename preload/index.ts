// The bridge: window.studio gets one function per contract operation (answering a Reply), one
// on<Event> per event and chooseFolder (the native folder picker), nothing else. ipcRenderer
// itself and its event objects never reach the page. Built as one CommonJS bundle (sandboxed preloads cannot load ES modules or packages).

import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import {
  CHOOSE_FOLDER_CHANNEL,
  eventNames,
  ipcChannel,
  ipcEventChannel,
  listenerName,
  methodName,
  operationNames,
  type DesktopBridge,
  type StudioBridge,
} from './contract.ts';

const bridge: Record<string, unknown> = {};

for (const op of operationNames) {
  bridge[methodName(op)] = (args?: unknown) => ipcRenderer.invoke(ipcChannel(op), args ?? {});
}

for (const name of eventNames) {
  bridge[listenerName(name)] = (listener: (payload: unknown) => void) => {
    if (typeof listener !== 'function') throw new TypeError(`${listenerName(name)}: listener must be a function`);
    const channel = ipcEventChannel(name);
    const forward = (_event: IpcRendererEvent, payload: unknown): void => listener(payload);
    ipcRenderer.on(channel, forward);
    return () => {
      ipcRenderer.removeListener(channel, forward);
    };
  };
}

// The native folder picker (desktop only; main validates its argument).
bridge.chooseFolder = ((args) =>
  ipcRenderer.invoke(CHOOSE_FOLDER_CHANNEL, args ?? {})) satisfies DesktopBridge['chooseFolder'];

contextBridge.exposeInMainWorld('studio', bridge as unknown as StudioBridge & DesktopBridge);

/// <reference types="svelte" />
/// <reference types="vite/client" />

import type { DesktopBridge, StudioBridge } from '../preload/contract.ts';

declare global {
  interface Window {
    /** Installed by the preload script in the desktop app; absent in web mode. */
    readonly studio?: StudioBridge & DesktopBridge;
  }
}

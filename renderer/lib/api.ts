// The renderer's one way to the backend: window.studio when the desktop app's preload installed
// it, otherwise web mode's HTTP/WebSocket bridge authorised by the token from the page's URL.

import { apiFromBridge, mediaPath, unwrapReply, type MediaKind, type StudioApi } from '../../preload/contract.ts';
import type { ConnectionState } from './connection.svelte.ts';
import { createWebBridge } from './web-client.ts';

const TOKEN_KEY = 'unclip-studio.token';

/** Takes ?token= off the address bar (kept for this tab only) so it does not linger in history. */
function takeToken(): string {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url);
    return fromUrl;
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export const runsInDesktopApp = (): boolean => window.studio !== undefined;

/**
 * The URL of a library image or thumbnail: the same path on both transports (app://bundle/media/… is
 * this page's origin on the desktop); web mode's server wants the token on it, as on every request.
 */
export function mediaUrl(kind: MediaKind, id: number): string {
  const path = mediaPath(kind, id);
  return runsInDesktopApp() ? path : `${path}?token=${encodeURIComponent(sessionStorage.getItem(TOKEN_KEY) ?? '')}`;
}

export function connectStudio(connection: ConnectionState): StudioApi {
  if (window.studio) {
    connection.opened();
    return apiFromBridge(window.studio);
  }
  const token = takeToken();
  if (!token) connection.noToken();
  return apiFromBridge(createWebBridge({ origin: window.location.origin, token, link: connection }));
}

/** Opens a folder dialog and answers the folder picked (null: cancelled). */
export type FolderPicker = (title: string, defaultPath?: string) => Promise<string | null>;

/** The desktop's native folder picker; null in web mode, where folder fields are typed. */
export function folderPicker(): FolderPicker | null {
  const studio = window.studio;
  if (!studio?.chooseFolder) return null;
  return async (title, defaultPath) =>
    unwrapReply(await studio.chooseFolder({ title, ...(defaultPath ? { defaultPath } : {}) })).path;
}

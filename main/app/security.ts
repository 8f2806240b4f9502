// Process-wide hardening (electron-anchors §1): no permissions, no new windows, no navigation
// away from the studio, no <webview>.

import { app, session, shell } from 'electron';
import { isStudioUrl } from './origins.ts';

/** Opens http(s) links in the user's browser; anything else is dropped. */
function openExternally(url: string): void {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === 'https:' || parsed.protocol === 'http:') void shell.openExternal(parsed.toString());
  } catch {
    // not a URL: ignore
  }
}

export function hardenSessions(dev: string | null): void {
  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((_webContents, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);

  app.on('web-contents-created', (_event, contents) => {
    contents.setWindowOpenHandler(({ url }) => {
      openExternally(url);
      return { action: 'deny' };
    });
    contents.on('will-navigate', (event, url) => {
      if (!isStudioUrl(url, dev)) {
        event.preventDefault();
        openExternally(url);
      }
    });
    contents.on('will-frame-navigate', (event) => {
      if (!isStudioUrl(event.url, dev)) event.preventDefault();
    });
    contents.on('will-attach-webview', (event) => event.preventDefault());
  });
}

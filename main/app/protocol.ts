// app:// serves the built renderer (out/renderer) with the CSP as a response header, instead of
// file:// (which would let a page read any file), and the library's images at app://bundle/media/…
// (the same paths web mode serves). Registered as privileged before `ready`.

import { net, protocol } from 'electron';
import { pathToFileURL } from 'node:url';
import { errorInfo, parseMediaPath } from '../../preload/contract.ts';
import type { StudioService } from '../service/studio.ts';
import { resolveInside } from '../web/static-files.ts';
import { APP_HOST, APP_SCHEME, CONTENT_SECURITY_POLICY } from './origins.ts';

export function registerAppScheme(): void {
  protocol.registerSchemesAsPrivileged([
    { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
  ]);
}

export function serveRenderer(rendererDir: string, service: StudioService): void {
  protocol.handle(APP_SCHEME, async (request) => {
    const url = new URL(request.url);
    const media = url.host === APP_HOST ? parseMediaPath(url.pathname) : null;
    if (media) {
      try {
        const file = await service.media(media.kind, media.id);
        const response = await net.fetch(pathToFileURL(file.path).toString());
        const headers = new Headers({ 'content-type': file.mime, 'cache-control': 'max-age=31536000, immutable' });
        return new Response(response.body, { status: response.ok ? 200 : 404, headers });
      } catch (err) {
        return new Response(errorInfo(err).message, { status: 404 });
      }
    }
    const file = url.host === APP_HOST ? resolveInside(rendererDir, url.pathname) : null;
    if (!file) return new Response('bad request', { status: 400 });
    const response = await net.fetch(pathToFileURL(file).toString());
    if (!response.ok) return new Response('not found', { status: 404 });
    const headers = new Headers(response.headers);
    headers.set('content-security-policy', CONTENT_SECURITY_POLICY);
    headers.set('x-content-type-options', 'nosniff');
    return new Response(response.body, { status: 200, headers });
  });
}

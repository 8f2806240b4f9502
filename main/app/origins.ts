// Which pages count as the studio's own (pure helpers, no Electron, so unit tests can run them).
// Production pages come from app://bundle/…; while developing (not packaged), also the
// electron-vite dev server's URL. Nothing else may call IPC, navigate or be navigated to.

export const APP_SCHEME = 'app';
export const APP_HOST = 'bundle';
export const APP_ENTRY_URL = `${APP_SCHEME}://${APP_HOST}/index.html`;

/** The dev server's origin ("http://localhost:5173"), or null when the URL is absent/invalid. */
export function devOrigin(devUrl: string | undefined): string | null {
  if (!devUrl) return null;
  try {
    const url = new URL(devUrl);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : null;
  } catch {
    return null;
  }
}

/**
 * True when `url` belongs to the studio. Node's URL gives non-special schemes an opaque "null"
 * origin, so app:// is matched on protocol + host rather than on origin.
 */
export function isStudioUrl(url: string | null | undefined, dev: string | null = null): boolean {
  if (!url) return false;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol === `${APP_SCHEME}:` && parsed.host === APP_HOST) return true;
  return dev !== null && parsed.origin === dev;
}

/** What main accepts IPC from: a studio page in a top-level frame. */
export function isTrustedSender(frame: { url: string; parent: unknown } | null, dev: string | null): boolean {
  return frame !== null && frame.parent === null && isStudioUrl(frame.url, dev);
}

/** The CSP sent with every app:// response. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

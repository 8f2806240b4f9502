// Web mode's server: the studio's contract over HTTP + WebSocket on 127.0.0.1, plus the built
// renderer. POST /api/<operation> takes the argument as JSON (see preload/wire.ts) and answers a
// Reply; WebSocket /api/events pushes StudioEvents; GET /api/health says the server is up.
// Every /api request must carry the per-start token; the static renderer needs none.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { createReadStream } from 'node:fs';
import {
  errorInfo,
  isOperationName,
  LARGE_BODY_BYTES,
  LARGE_BODY_OPERATIONS,
  parseArgs,
  parseMediaPath,
  StudioError,
  type ErrorCode,
  type OperationName,
  type Reply,
} from '../../preload/contract.ts';
import { fromWire, toWire } from '../../preload/wire.ts';
import type { StudioService } from '../service/studio.ts';
import { serveStatic } from './static-files.ts';
import { newToken, requestToken, tokenMatches } from './token.ts';

/** Web mode listens on IPv4 loopback only. */
export const HOST = '127.0.0.1';
const MAX_BODY_BYTES = 1 << 20;

export interface WebServerOptions {
  service: StudioService;
  /** The built renderer (out/renderer). */
  staticDir: string;
  /** 0 or absent: a free port. */
  port?: number;
  /** Absent: a fresh random token. */
  token?: string;
}

export interface WebServer {
  readonly port: number;
  readonly token: string;
  /** http://127.0.0.1:PORT */
  readonly origin: string;
  /** The URL to open: origin + /?token=… */
  readonly url: string;
  close(): Promise<void>;
}

const STATUS: Record<ErrorCode, number> = {
  invalid_argument: 400,
  not_found: 404,
  conflict: 409,
  library: 500,
  unauthorized: 401,
  unknown_operation: 404,
  busy: 409,
  cancelled: 409,
  engine: 500,
  internal: 500,
};

function contentSecurityPolicy(port: number): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    `connect-src 'self' ws://${HOST}:${port} ws://localhost:${port}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function sendReply(res: ServerResponse, reply: Reply<unknown>): void {
  const status = reply.ok ? 200 : STATUS[reply.error.code];
  const body = toWire(reply);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
  });
  res.end(body);
}

const fail = (code: ErrorCode, message: string): Reply<never> => ({ ok: false, error: { code, message } });

async function readBody(req: IncomingMessage, op: OperationName): Promise<string> {
  const limit = LARGE_BODY_OPERATIONS.has(op) ? LARGE_BODY_BYTES : MAX_BODY_BYTES;
  const chunks: Buffer[] = [];
  let size = 0;
  // Past the limit the rest is read and dropped: stopping early would cut the connection, and the
  // page would see a network error instead of the reason.
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= limit) chunks.push(chunk);
    else chunks.length = 0;
  }
  if (size > limit) {
    throw new StudioError(
      'invalid_argument',
      `${op}: the request is ${(size / 2 ** 20).toFixed(1)} MiB, over web mode's ${limit / 2 ** 20} MiB limit${LARGE_BODY_OPERATIONS.has(op) ? '; send fewer or smaller files at a time' : ''}`,
    );
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function startWebServer(options: WebServerOptions): Promise<WebServer> {
  const { service, staticDir } = options;
  const token = options.token ?? newToken();
  let port = options.port ?? 0;
  const allowedHosts = (): Set<string> => new Set([`${HOST}:${port}`, `localhost:${port}`]);
  const allowedOrigins = (): Set<string> => new Set([...allowedHosts()].map((h) => `http://${h}`));

  // Refuses requests addressed to another host name (DNS rebinding). Node keeps the first of several
  // Host headers; a request with more than one is malformed (RFC 9112 §3.2) and refused whatever they say.
  const hostCount = (req: IncomingMessage): number =>
    req.rawHeaders.filter((h, k) => k % 2 === 0 && h.toLowerCase() === 'host').length;
  const hostOk = (req: IncomingMessage): boolean => hostCount(req) === 1 && allowedHosts().has(req.headers.host ?? '');

  async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!tokenMatches(token, requestToken(req, url))) {
      sendReply(res, fail('unauthorized', 'missing or wrong token: open the URL the studio printed'));
      return;
    }
    const name = url.pathname.slice('/api/'.length);
    if (name === 'health') {
      sendReply(res, { ok: true, value: { status: 'ok' } });
      return;
    }
    if (name === 'events') {
      res.writeHead(426, { 'content-type': 'text/plain; charset=utf-8', upgrade: 'websocket' });
      res.end('/api/events is a WebSocket\n');
      return;
    }
    if (!isOperationName(name)) {
      sendReply(res, fail('unknown_operation', `unknown operation: ${name}`));
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${name}: use POST\n`);
      return;
    }
    // application/json, optionally with parameters (charset); not application/json-seq and the like.
    if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
      sendReply(res, fail('invalid_argument', `${name}: content-type must be application/json`));
      return;
    }
    try {
      const text = await readBody(req, name);
      let raw: unknown;
      try {
        raw = text.trim() === '' ? {} : fromWire(text);
      } catch {
        throw new StudioError('invalid_argument', `${name}: request body is not valid JSON`);
      }
      const args = parseArgs(name, raw);
      const value = await service.call(name, args as never);
      sendReply(res, { ok: true, value });
    } catch (err) {
      sendReply(res, { ok: false, error: errorInfo(err) });
    }
  }

  /** GET /media/{image,thumb}/<id>?token=…: a library file. Its bytes never change, so it may be cached. */
  async function handleMedia(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const plain = (status: number, text: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`${text}\n`);
    };
    if (!tokenMatches(token, requestToken(req, url))) return plain(401, 'missing or wrong token');
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(405, 'method not allowed');
    const target = parseMediaPath(url.pathname);
    if (!target) return plain(404, 'not found');
    let file: { path: string; mime: string };
    try {
      file = await service.media(target.kind, target.id);
    } catch (err) {
      const info = errorInfo(err);
      return plain(STATUS[info.code], info.message);
    }
    res.writeHead(200, { 'content-type': file.mime, 'cache-control': 'private, max-age=31536000, immutable' });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file.path)
      .on('error', () => res.destroy())
      .pipe(res);
  }

  const server = createServer((req, res) => {
    if (hostCount(req) !== 1) {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('exactly one Host header, please\n');
      return;
    }
    if (!hostOk(req)) {
      res.writeHead(421, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('unexpected Host header\n');
      return;
    }
    const url = new URL(req.url ?? '/', `http://${HOST}:${port}`);
    const security = {
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'cross-origin-opener-policy': 'same-origin',
    };
    for (const [k, v] of Object.entries(security)) res.setHeader(k, v);
    if (url.pathname === '/api' || url.pathname.startsWith('/api/')) {
      handleApi(req, res, url).catch((err: unknown) => {
        if (!res.headersSent) sendReply(res, { ok: false, error: errorInfo(err) });
        else res.destroy();
      });
      return;
    }
    if (url.pathname.startsWith('/media/')) {
      handleMedia(req, res, url).catch(() => res.destroy());
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('method not allowed\n');
      return;
    }
    serveStatic(staticDir, url.pathname, res, { 'content-security-policy': contentSecurityPolicy(port) }).catch(() =>
      res.destroy(),
    );
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const refuse = (socket: Duplex, status: string): void => {
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  };
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', `http://${HOST}:${port}`);
    if (!hostOk(req)) return refuse(socket, '421 Misdirected Request');
    if (url.pathname !== '/api/events') return refuse(socket, '404 Not Found');
    if (!tokenMatches(token, requestToken(req, url))) return refuse(socket, '401 Unauthorized');
    // Browsers always send Origin on WebSocket; a foreign page must not listen in.
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedOrigins().has(origin)) return refuse(socket, '403 Forbidden');
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => wss.emit('connection', ws, req));
  });
  wss.on('connection', (ws: WebSocket) => {
    ws.on('message', () => ws.close(1003, 'events only'));
    ws.on('error', () => ws.terminate());
  });
  const unsubscribe = service.subscribe((event) => {
    const frame = toWire(event);
    for (const client of wss.clients) if (client.readyState === client.OPEN) client.send(frame);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('web server: no TCP address');
  port = address.port;
  const origin = `http://${HOST}:${port}`;

  return {
    port,
    token,
    origin,
    url: `${origin}/?token=${token}`,
    async close() {
      unsubscribe();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import sharp from 'sharp';
import type { ImportView, JobView, Reply, StudioEvent } from '../../../preload/contract.ts';
import { fromWire, toWire } from '../../../preload/wire.ts';
import { createStudioService, type StudioService } from '../../../main/service/studio.ts';
import { startWebServer, type WebServer } from '../../../main/web/server.ts';
import { createScriptedEngine } from './scripted-engine.ts';

let server: WebServer;
let service: StudioService;
let staticDir: string;
let libraryDir: string;

async function api(
  path: string,
  init: { method?: string; token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; reply: Reply<unknown> }> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== null) headers.authorization = `Bearer ${init.token ?? server.token}`;
  if (init.body !== undefined) headers['content-type'] ??= 'application/json';
  const response = await fetch(`${server.origin}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    ...(init.body !== undefined ? { body: toWire(init.body) } : {}),
  });
  return { status: response.status, reply: fromWire(await response.text()) as Reply<unknown> };
}

/** A raw request (fetch would normalise the path and refuses to set Host). */
function raw(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function openSocket(query: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api/events${query}`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

before(async () => {
  staticDir = mkdtempSync(join(tmpdir(), 'studio-static-'));
  writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>studio</title>');
  libraryDir = mkdtempSync(join(tmpdir(), 'studio-web-library-'));
  service = createStudioService({ engine: createScriptedEngine(), libraryDir });
  server = await startWebServer({ service, staticDir, port: 0 });
});

after(async () => {
  await server.close();
  await service.close();
  rmSync(staticDir, { recursive: true, force: true });
  rmSync(libraryDir, { recursive: true, force: true });
});

describe('web mode server: token', () => {
  const routes: [string, string, unknown?][] = [
    ['GET', '/api/health'],
    ['POST', '/api/engine.info', {}],
    ['POST', '/api/generate', { prompt: 'apple' }],
    ['POST', '/api/jobs.cancel', { id: 1 }],
    ['GET', '/api/events'],
    ['POST', '/api/no.such.operation', {}],
    ['GET', '/api'],
  ];

  it('refuses every /api route without a token (401)', async () => {
    for (const [method, path, body] of routes) {
      const { status, reply } = await api(path, { method, token: null, body });
      assert.equal(status, 401, `${method} ${path}`);
      assert.ok(!reply.ok && reply.error.code === 'unauthorized', `${method} ${path}`);
    }
  });

  it('refuses a wrong token (401), in the header or the query', async () => {
    assert.equal((await api('/api/health', { token: `${server.token}x` })).status, 401);
    assert.equal((await api('/api/health', { token: server.token.slice(1) })).status, 401);
    assert.equal((await api(`/api/health?token=nope`, { token: null })).status, 401);
  });

  it('accepts the token as Bearer, X-Studio-Token or ?token=', async () => {
    const bearer = await api('/api/health');
    assert.equal(bearer.status, 200);
    assert.deepEqual(bearer.reply, { ok: true, value: { status: 'ok' } });
    assert.equal((await api('/api/health', { token: null, headers: { 'x-studio-token': server.token } })).status, 200);
    assert.equal((await api(`/api/health?token=${server.token}`, { token: null })).status, 200);
  });

  it('announces a URL carrying the token', () => {
    assert.equal(server.url, `http://127.0.0.1:${server.port}/?token=${server.token}`);
    assert.ok(server.token.length >= 40);
  });
});

describe('web mode server: network exposure', () => {
  it('listens on 127.0.0.1 only (not on IPv6 loopback)', async () => {
    const reached = (host: string): Promise<boolean> =>
      new Promise((resolve) => {
        const socket = connect({ host, port: server.port });
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
    assert.ok(await reached('127.0.0.1'));
    assert.ok(!(await reached('::1')), 'reachable on ::1');
  });

  it('refuses requests for another Host name (DNS rebinding)', async () => {
    assert.equal((await raw('/', { host: `evil.example:${server.port}` })).status, 421);
    assert.equal((await raw(`/api/health?token=${server.token}`, { host: 'evil.example' })).status, 421);
    assert.equal((await raw('/', { host: `localhost:${server.port}` })).status, 200);
  });

  it('refuses a request with two Host headers, even when the first is right (400)', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1', () =>
        socket.write(
          `GET /api/health?token=${server.token} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n` +
            `Host: evil.example\r\nConnection: close\r\n\r\n`,
        ),
      );
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 400 /);
  });
});

describe('web mode server: the contract over HTTP', () => {
  it('answers engine.info', async () => {
    const { status, reply } = await api('/api/engine.info', { body: {} });
    assert.equal(status, 200);
    assert.ok(reply.ok);
    assert.equal((reply.value as { pack: { title: string } }).pack.title, 'Scripted test engine');
  });

  it('rejects bad arguments with a one-line 400', async () => {
    const { status, reply } = await api('/api/generate', { body: { prompt: '', settings: { n: 99 } } });
    assert.equal(status, 400);
    assert.ok(!reply.ok);
    assert.equal(reply.error.code, 'invalid_argument');
    assert.match(reply.error.message, /^generate: prompt: must not be empty.*; settings\.n: .*\(got 99\)$/);
  });

  it('rejects unknown operations, wrong methods, non-JSON bodies', async () => {
    assert.equal((await api('/api/gallery.drop', { body: {} })).status, 404);
    assert.equal((await raw(`/api/generate?token=${server.token}`)).status, 405);
    const textBody = await api('/api/engine.info', { body: {}, headers: { 'content-type': 'text/plain' } });
    assert.equal(textBody.status, 400);
    for (const type of ['application/json-seq', 'application/jsonx', 'text/application/json'])
      assert.equal((await api('/api/engine.info', { body: {}, headers: { 'content-type': type } })).status, 400, type);
    const charset = await api('/api/engine.info', {
      body: {},
      headers: { 'content-type': 'Application/JSON; charset=utf-8' },
    });
    assert.equal(charset.status, 200);
    const response = await fetch(`${server.origin}/api/engine.info`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
      body: '{not json',
    });
    assert.equal(response.status, 400);
    assert.match(await response.text(), /not valid JSON/);
  });

  it('answers a body over the limit with its reason, not a cut connection', async () => {
    const response = await fetch(`${server.origin}/api/generate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x'.repeat(3 * 2 ** 20) }),
    });
    assert.equal(response.status, 400);
    const reply = fromWire(await response.text()) as Reply<unknown>;
    assert.ok(!reply.ok);
    assert.equal(reply.error.message, "generate: the request is 3.0 MiB, over web mode's 1 MiB limit");
    assert.equal((await api('/api/engine.info', { body: {} })).status, 200, 'the server goes on');
  });

  it('imports the pictures of a drop and names the files it left out', async () => {
    const png = new Uint8Array(
      await sharp({ create: { width: 8, height: 8, channels: 3, background: '#208040' } })
        .png()
        .toBuffer(),
    );
    const { status, reply } = await api('/api/gallery.import', {
      body: {
        files: [
          { name: 'leaf.png', bytes: png },
          { name: 'notes.png', bytes: new TextEncoder().encode('not a picture') },
        ],
      },
    });
    assert.equal(status, 200);
    assert.ok(reply.ok);
    const value = reply.value as ImportView;
    assert.equal(value.imported.length, 1);
    assert.deepEqual(value.refused, [{ name: 'notes.png', error: 'notes.png: not a PNG, JPEG or WebP image' }]);
  });

  it('queues a generation, pushes job and progress events, and serves the images by URL', async () => {
    const ws = await openSocket(`?token=${server.token}`);
    const events: StudioEvent[] = [];
    ws.on('message', (data: Buffer) => events.push(fromWire(data.toString()) as StudioEvent));
    const { status, reply } = await api('/api/generate', { body: { prompt: 'apple', settings: { n: 2, seed: 5 } } });
    assert.equal(status, 200);
    assert.ok(reply.ok);
    const queued = reply.value as JobView;
    assert.equal(queued.status, 'queued');
    const job = await service.waitForJob(queued.id);
    assert.equal(job.imageIds.length, 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    ws.close();
    const progress = events.filter((e) => e.name === 'progress' && e.payload.jobId === queued.id);
    assert.ok(progress.length >= 5, `got ${progress.length} progress events`);
    assert.ok(events.some((e) => e.name === 'job' && e.payload.id === queued.id && e.payload.status === 'done'));
    assert.ok(events.some((e) => e.name === 'library' && e.payload.added.length === 2));

    const image = await fetch(`${server.origin}/media/image/${job.imageIds[0]}?token=${server.token}`);
    assert.equal(image.status, 200);
    assert.equal(image.headers.get('content-type'), 'image/png');
    assert.match(image.headers.get('cache-control') ?? '', /immutable/);
    assert.deepEqual([...new Uint8Array(await image.arrayBuffer()).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    const thumb = await fetch(`${server.origin}/media/thumb/${job.imageIds[0]}?token=${server.token}`);
    assert.equal(thumb.headers.get('content-type'), 'image/webp');
    assert.equal((await fetch(`${server.origin}/media/image/999?token=${server.token}`)).status, 404);
    assert.equal((await fetch(`${server.origin}/media/image/abc?token=${server.token}`)).status, 404);
    assert.equal((await fetch(`${server.origin}/media/image/${job.imageIds[0]}`)).status, 401);
  });

  it('cancels a running job', async () => {
    const { reply } = await api('/api/generate', { body: { prompt: 'apple', settings: { stepsDecoder: 500 } } });
    assert.ok(reply.ok);
    const id = (reply.value as JobView).id;
    await new Promise((resolve) => setTimeout(resolve, 60));
    const cancel = await api('/api/jobs.cancel', { body: { id } });
    assert.ok(cancel.reply.ok);
    assert.equal((await service.waitForJob(id)).status, 'cancelled');
    const again = await api('/api/jobs.cancel', { body: { id } });
    assert.equal(again.status, 409);
  });

  it('answers 404 for an unknown image', async () => {
    const { status, reply } = await api('/api/gallery.get', { body: { id: 424242 } });
    assert.equal(status, 404);
    assert.ok(!reply.ok && reply.error.code === 'not_found');
  });
});

describe('web mode server: WebSocket /api/events', () => {
  it('needs the token', async () => {
    await assert.rejects(openSocket(''), /HTTP 401/);
    await assert.rejects(openSocket('?token=wrong'), /HTTP 401/);
  });

  it('refuses a foreign Origin even with the token', async () => {
    await assert.rejects(openSocket(`?token=${server.token}`, { origin: 'https://evil.example' }), /HTTP 403/);
    const ok = await openSocket(`?token=${server.token}`, { origin: server.origin });
    ok.close();
  });
});

describe('web mode server: static renderer', () => {
  it('serves index.html with a CSP and refuses paths outside the bundle', async () => {
    const response = await fetch(`${server.origin}/`);
    assert.equal(response.status, 200);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal((await raw('/..%2f..%2fetc%2fpasswd')).status, 404);
    assert.equal((await raw('/../../etc/passwd')).status, 404);
    assert.equal((await raw('/missing.js')).status, 404);
  });
});

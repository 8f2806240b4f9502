// What the real-engine E2E files share (studio.test.ts on the tiny random pack, default-pack.test.ts on
// emoji-tiny): web mode started the way `npm run serve` starts it, the API called with the page's token,
// files dropped on the Gallery, the queue panel's texts recorded, images waited on until decoded, and the
// page-side globals the callbacks touch (these files are type-checked without the DOM library).

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Locator, Page } from 'playwright-core';
import { hermeticEnv } from '../cli-env.ts';

export const root = fileURLToPath(new URL('../../', import.meta.url));
/** The tiny random reference pack (3 steps each, 64 px). */
export const TINY_PACK = join(root, 'test', 'fixtures', 'tiny-pack');

export interface PageGlobals {
  location: { search: string };
  document: { querySelector(selector: string): { textContent: string | null } | null };
  MutationObserver: new (callback: () => void) => { observe(node: unknown, options: object): void };
  seenProgress: string[];
}
export interface DropGlobals {
  DataTransfer: new () => { items: { add(file: unknown): void } };
  File: new (parts: Uint8Array[], name: string, options: { type: string }) => unknown;
  navigator: { clipboard: { readText(): Promise<string> } };
}
interface PageImage {
  decode(): Promise<void>;
  naturalWidth: number;
  naturalHeight: number;
  src: string;
}

/** Waits for every image the locator finds to decode; their natural sizes and URLs. */
export function decodeAll(images: Locator): Promise<{ w: number; h: number; src: string }[]> {
  return images.evaluateAll((nodes) =>
    Promise.all(
      (nodes as unknown as PageImage[]).map(async (img) => {
        await img.decode();
        return { w: img.naturalWidth, h: img.naturalHeight, src: img.src };
      }),
    ),
  );
}

export interface WebModeFlags {
  /** --pack DIR; none: the default pack (models/emoji-tiny). */
  pack?: string;
  /** --threads N (default 1: the tests share the CPU with the browser). */
  threads?: number;
}

/** Starts `node main/launch.mjs --web --port 0 ...` on a library and resolves with the URL it announces. */
export function startWebMode(
  dir: string,
  onChild: (child: ChildProcess) => void,
  flags: WebModeFlags = {},
): Promise<string> {
  let serverLog = '';
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        'main/launch.mjs',
        '--web',
        '--port',
        '0',
        ...(flags.pack !== undefined ? ['--pack', flags.pack] : []),
        '--library',
        dir,
        '--threads',
        String(flags.threads ?? 1),
      ],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own app data folder beside the library (settings.json) and none of the user's UNCLIP_* choices:
        // the user's saved pack, backend or theme must not steer a test, nor a test's choices the user's studio.
        env: { ...hermeticEnv(`${dir}-config`), UNCLIP_LIBRARY: dir },
      },
    );
    onChild(child);
    const timer = setTimeout(() => reject(new Error(`web mode did not announce a URL:\n${serverLog}`)), 120_000);
    const onData = (data: Buffer): void => {
      serverLog += data.toString();
      const match = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(serverLog);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`web mode exited (code ${code}):\n${serverLog}`));
    });
  });
}

/** Stops a web-mode server (SIGTERM) and resolves once its process has exited. */
export async function stopWebMode(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** One API call with the token of web mode's URL (what the page sends); the operation's value. */
export async function api<T>(base: string, op: string, body: unknown): Promise<T> {
  const token = new URL(base).searchParams.get('token')!;
  const r = await fetch(new URL(`/api/${op}`, base), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const reply = (await r.json()) as { ok: boolean; value: T };
  assert.ok(reply.ok, `${op}: ${JSON.stringify(reply)}`);
  return reply.value;
}

/** Drops files on the Gallery (dragenter, then drop), as a file manager would. */
export async function dropFiles(page: Page, files: { name: string; type: string; bytes: Uint8Array }[]): Promise<void> {
  const transfer = await page.evaluateHandle(
    (list) => {
      const g = globalThis as unknown as DropGlobals;
      const dt = new g.DataTransfer();
      for (const f of list) dt.items.add(new g.File([new Uint8Array(f.bytes)], f.name, { type: f.type }));
      return dt;
    },
    files.map((f) => ({ name: f.name, type: f.type, bytes: [...f.bytes] })),
  );
  const gallery = '[role="region"][aria-label="Gallery"]';
  await page.dispatchEvent(gallery, 'dragenter', { dataTransfer: transfer });
  await page.dispatchEvent(gallery, 'drop', { dataTransfer: transfer });
}

/** From now on, records every text the queue panel shows (read them with queueTexts). */
export async function recordQueue(page: Page): Promise<void> {
  await page.evaluate(() => {
    const page = globalThis as unknown as PageGlobals;
    const seen: string[] = [];
    page.seenProgress = seen;
    const queue = page.document.querySelector('section[aria-labelledby="queue-title"]');
    if (!queue) throw new Error('no queue panel');
    new page.MutationObserver(() => seen.push(queue.textContent ?? '')).observe(queue, {
      childList: true,
      characterData: true,
      subtree: true,
    });
  });
}

/** Every text the queue panel showed since recordQueue. */
export function queueTexts(page: Page): Promise<string[]> {
  return page.evaluate(() => (globalThis as unknown as PageGlobals).seenProgress);
}

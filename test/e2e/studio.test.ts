// The studio in a real browser: web mode started the way `npm run serve` starts it, on a random
// port with the tiny reference pack, driven by headless Chromium through the UI's labels/roles.
// Set STUDIO_SCREENSHOT=path.png to keep a screenshot of the result.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const PACK = join(root, 'test', 'fixtures', 'tiny-pack');
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install -y chromium)`;

// What the page-side callbacks touch (this file is type-checked without the DOM library).
interface PageGlobals {
  location: { search: string };
  document: { querySelector(selector: string): { textContent: string | null } | null };
  MutationObserver: new (callback: () => void) => { observe(node: unknown, options: object): void };
  seenProgress: string[];
}
interface PageImage {
  decode(): Promise<void>;
  naturalWidth: number;
  naturalHeight: number;
  src: string;
}

let serverProcess: ChildProcess | undefined;
let browser: Browser | undefined;
let libraryDir: string;
let url: string;
let serverLog = '';

/** Starts `node main/launch.mjs --web --port 0 ...` and resolves with the URL it announces. */
function startWebMode(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['main/launch.mjs', '--web', '--port', '0', '--pack', PACK, '--library', libraryDir, '--threads', '1'],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    serverProcess = child;
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

describe('studio E2E (web mode, headless Chromium)', { skip }, () => {
  before(async () => {
    libraryDir = mkdtempSync(join(tmpdir(), 'studio-e2e-library-'));
    url = await startWebMode();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless'] });
  });

  after(async () => {
    await browser?.close();
    serverProcess?.kill('SIGTERM');
    rmSync(libraryDir, { recursive: true, force: true });
  });

  it('announces a loopback URL with a token', () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{40,}$/);
  });

  it('refuses the API without the token', async () => {
    const response = await fetch(new URL('/api/health', url));
    assert.equal(response.status, 401);
  });

  it('types a prompt, generates, shows progress and decoded images', { timeout: 240_000 }, async () => {
    assert.ok(browser);
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });

    await page.goto(url);
    // The token leaves the address bar once the client has taken it.
    await page.waitForFunction(() => !(globalThis as unknown as PageGlobals).location.search.includes('token='));

    const status = page.getByRole('status', { name: 'Engine status' });
    await status.getByText('Tiny', { exact: false }).waitFor({ timeout: 120_000 });

    // Settings start at the pack's defaults (tiny-reference: 3 steps each).
    assert.equal(await page.getByLabel('Decoder steps').inputValue(), '3');

    await page.getByLabel('Prompt').fill('a red apple on a wooden table');
    await page.getByLabel('Images', { exact: true }).fill('2');
    await page.getByLabel('Seed').fill('1234');

    // Record every progress text the page shows while it works.
    await page.evaluate(() => {
      const page = globalThis as unknown as PageGlobals;
      const seen: string[] = [];
      page.seenProgress = seen;
      const detail = page.document.querySelector('[data-testid="progress-detail"]');
      if (!detail) throw new Error('no progress detail element');
      new page.MutationObserver(() => seen.push(detail.textContent ?? '')).observe(detail, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });

    const generate = page.getByRole('button', { name: 'Generate' });
    assert.ok(await generate.isEnabled());
    await generate.click();

    const grid = page.getByRole('list', { name: 'Generated images' });
    const images = grid.getByRole('img');
    await images.nth(1).waitFor({ timeout: 180_000 });
    assert.equal(await images.count(), 2);

    const decoded = await images.evaluateAll((nodes) =>
      Promise.all(
        (nodes as unknown as PageImage[]).map(async (img) => {
          await img.decode();
          return { w: img.naturalWidth, h: img.naturalHeight, src: img.src };
        }),
      ),
    );
    for (const image of decoded) {
      assert.ok(image.w > 0 && image.h > 0, `image not decoded: ${JSON.stringify(image)}`);
      assert.match(image.src, /\/media\/image\/\d+\?token=/);
    }
    assert.equal(decoded[0]?.w, 64, 'tiny-reference output is 64 px');

    // Seeds under each image: 1234 and 1235.
    assert.ok(await grid.getByText('seed 1234').isVisible());
    assert.ok(await grid.getByText('seed 1235').isVisible());

    const seen = await page.evaluate(() => (globalThis as unknown as PageGlobals).seenProgress);
    assert.ok(
      seen.some((text) => /step \d+\/\d+ .*ETA/.test(text)),
      `no progress shown: ${JSON.stringify(seen)}`,
    );
    assert.match(await page.getByTestId('progress-detail').innerText(), /step \d+\/\d+/);
    assert.ok(await generate.isEnabled(), 'Generate is enabled again');
    assert.ok(await page.getByRole('button', { name: 'Cancel' }).isDisabled());

    if (process.env.STUDIO_SCREENSHOT) await page.screenshot({ path: process.env.STUDIO_SCREENSHOT, fullPage: true });
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('opens the About box with the pack’s name and notices, and closes it', { timeout: 60_000 }, async () => {
    assert.ok(browser);
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    await page.goto(url);

    const about = page.getByRole('dialog', { name: 'About unCLIP Studio' });
    await page.getByRole('button', { name: 'About' }).click();
    await about.getByText('tiny-reference', { exact: true }).waitFor({ timeout: 30_000 });
    // The tiny pack ships NOTICE.md; the app's own notices follow.
    await about.getByRole('heading', { name: 'NOTICE.md' }).waitFor();
    assert.match(await about.getByRole('article', { name: 'NOTICE.md' }).locator('pre').innerText(), /^# Notices/);
    assert.ok(await about.getByRole('heading', { name: 'THIRD_PARTY_NOTICES.md' }).isVisible());

    await page.keyboard.press('Escape');
    await about.waitFor({ state: 'hidden' });

    await page.getByRole('button', { name: 'About' }).click();
    await about.getByRole('button', { name: 'Close' }).click();
    await about.waitFor({ state: 'hidden' });
    assert.deepEqual(problems, []);
    await page.close();
  });
});

// The studio in a real browser: web mode started the way `npm run serve` starts it, on a random
// port with the tiny reference pack, driven by headless Chromium through the UI's labels/roles.
// Set STUDIO_SCREENSHOTS=DIR to keep screenshots of the views it goes through.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';

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

/** Waits for every image the locator finds to decode; their natural sizes and URLs. */
function decodeAll(images: Locator): Promise<{ w: number; h: number; src: string }[]> {
  return images.evaluateAll((nodes) =>
    Promise.all(
      (nodes as unknown as PageImage[]).map(async (img) => {
        await img.decode();
        return { w: img.naturalWidth, h: img.naturalHeight, src: img.src };
      }),
    ),
  );
}

async function shot(page: Page, name: string): Promise<void> {
  const dir = process.env.STUDIO_SCREENSHOTS;
  if (dir) await page.screenshot({ path: join(dir, name), fullPage: true });
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
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, UNCLIP_LIBRARY: libraryDir } },
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

  it(
    'queues a generation, shows its images, finds them in the Gallery, opens one and varies it',
    { timeout: 300_000 },
    async () => {
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

      const prompt = 'a red apple on a wooden table';
      await page.getByLabel('Prompt').fill(prompt);
      await page.getByLabel('Images', { exact: true }).fill('2');
      // Typing a seed locks it (otherwise each run takes a new one).
      await page.getByLabel('Seed', { exact: true }).fill('1234');
      assert.ok(await page.getByLabel('Lock seed', { exact: false }).isChecked());

      // Record every text the queue panel shows while the job runs.
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

      const generate = page.getByRole('button', { name: 'Generate', exact: true });
      await generate.click();
      // Queuing answers at once: the button stays usable while the job runs.
      assert.ok(await generate.isEnabled(), 'Generate stays enabled while a job runs');

      const results = page.getByRole('list', { name: 'Generated images' });
      const resultImages = results.locator('img');
      await resultImages.nth(1).waitFor({ timeout: 180_000 });
      assert.equal(await resultImages.count(), 2);
      for (const image of await decodeAll(resultImages)) {
        assert.ok(image.w > 0 && image.h > 0, `result not decoded: ${JSON.stringify(image)}`);
        assert.match(image.src, /\/media\/thumb\/\d+\?token=/);
      }
      // Seeds under each image: 1234 and 1235.
      assert.ok(await results.getByText('seed 1234').isVisible());
      assert.ok(await results.getByText('seed 1235').isVisible());

      const seen = await page.evaluate(() => (globalThis as unknown as PageGlobals).seenProgress);
      assert.ok(
        seen.some((text) => /Generate.*step \d+\/\d+ .*ETA/.test(text)),
        `the queue showed no progress: ${JSON.stringify(seen.slice(-5))}`,
      );
      await shot(page, 'create.png');

      // The Gallery: both images, newest first, as thumbnails from the library.
      await page.getByRole('tab', { name: 'Gallery' }).click();
      const tiles = page.getByRole('list', { name: 'Gallery images' }).getByRole('listitem');
      await tiles.nth(1).waitFor({ timeout: 30_000 });
      assert.equal(await tiles.count(), 2);
      for (const image of await decodeAll(tiles.locator('img'))) {
        assert.ok(image.w > 0 && image.h > 0, `thumbnail not decoded: ${JSON.stringify(image)}`);
        assert.match(image.src, /\/media\/thumb\/\d+\?token=/);
      }

      // The older of the two (seed 1234) opens in the detail panel.
      await tiles
        .nth(1)
        .getByRole('button', { name: /^Open image \d+/ })
        .click();
      const detail = page.getByRole('complementary', { name: /^Image \d+$/ });
      await detail.getByTestId('detail-seed').waitFor({ timeout: 30_000 });
      assert.equal(await detail.getByTestId('detail-prompt').innerText(), prompt);
      assert.equal(await detail.getByTestId('detail-seed').innerText(), '1234');
      const sourceName = await detail.getByRole('heading', { level: 2 }).innerText();
      const sourceId = Number(/\d+/.exec(sourceName)?.[0]);
      assert.ok(await detail.getByText('A root', { exact: false }).isVisible());
      const [large] = await decodeAll(detail.locator('img').first());
      assert.match(large?.src ?? '', new RegExp(`/media/image/${sourceId}\\?token=`));
      await shot(page, 'gallery.png');

      // A variation: four new images, each a child of the source.
      await detail.getByRole('button', { name: /^Vary/ }).click();
      await detail.getByRole('status').getByText('queued', { exact: false }).waitFor();
      await tiles.nth(5).waitFor({ timeout: 180_000 });
      const children = detail.getByRole('list', { name: 'Children' }).getByRole('listitem');
      await children.nth(3).waitFor({ timeout: 30_000 });
      assert.equal(await children.count(), 4);
      for (const image of await decodeAll(tiles.locator('img'))) assert.ok(image.w > 0, 'variation thumbnail decodes');

      // Walk down to a child: its detail names the source as its parent.
      await children.first().getByRole('button').click();
      const parents = detail.getByRole('list', { name: 'Parents' });
      await parents.waitFor({ timeout: 30_000 });
      assert.match(await parents.innerText(), new RegExp(`Image ${sourceId} \\(vary\\)`));
      assert.equal(await detail.getByText('Variation', { exact: true }).count(), 1);
      await shot(page, 'gallery-variation.png');

      assert.deepEqual(problems, []);
      await page.close();
    },
  );

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

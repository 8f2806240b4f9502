// The studio in a real browser: web mode started the way `npm run serve` starts it, on a random
// port with the tiny reference pack, driven by headless Chromium through the UI's labels/roles.
// Set STUDIO_SCREENSHOTS=DIR to keep screenshots of the views it goes through.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { CHROMIUM, shots as viewShots, skip } from './browser.ts';
import {
  api,
  decodeAll,
  dropFiles,
  queueTexts,
  recordQueue,
  startWebMode as startServer,
  stopWebMode,
  TINY_PACK,
  type DropGlobals,
  type PageGlobals,
} from './studio-server.ts';

/** Screenshots of a gallery view: the grid lays itself out again (a ResizeObserver) before anything reads its columns. */
const shots = (page: Page, name: string): Promise<void> => viewShots(page, name, 300);

let serverProcess: ChildProcess | undefined;
let browser: Browser | undefined;
let libraryDir: string;
let url: string;

/** Web mode on a library, with the tiny pack. */
const startWebMode = (dir: string, onChild: (child: ChildProcess) => void): Promise<string> =>
  startServer(dir, onChild, { pack: TINY_PACK });

describe('studio E2E (web mode, headless Chromium)', { skip }, () => {
  before(async () => {
    libraryDir = mkdtempSync(join(tmpdir(), 'studio-e2e-library-'));
    url = await startWebMode(libraryDir, (child) => (serverProcess = child));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless'] });
  });

  after(async () => {
    await browser?.close();
    serverProcess?.kill('SIGTERM');
    rmSync(libraryDir, { recursive: true, force: true });
    rmSync(`${libraryDir}-config`, { recursive: true, force: true });
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

      // A new library: the Gallery says what to do and leads back to Create.
      await page.getByRole('tab', { name: 'Gallery' }).click();
      const empty = page.getByTestId('gallery-empty');
      await empty.getByText('The gallery is empty.', { exact: false }).waitFor({ timeout: 30_000 });
      await empty.getByRole('button', { name: 'Make images in Create' }).click();
      assert.equal(await page.getByRole('tab', { name: 'Create' }).getAttribute('aria-selected'), 'true');
      await page.waitForFunction(
        () =>
          (globalThis as unknown as { document: { activeElement: { id: string } | null } }).document.activeElement
            ?.id === 'create-prompt',
      );

      // Settings start at the pack's defaults (tiny-reference: 3 steps each).
      assert.equal(await page.getByLabel('Decoder steps').inputValue(), '3');

      const prompt = 'a red apple on a wooden table';
      await page.getByLabel('Prompt').fill(prompt);
      await page.getByLabel('Images', { exact: true }).fill('2');
      // Typing a seed locks it (otherwise each run takes a new one).
      await page.getByLabel('Seed', { exact: true }).fill('1234');
      assert.ok(await page.getByLabel('Lock seed', { exact: false }).isChecked());

      // Record every text the queue panel shows while the job runs.
      await recordQueue(page);

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

      const seen = await queueTexts(page);
      assert.ok(
        seen.some((text) => /Generate.*step \d+\/\d+ .*ETA/.test(text)),
        `the queue showed no progress: ${JSON.stringify(seen.slice(-5))}`,
      );
      await shots(page, 'create');

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
      await shots(page, 'gallery-detail');

      // A variation: four new images, each a child of the source.
      await detail.getByRole('button', { name: /^Vary/ }).click();
      await page.getByTestId('gallery-message').getByText('queued', { exact: false }).waitFor();
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
      // The selection (the source) followed the walk to the child.
      const childName = await detail.getByRole('heading', { level: 2 }).innerText();
      const childId = Number(/\d+/.exec(childName)?.[0]);
      assert.match(
        (await page.getByRole('button', { name: new RegExp(`^Open image ${childId}:`) }).getAttribute('aria-label')) ??
          '',
        /\(selected\)$/,
      );
      await shots(page, 'gallery-lineage');

      assert.deepEqual(problems, []);
      await page.close();
    },
  );

  it(
    'filters, sorts and searches; selects (click, ctrl, shift, all) and stars, boards, trashes, restores and empties the trash; imports a dropped PNG; exports; uses an image’s settings',
    { timeout: 300_000 },
    async () => {
      assert.ok(browser);
      const context = await browser.newContext({
        viewport: { width: 1280, height: 800 },
        permissions: ['clipboard-read', 'clipboard-write'],
      });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
      });
      await page.goto(url);
      await page
        .getByRole('status', { name: 'Engine status' })
        .getByText('Tiny', { exact: false })
        .waitFor({ timeout: 120_000 });
      // Typed in Create before going to the gallery: "use these settings" must ask before replacing it.
      await page.getByLabel('Prompt').fill('my own typed prompt');
      await page.getByRole('tab', { name: 'Gallery' }).click();

      const summary = page.getByTestId('gallery-summary');
      const grid = page.getByRole('list', { name: 'Gallery images' });
      const tiles = grid.getByRole('listitem');
      const thumb = (i: number): Locator => grid.locator(`li[data-index="${i}"] button.thumb`);
      const idAt = async (i: number): Promise<number> =>
        Number(/^Open image (\d+)/.exec((await thumb(i).getAttribute('aria-label')) ?? '')?.[1]);
      const says = async (text: string | RegExp): Promise<void> => {
        const matches = (t: string): boolean => (typeof text === 'string' ? t.includes(text) : text.test(t));
        let now = '';
        for (const until = Date.now() + 30_000; Date.now() < until; await page.waitForTimeout(50)) {
          now = (await summary.innerText()).trim();
          if (matches(now)) return;
        }
        throw new Error(`the summary never said ${String(text)}: it says “${now}”`);
      };
      const message = page.getByTestId('gallery-message');

      await says(/^6 images$/);
      assert.equal(await tiles.count(), 6);
      const ids = await Promise.all([0, 1, 2, 3, 4, 5].map(idAt));
      assert.deepEqual(
        [...ids].sort((a, b) => b - a),
        ids,
        'newest first',
      );

      // Kind: the four variations, the two generated images, then both kinds at once.
      const kind = page.getByRole('group', { name: 'Filters' }).getByRole('group', { name: 'Kind' });
      await kind.getByLabel('Variations').check();
      await says('4 images (filtered)');
      await kind.getByLabel('Variations').uncheck();
      await kind.getByLabel('Generated').check();
      await says('2 images (filtered)');
      assert.deepEqual(await Promise.all([0, 1].map(idAt)), ids.slice(4));
      await kind.getByLabel('Variations').check();
      await says('6 images (filtered)');
      await kind.getByLabel('Variations').uncheck();
      await kind.getByLabel('Generated').uncheck();
      await says(/^6 images$/);

      // Sort: oldest first reverses the grid.
      await page.getByLabel('Sort').selectOption('oldest');
      await grid.locator(`li[data-index="0"] button.thumb[aria-label^="Open image ${ids[5]}:"]`).waitFor();
      await page.getByLabel('Sort').selectOption('newest');

      // Dates: nothing made before today; everything from today on.
      const day = (offset: number): string => {
        const d = new Date(Date.now() + offset * 86_400_000);
        return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
      };
      await page.getByLabel('To', { exact: true }).fill(day(-1));
      await page.getByTestId('gallery-empty').getByText('No image matches these filters.').waitFor();
      await page.getByTestId('gallery-empty').getByRole('button', { name: 'Clear filters' }).click();
      await says(/^6 images$/);
      await page.getByLabel('From', { exact: true }).fill(day(0));
      await says('6 images (filtered)');
      // Pack: the tiny pack made all of them.
      const pack = page.getByLabel('Pack');
      const packOption = await pack.locator('option', { hasText: 'tiny-reference' }).getAttribute('value');
      await pack.selectOption(packOption ?? '');
      await says('6 images (filtered)');
      await page.getByRole('group', { name: 'Filters' }).getByRole('button', { name: 'Clear filters' }).click();
      await says(/^6 images$/);

      // Words: the prompt matches, another word does not.
      await page.getByLabel('Search prompts').fill('apple');
      await page.getByRole('button', { name: 'Search', exact: true }).click();
      await says(/^6 matching “apple”/);
      await page.getByLabel('Search prompts').fill('zebra');
      await page.getByRole('button', { name: 'Search', exact: true }).click();
      await page.getByTestId('gallery-empty').getByText('Nothing matches', { exact: false }).waitFor();
      await page.getByRole('button', { name: 'Clear', exact: true }).click();
      await says(/^6 images$/);

      // More like this: ranked by CLIP closeness to one image (the others, with scores).
      await grid.getByRole('button', { name: `More like image ${ids[5]}` }).click();
      await says(new RegExp(`^5 closest to image ${ids[5]}`));
      await summary.getByRole('button', { name: 'Show all' }).click();
      await says(/^6 images$/);

      // Selection: a click, a ctrl-click, a shift-click range, then all.
      const selection = page.getByRole('toolbar', { name: 'Selected images' });
      const selected = selection.getByTestId('selection-count');
      await thumb(0).click();
      assert.equal(await selected.innerText(), '1 selected');
      await thumb(2).click({ modifiers: ['Control'] });
      assert.equal(await selected.innerText(), '2 selected');
      await thumb(4).click({ modifiers: ['Shift'] });
      assert.equal(await selected.innerText(), '3 selected', 'range 2..4 from the ctrl-clicked anchor');
      assert.match((await thumb(3).getAttribute('aria-label')) ?? '', /\(selected\)$/);
      assert.doesNotMatch((await thumb(0).getAttribute('aria-label')) ?? '', /\(selected\)$/);
      await selection.getByRole('button', { name: 'Select all shown' }).click();
      assert.equal(await selected.innerText(), '6 selected');

      // Star all six, see them under Starred, unstar them.
      await selection.getByRole('button', { name: 'Star', exact: true }).click();
      await message.getByText('Starred 6 images.').waitFor();
      await page.getByLabel('Starred', { exact: true }).check();
      await says('6 images (filtered)');
      await selection.getByRole('button', { name: 'Unstar' }).click();
      await page.getByTestId('gallery-empty').getByText('No image matches these filters.').waitFor();
      await page.getByLabel('Starred', { exact: true }).uncheck();
      await says(/^6 images$/);
      // S on a tile of the selection stars (then unstars) the whole selection.
      assert.equal(await selected.innerText(), '6 selected');
      await thumb(0).focus();
      await page.keyboard.press('s');
      await message.getByText('Starred 6 images.').waitFor();
      await grid.locator(`button[aria-label="Star image ${ids[5]}"][aria-pressed="true"]`).waitFor();
      await page.keyboard.press('s');
      await message.getByText('Unstarred 6 images.').waitFor();
      await grid.locator(`button[aria-label="Star image ${ids[5]}"][aria-pressed="false"]`).waitFor();
      await shots(page, 'gallery-selection');

      // Boards: make one, put two images on it, narrow the grid to it, rename, take one off, delete.
      const library = page.getByRole('navigation', { name: 'Library' });
      await library.getByRole('button', { name: 'New board' }).click();
      await library.getByLabel('Board name').fill('Picks');
      await library.getByRole('button', { name: 'Create' }).click();
      await library.getByRole('button', { name: /^Picks/ }).waitFor();
      await thumb(0).click();
      await thumb(1).click({ modifiers: ['Control'] });
      await selection.getByLabel('Add the selected images to a board').selectOption({ label: 'Picks' });
      await message.getByText('Added 2 images to “Picks”.').waitFor();
      await library.getByRole('button', { name: 'Picks 2 images' }).waitFor();
      // Its cover is one of its images.
      const [cover] = await decodeAll(library.getByRole('button', { name: 'Picks 2 images' }).locator('img'));
      assert.match(cover?.src ?? '', new RegExp(`/media/thumb/(${ids[0]}|${ids[1]})\\?token=`));
      // The details of the image clicked first list the board it is on now.
      await page
        .getByRole('complementary', { name: `Image ${ids[0]}` })
        .getByTestId('detail-boards')
        .getByRole('button', { name: 'Show board Picks' })
        .waitFor({ timeout: 30_000 });
      await library.getByRole('button', { name: /^Picks/ }).click();
      await says('2 images on “Picks”');
      await shots(page, 'gallery-board');
      assert.deepEqual(await Promise.all([0, 1].map(idAt)), ids.slice(0, 2));
      await library.getByRole('button', { name: 'Rename board Picks' }).click();
      await library.getByLabel('New name for Picks').fill('Favourites');
      await library.getByRole('button', { name: 'Save' }).click();
      await says('2 images on “Favourites”');
      await thumb(1).click();
      await selection.getByRole('button', { name: 'Remove from “Favourites”' }).click();
      await says('1 image on “Favourites”');
      await library.getByRole('button', { name: 'Favourites 1 images' }).waitFor();
      await library.getByRole('button', { name: 'Delete board Favourites' }).click();
      const deleteBoard = page.getByRole('dialog', { name: 'Delete the board “Favourites”?' });
      await deleteBoard.getByRole('button', { name: 'Delete board' }).click();
      await says(/^6 images$/);
      assert.equal(await library.getByRole('button', { name: /^Favourites/ }).count(), 0);
      assert.ok(await library.getByText('No boards yet', { exact: false }).isVisible());

      // At 800×600 the details lie over the grid; while several images are selected they step aside so
      // that the selection's bar is reachable (nothing lies over its buttons).
      await page.setViewportSize({ width: 800, height: 600 });
      await thumb(0).click();
      const drawer = page.getByRole('complementary', { name: /^Image \d+$/ });
      await drawer.waitFor();
      await thumb(1).click({ modifiers: ['Control'] });
      await drawer.waitFor({ state: 'hidden' });
      const trashButton = selection.getByRole('button', { name: 'Move to trash' });
      const box = await trashButton.boundingBox();
      assert.ok(box);
      const onTop = await page.evaluate(
        ([x, y]) =>
          (
            globalThis as unknown as {
              document: { elementFromPoint(x: number, y: number): { getAttribute(n: string): string | null } | null };
            }
          ).document
            .elementFromPoint(x!, y!)
            ?.getAttribute('aria-label') ?? null,
        [box.x + box.width / 2, box.y + box.height / 2],
      );
      assert.equal(onTop, 'Move to trash');
      await selection.getByRole('button', { name: 'Clear selection' }).click();
      await page.setViewportSize({ width: 1280, height: 800 });

      // Trash two, restore one from the trash view, then empty the trash (asked first; "Keep" keeps).
      await thumb(2).click();
      await thumb(3).click({ modifiers: ['Shift'] });
      await selection.getByRole('button', { name: 'Move to trash' }).click();
      await says(/^4 images$/);
      // The sidebar counts follow.
      await library.getByRole('button', { name: 'All images 4 images' }).waitFor();
      await library.getByRole('button', { name: 'Trash 2 images' }).waitFor();
      await library.getByRole('button', { name: 'Trash' }).click();
      await says('2 images in the trash');
      await thumb(0).click();
      await selection.getByRole('button', { name: 'Restore' }).click();
      await says('1 image in the trash');
      await page.getByRole('button', { name: 'Empty trash…' }).click();
      const confirmEmpty = page.getByRole('dialog', { name: 'Empty the trash?' });
      await confirmEmpty.getByText('1 image and its file will be deleted', { exact: false }).waitFor();
      await shots(page, 'gallery-empty-trash');
      await confirmEmpty.getByRole('button', { name: 'Keep it' }).click();
      await confirmEmpty.waitFor({ state: 'hidden' });
      await says('1 image in the trash');
      // Delete the selected image of the trash for good (its own question).
      await thumb(0).click();
      await selection.getByRole('button', { name: 'Delete forever…' }).click();
      const confirmPurge = page.getByRole('dialog', { name: 'Delete the selected images forever?' });
      await confirmPurge.getByText('1 image and its file will be deleted', { exact: false }).waitFor();
      await confirmPurge.getByRole('button', { name: 'Delete forever' }).click();
      await page.getByTestId('gallery-empty').getByText('The trash is empty.', { exact: false }).waitFor();
      await shots(page, 'gallery-trash-empty');
      await library.getByRole('button', { name: 'All images' }).click();
      await says(/^5 images$/);

      // Drop a PNG that carries A1111 parameters: imported with its prompt, its encoding job shown.
      const { embedPngMetadata } = await import('../../main/library/png-metadata.ts');
      const { default: sharp } = await import('sharp');
      const plain = await sharp({
        create: { width: 16, height: 16, channels: 3, background: { r: 10, g: 90, b: 200 } },
      })
        .png()
        .toBuffer();
      const dropped = embedPngMetadata(new Uint8Array(plain), {
        parameters: 'a blue square in the rain\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 16x16',
      });
      await dropFiles(page, [{ name: 'blue.png', type: 'image/png', bytes: dropped }]);
      await message.getByText('Imported 1 image', { exact: false }).waitFor({ timeout: 30_000 });
      assert.match(await page.getByTestId('import-jobs').innerText(), /Import job \d+/);
      await says(/^6 images$/);
      // The summary can say 6 before the grid has drawn the new first tile: wait for the tile itself.
      await grid
        .locator('li[data-index="0"]')
        .getByRole('button', { name: /^Open image \d+: a blue square in the rain$/ })
        .waitFor();
      assert.equal(await grid.locator('li[data-index="0"] .kind').innerText(), 'import');

      // A file that is not a picture is refused with a message that says what can be imported.
      await dropFiles(page, [{ name: 'notes.txt', type: 'text/plain', bytes: new Uint8Array([104, 105]) }]);
      await message.getByText('Only PNG, JPEG and WebP pictures can be imported.').waitFor();
      await says(/^6 images$/);

      // Export the selection into a folder: the PNG is written there.
      const exportDir = mkdtempSync(join(tmpdir(), 'studio-e2e-export-'));
      try {
        await thumb(0).click();
        await selection.getByRole('button', { name: 'Export…' }).click();
        const exportDialog = page.getByRole('dialog', { name: 'Export 1 image' });
        await exportDialog.getByLabel('Folder on this computer', { exact: false }).fill(exportDir);
        await exportDialog.getByRole('button', { name: 'Export' }).click();
        await message.getByText(/^Exported 1 image to /).waitFor({ timeout: 30_000 });
        await exportDialog.waitFor({ state: 'hidden' });
        assert.ok(
          readdirSync(exportDir).some((f) => f.endsWith('.png')),
          `no PNG in ${readdirSync(exportDir).join(', ')}`,
        );
      } finally {
        rmSync(exportDir, { recursive: true, force: true });
      }

      // Use these settings: asks first because of the typed prompt; "Keep" keeps it, "Replace" fills Create.
      const seedImage = ids[5]!;
      await grid.getByRole('button', { name: new RegExp(`^Open image ${seedImage}:`) }).click();
      const detail = page.getByRole('complementary', { name: `Image ${seedImage}` });
      await detail.getByTestId('detail-seed').waitFor();
      await detail.getByRole('button', { name: 'Copy prompt' }).click();
      await detail.getByText('Prompt copied.').waitFor();
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as DropGlobals).navigator.clipboard.readText()),
        'a red apple on a wooden table',
      );
      await detail.getByRole('button', { name: 'Use these settings' }).click();
      const replace = page.getByRole('dialog', { name: 'Replace the prompt you typed?' });
      await replace.getByText('my own typed prompt', { exact: false }).waitFor();
      await shots(page, 'use-settings-confirm');
      await replace.getByRole('button', { name: 'Keep my prompt' }).click();
      await replace.waitFor({ state: 'hidden' });
      assert.equal(await page.getByRole('tab', { name: 'Gallery' }).getAttribute('aria-selected'), 'true');
      await detail.getByRole('button', { name: 'Use these settings' }).click();
      await replace.getByRole('button', { name: 'Replace it' }).click();
      await page.getByLabel('Prompt').waitFor();
      assert.equal(await page.getByRole('tab', { name: 'Create' }).getAttribute('aria-selected'), 'true');
      assert.equal(await page.getByLabel('Prompt').inputValue(), 'a red apple on a wooden table');
      assert.equal(await page.getByLabel('Seed', { exact: true }).inputValue(), '1234');
      assert.ok(await page.getByLabel('Lock seed', { exact: false }).isChecked());
      assert.equal(await page.getByLabel('Decoder steps').inputValue(), '3');
      await page.getByText(`Filled in from image ${seedImage}`, { exact: false }).waitFor();

      assert.deepEqual(problems, []);
      await context.close();
    },
  );

  it('at 800×600 shows the Generate button without scrolling', { timeout: 60_000 }, async () => {
    assert.ok(browser);
    const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
    await page.goto(url);
    await page
      .getByRole('status', { name: 'Engine status' })
      .getByText('Tiny', { exact: false })
      .waitFor({ timeout: 60_000 });
    const generate = page.getByRole('button', { name: 'Generate', exact: true });
    const box = await generate.boundingBox();
    assert.ok(box, 'Generate is laid out');
    assert.ok(box.y >= 0 && box.y + box.height <= 600, `Generate at y ${box.y}..${box.y + box.height} of 600`);
    // Nothing lies over it: the point in its middle is the button.
    const hit = await page.evaluate(
      ([x, y]) =>
        (
          globalThis as unknown as {
            document: { elementFromPoint(x: number, y: number): { textContent: string | null } | null };
          }
        ).document
          .elementFromPoint(x!, y!)
          ?.textContent?.trim() ?? null,
      [box.x + box.width / 2, box.y + box.height / 2],
    );
    assert.equal(hit, 'Generate');
    await shots(page, 'create-800');

    // The Gallery at this height keeps its filter row folded (more room for the grid) until asked.
    await page.getByRole('tab', { name: 'Gallery' }).click();
    const toggle = page.getByRole('button', { name: /^Filters/ });
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.equal(await page.getByRole('group', { name: 'Filters' }).count(), 0);
    await toggle.click();
    await page.getByRole('group', { name: 'Kind' }).getByLabel('Variations').check();
    await page.getByTestId('gallery-summary').getByText('(filtered)', { exact: false }).waitFor();
    await toggle.click();
    assert.equal(
      await page.getByRole('button', { name: 'Filters (1)' }).count(),
      1,
      'the folded row counts its filters',
    );
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
    // The tiny pack ships NOTICE.md; the app's own notices follow, each folded, Markdown rendered (not shown raw).
    const notice = about.getByRole('group', { name: 'NOTICE.md' });
    await notice.getByText('NOTICE.md', { exact: true }).click();
    await notice.getByText('Notices for this model pack', { exact: true }).waitFor();
    assert.doesNotMatch(await notice.innerText(), /^# /m, 'no raw Markdown heading marks');
    assert.ok(await about.getByRole('group', { name: 'THIRD_PARTY_NOTICES.md' }).isVisible());

    await page.keyboard.press('Escape');
    await about.waitFor({ state: 'hidden' });

    // A click on the backdrop closes it too.
    await page.getByRole('button', { name: 'About' }).click();
    await about.waitFor();
    await page.mouse.click(5, 400);
    await about.waitFor({ state: 'hidden' });

    await page.getByRole('button', { name: 'About' }).click();
    await about.getByRole('button', { name: 'Close' }).click();
    await about.waitFor({ state: 'hidden' });
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('after a restart of the server every image and its lineage are still there', { timeout: 180_000 }, async () => {
    assert.ok(browser);
    const before = await api<{ items: { id: number; kind: string }[] }>(url, 'gallery.list', { limit: 200 });
    const child = before.items.find((i) => i.kind !== 'generated' && i.kind !== 'import');
    assert.ok(before.items.length > 0 && child, 'the earlier tests left images and an edit');
    const lineage = await api<{ parents: { id: number }[] }>(url, 'gallery.get', { id: child.id });
    assert.ok(lineage.parents.length > 0);

    await stopWebMode(serverProcess);
    url = await startWebMode(libraryDir, (c) => (serverProcess = c));

    const after = await api<{ items: { id: number }[] }>(url, 'gallery.list', { limit: 200 });
    assert.deepEqual(
      after.items.map((i) => i.id),
      before.items.map((i) => i.id),
    );
    assert.deepEqual(
      (await api<{ parents: { id: number }[] }>(url, 'gallery.get', { id: child.id })).parents,
      lineage.parents,
    );
    // And in the studio: the gallery counts them, the edit shows its parent.
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(url);
    await page.getByRole('tab', { name: 'Gallery' }).click();
    await page.getByTestId('gallery-summary').getByText(`${after.items.length} images`, { exact: false }).waitFor();
    await page.getByRole('button', { name: new RegExp(`^Open image ${child.id}\\b`) }).click();
    await page
      .getByRole('complementary')
      .getByText(`Image ${lineage.parents[0]!.id}`, { exact: false })
      .first()
      .waitFor();
    await page.close();
  });
});

// ---------------------------------------------------------------------------------------------
// The gallery over a library of 100,000 rows (bulk-inserted, every row sharing one tiny file), in
// its own web-mode server: the grid stays small in the DOM, paints fast, and shows the right image
// at any index it is scrolled to (keyset pages, and counted jumps for a dragged scrollbar).

const BIG_N = 100_000;

/** Builds the big library: image ids 1..N, two images per minute (ties in created_at), every 7th starred. */
async function buildBigLibrary(dir: string): Promise<void> {
  const { Library } = await import('../../main/library/library.ts');
  const { default: sharp } = await import('sharp');
  const lib = Library.open(dir);
  try {
    const png = new Uint8Array(
      await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 120, b: 40 } } })
        .png()
        .toBuffer(),
    );
    const pack = { name: 'bench', sha256: 'b'.repeat(64) };
    const start = Date.UTC(2024, 0, 1);
    const at = (id: number): number => start + Math.floor((id - 1) / 2) * 60_000;
    const [first] = await lib.save([
      { kind: 'generated', prompt: 'image 1', settings: {}, pack, width: 8, height: 8, bytes: png },
    ]);
    const file = lib.get(first!);
    lib.db.prepare('UPDATE images SET created_at = ? WHERE id = ?').run(at(1), first);
    const insert = lib.db.prepare(`INSERT INTO images (kind, prompt, settings, seed, pack_name, pack_sha256, width,
      height, file_sha256, file_bytes, mime, created_at, starred, trashed_at)
      VALUES (?, ?, '{}', ?, ?, ?, 8, 8, ?, ?, 'image/png', ?, ?, NULL)`);
    const kinds = ['generated', 'generated', 'variation', 'interpolation', 'textdiff', 'import'];
    lib.db.transaction(() => {
      for (let id = 2; id <= BIG_N; id++)
        insert.run(
          kinds[id % kinds.length],
          `image ${id}`,
          id,
          pack.name,
          pack.sha256,
          file.sha256,
          file.bytes,
          at(id),
          id % 7 === 0 ? 1 : 0,
        );
    })();
    lib.db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    lib.close();
  }
}

interface GridGlobals {
  document: {
    querySelector(
      selector: string,
    ): { scrollTop: number; clientHeight: number; dispatchEvent(e: unknown): void } | null;
    querySelectorAll(selector: string): { length: number };
    activeElement: { getAttribute(name: string): string | null } | null;
  };
  Event: new (type: string) => unknown;
}

describe('gallery at 100,000 images (web mode, headless Chromium)', { skip }, () => {
  let bigDir: string;
  let bigUrl: string;
  let bigServer: ChildProcess | undefined;
  let bigBrowser: Browser | undefined;

  before(async () => {
    bigDir = mkdtempSync(join(tmpdir(), 'studio-e2e-big-'));
    const t0 = performance.now();
    await buildBigLibrary(bigDir);
    console.log(`# built a ${BIG_N.toLocaleString()}-image library in ${Math.round(performance.now() - t0)} ms`);
    bigUrl = await startWebMode(bigDir, (child) => (bigServer = child));
    bigBrowser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless'] });
  });

  after(async () => {
    await bigBrowser?.close();
    bigServer?.kill('SIGTERM');
    rmSync(bigDir, { recursive: true, force: true });
    rmSync(`${bigDir}-config`, { recursive: true, force: true });
  });

  /** The id in a tile button's name ("Open image 123: …"). */
  const idOf = async (tile: Locator): Promise<number> =>
    Number(/^Open image (\d+)/.exec((await tile.getAttribute('aria-label')) ?? '')?.[1]);

  /** Scrolls the grid so that index i's row is on top, and waits for that tile's image. */
  async function scrollToIndex(page: Page, i: number): Promise<Locator> {
    const grid = page.locator('ul[aria-label="Gallery images"]');
    const cols = Number(await grid.getAttribute('data-cols'));
    const rowHeight = Number(await grid.getAttribute('data-row-height'));
    await page.evaluate(
      ([top]) => {
        const g = globalThis as unknown as GridGlobals;
        const scroller = g.document.querySelector('[data-testid="gallery-scroller"]');
        if (!scroller) throw new Error('no scroller');
        scroller.scrollTop = top!;
        scroller.dispatchEvent(new g.Event('scroll'));
      },
      [Math.floor(i / cols) * rowHeight],
    );
    const tile = page.locator(`li[data-index="${i}"] button.thumb`);
    await tile.waitFor({ timeout: 30_000 });
    return tile;
  }

  it(
    'paints the first page at once, keeps the DOM small, and shows the right image anywhere',
    { timeout: 180_000 },
    async () => {
      assert.ok(bigBrowser);
      const page = await bigBrowser.newPage({ viewport: { width: 1280, height: 800 } });
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
      });
      await page.goto(bigUrl);
      await page
        .getByRole('status', { name: 'Engine status' })
        .getByText('Tiny', { exact: false })
        .waitFor({ timeout: 120_000 });

      const t0 = Date.now();
      await page.getByRole('tab', { name: 'Gallery' }).click();
      const firstTile = page.locator('li[data-index="0"] button.thumb');
      await firstTile.waitFor({ timeout: 30_000 });
      const firstPaint = Date.now() - t0;
      console.log(`# gallery first paint over ${BIG_N.toLocaleString()} images: ${firstPaint} ms`);
      assert.equal(await idOf(firstTile), BIG_N, 'newest first');
      assert.match(await page.getByTestId('gallery-summary').innerText(), /^100,000 images/);
      assert.equal(Number(await page.locator('ul[aria-label="Gallery images"]').getAttribute('data-total')), BIG_N);

      const domTiles = (): Promise<number> => page.locator('ul[aria-label="Gallery images"] > li').count();
      assert.ok((await domTiles()) < 150, `only rows on screen are in the DOM (${await domTiles()})`);

      // A dragged scrollbar: far past anything loaded, the tile there is still exactly the right image.
      for (const i of [50_000, 77_777, 3_001, BIG_N - 1]) {
        const tile = await scrollToIndex(page, i);
        assert.equal(await idOf(tile), BIG_N - i, `index ${i}`);
        assert.ok((await domTiles()) < 150, `DOM stays small at index ${i} (${await domTiles()})`);
      }
      await shots(page, 'gallery-100k');

      // Another view and back: the grid is where it was.
      await scrollToIndex(page, 42_000);
      await page.getByRole('tab', { name: 'Create' }).click();
      await page.getByRole('tab', { name: 'Gallery' }).click();
      await page.locator('li[data-index="42000"] button.thumb').waitFor({ timeout: 30_000 });
      assert.equal(await idOf(page.locator('li[data-index="42000"] button.thumb')), BIG_N - 42_000);

      // Smooth scrolling: frames while the grid is scrolled for a second (reported; the DOM bound above is the check).
      // (A string, not a function: the test's compiler would wrap inner functions in a helper the page lacks.)
      const frames = (await page.evaluate(`new Promise((resolve) => {
      const scroller = document.querySelector('[data-testid="gallery-scroller"]');
      scroller.scrollTop = 0;
      let last = 0, worst = 0, n = 0;
      requestAnimationFrame(function step(t) {
        if (last) worst = Math.max(worst, t - last);
        last = t;
        n++;
        scroller.scrollTop += 120;
        if (n < 60) requestAnimationFrame(step);
        else resolve({ frames: n, worst });
      });
    })`)) as { frames: number; worst: number };
      console.log(`# 60 scroll frames, longest frame ${frames.worst.toFixed(1)} ms`);

      // Keyboard: from a tile, arrows move by one and by a row, End goes to the last image, Enter opens it, Esc closes.
      // The keys are listed in the shortcuts overlay, opened from the sidebar.
      await page
        .getByRole('navigation', { name: 'Library' })
        .getByRole('button', { name: /^Keyboard shortcuts/ })
        .click();
      const help = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
      assert.ok(await help.getByText('Move between images').isVisible());
      await shots(page, 'gallery-keys');
      await page.keyboard.press('Escape');
      await help.waitFor({ state: 'hidden' });

      const tile = await scrollToIndex(page, 50_000);
      await tile.focus();
      const focusedName = (): Promise<string | null> =>
        page.evaluate(
          () => (globalThis as unknown as GridGlobals).document.activeElement?.getAttribute('aria-label') ?? null,
        );
      await page.keyboard.press('ArrowRight');
      assert.match((await focusedName()) ?? '', /^Open image 49999:/);
      const cols = Number(await page.locator('ul[aria-label="Gallery images"]').getAttribute('data-cols'));
      await page.keyboard.press('ArrowDown');
      assert.match((await focusedName()) ?? '', new RegExp(`^Open image ${49_999 - cols}:`));
      // Space selects the focused image; Shift+arrows extend the selection from it; Esc clears it.
      await page.keyboard.press('Space');
      const selectedCount = page.getByRole('toolbar', { name: 'Selected images' }).getByTestId('selection-count');
      assert.equal(await selectedCount.innerText(), '1 selected');
      await page.keyboard.press('Shift+ArrowRight');
      await page.keyboard.press('Shift+ArrowRight');
      assert.equal(await selectedCount.innerText(), '3 selected');
      assert.match((await focusedName()) ?? '', new RegExp(`^Open image ${49_997 - cols}:.*\\(selected\\)$`));
      await page.keyboard.press('Escape');
      await selectedCount.waitFor({ state: 'hidden' });
      // S stars the focused image, and again unstars it.
      const focusedId = Number(/^Open image (\d+)/.exec((await focusedName()) ?? '')?.[1]);
      const was = focusedId % 7 === 0 ? 'true' : 'false';
      const starState = (v: string): Locator =>
        page.locator(`button[aria-label="Star image ${focusedId}"][aria-pressed="${v}"]`);
      await starState(was).waitFor();
      await page.keyboard.press('s');
      await starState(was === 'true' ? 'false' : 'true').waitFor({ timeout: 30_000 });
      await page.keyboard.press('s');
      await starState(was).waitFor({ timeout: 30_000 });
      await page.keyboard.press('End');
      await page.waitForFunction(
        () =>
          /^Open image 1:/.test(
            (globalThis as unknown as GridGlobals).document.activeElement?.getAttribute('aria-label') ?? '',
          ),
        undefined,
        { timeout: 30_000 },
      );
      await page.keyboard.press('Enter');
      const detail = page.getByRole('complementary', { name: 'Image 1' });
      await detail.getByTestId('detail-prompt').waitFor({ timeout: 30_000 });
      assert.equal(await detail.getByTestId('detail-prompt').innerText(), 'image 1');
      await page.keyboard.press('Escape');
      await detail.waitFor({ state: 'hidden' });
      assert.match((await focusedName()) ?? '', /^Open image 1:/, 'focus goes back to the tile');

      // A filter narrows the count and the jumps stay exact inside it: starred = every 7th image.
      await page.getByLabel('Starred', { exact: true }).check();
      const starred = Math.floor(BIG_N / 7);
      await page
        .getByTestId('gallery-summary')
        .getByText(`${starred.toLocaleString()} images`, { exact: false })
        .waitFor();
      const first = page.locator('li[data-index="0"] button.thumb');
      await first.waitFor();
      assert.equal(await idOf(first), 7 * starred);
      const deep = await scrollToIndex(page, 9_000);
      assert.equal(await idOf(deep), 7 * (starred - 9_000));

      // Starred imports (ids ≡ 35 mod 42): one click, then "Select all" takes every one, loaded or not.
      await page.getByRole('group', { name: 'Kind' }).getByLabel('Imports').check();
      const imports = Math.floor((BIG_N - 35) / 42) + 1;
      await page.getByTestId('gallery-summary').getByText(`${imports.toLocaleString()} images (filtered)`).waitFor();
      await page.locator('li[data-index="0"] button.thumb').click();
      const bar = page.getByRole('toolbar', { name: 'Selected images' });
      await bar.getByRole('button', { name: `Select all ${imports.toLocaleString()}` }).click();
      await bar.getByTestId('selection-count').getByText(`${imports.toLocaleString()} selected`).waitFor();
      await page.getByTestId('gallery-message').getByText(`Selected all ${imports.toLocaleString()} images.`).waitFor();
      await bar.getByRole('button', { name: 'Clear selection' }).click();
      await page.getByRole('group', { name: 'Kind' }).getByLabel('Imports').uncheck();
      await page.getByTestId('gallery-summary').getByText(`${starred.toLocaleString()} images`).waitFor();

      // Words matching every image: the count is not known ahead, so the grid grows as it is scrolled.
      await page.getByLabel('Search prompts').fill('image');
      await page.getByRole('button', { name: 'Search', exact: true }).click();
      const summary = page.getByTestId('gallery-summary');
      await summary
        .getByText(/^\d[\d,]*\+ matching “image”/)
        .waitFor({ timeout: 30_000 })
        .catch(async () => {
          throw new Error(`summary: ${await summary.innerText()}`);
        });
      // Scrolled to the end of what is known, the next page comes and the grid grows.
      const grid = page.locator('ul[aria-label="Gallery images"]');
      for (let round = 0; round < 20 && Number(await grid.getAttribute('data-total')) <= 460; round++) {
        await page.evaluate(() => {
          const g = globalThis as unknown as GridGlobals;
          const scroller = g.document.querySelector('[data-testid="gallery-scroller"]')!;
          scroller.scrollTop = 1e9;
          scroller.dispatchEvent(new g.Event('scroll'));
        });
        await page.waitForTimeout(200);
      }
      assert.ok(Number(await grid.getAttribute('data-total')) > 460, 'the word search grew as it was scrolled');
      const found = await scrollToIndex(page, 450);
      assert.equal(await idOf(found), 7 * (starred - 450), 'words within the starred filter, newest first');
      await page.getByRole('button', { name: 'Clear', exact: true }).click();

      // Oldest first: index i is image i + 1.
      await page.getByLabel('Starred', { exact: true }).uncheck();
      await page.getByLabel('Sort').selectOption('oldest');
      await page.getByTestId('gallery-summary').getByText('100,000 images', { exact: false }).waitFor();
      await page.locator('li[data-index="0"] button.thumb[aria-label^="Open image 1:"]').waitFor({ timeout: 30_000 });
      const old = await scrollToIndex(page, 60_001);
      assert.equal(await idOf(old), 60_002);

      assert.deepEqual(problems, []);
      await page.close();
    },
  );
});

// The studio end to end on the default pack (models/emoji-tiny, a trained emoji unCLIP with a CLIP image
// encoder, so "by meaning" and "more like this" mean something): web mode started the way `npm run serve`
// starts it, with no --pack (the default), the real engine and a temporary library, driven by headless
// Chromium through the UI's labels and roles. generate (progress in the queue) → the images in the
// Gallery → variations, an interpolation and a text diff in the Editor → the server restarted on the
// same library: every image and its lineage still there → words and meaning find them, "more like this"
// ranks the image's own edits above an unrelated concept → star, board, trash, restore → a dropped PNG
// with A1111 parameters is imported with its prompt.
// A screenshot of every view goes to the run's temp folder (printed); STUDIO_SCREENSHOTS=DIR instead keeps
// each view at 1280×800 and 800×600, light and dark, there.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { CHROMIUM, shots, skip } from './browser.ts';
import {
  api,
  decodeAll,
  dropFiles,
  queueTexts,
  recordQueue,
  startWebMode,
  stopWebMode,
  type PageGlobals,
} from './studio-server.ts';

// Concepts the pack knows (CLDR labels in its caption templates, "a {label}, {style} style").
const CAT = 'a grinning cat, twemoji style';
const CRYING = 'a crying cat, twemoji style';
const APPLE = 'a red apple, noto style';

interface ImageDetail {
  image: {
    id: number;
    kind: string;
    prompt: string;
    starred: boolean;
    trashedAt: number | null;
    hasEmbedding: boolean;
  };
  parents: { id: number; op: string; role?: string }[];
  children: { id: number }[];
}
interface JobView {
  id: number;
  kind: string;
  imageIds: number[];
}

let runDir: string;
let libraryDir: string;
let shotDir: string;
let server: ChildProcess | undefined;
let url: string;
let browser: Browser | undefined;
let page: Page;
const problems: string[] = [];

/** The ids the run made, filled in as it goes. */
const made = {
  cat: 0, // the generated cat the edits start from (seed 7)
  otherCat: 0, // seed 8, image B of the interpolation
  apple: 0, // the unrelated concept
  variations: [] as number[],
  frames: [] as number[],
  diffs: [] as number[],
};
/** What the library held before the restart. */
let saved: { ids: number[]; lineage: Map<number, ImageDetail['parents']> };

/** What the page's theme check reads (the page runs in Chromium, not here). */
type ThemeGlobals = { document: { documentElement: { dataset: Record<string, string | undefined> } } };

/** A screenshot of the view: one in the run's folder, or the full set where STUDIO_SCREENSHOTS says. */
async function view(name: string): Promise<void> {
  if (process.env.STUDIO_SCREENSHOTS) return shots(page, name, 300);
  await page.waitForTimeout(100); // the grid lays itself out again after a change (a ResizeObserver)
  await page.screenshot({ path: join(shotDir, `${name}.png`) });
}

const grid = (): Locator => page.getByRole('list', { name: 'Gallery images' });
const summary = (): Locator => page.getByTestId('gallery-summary');
const message = (): Locator => page.getByTestId('gallery-message');
const tileButton = (id: number): Locator => grid().getByRole('button', { name: new RegExp(`^Open image ${id}:`) });

/** Waits until the gallery's summary line matches. */
async function says(text: string | RegExp): Promise<void> {
  const matches = (t: string): boolean => (typeof text === 'string' ? t.includes(text) : text.test(t));
  let now = '';
  for (const until = Date.now() + 30_000; Date.now() < until; await page.waitForTimeout(50)) {
    now = (await summary().innerText()).trim();
    if (matches(now)) return;
  }
  await page.screenshot({ path: join(shotDir, `failed-${Date.now()}.png`) });
  throw new Error(`the summary never said ${String(text)}: it says “${now}” (screenshot in ${shotDir})`);
}

/** The image ids of the grid in its order (every tile is in the DOM: the run's library is small). */
async function gridIds(): Promise<number[]> {
  const labels = await grid()
    .locator('button.thumb')
    .evaluateAll((nodes) =>
      nodes.map((n) => (n as unknown as { getAttribute(a: string): string | null }).getAttribute('aria-label') ?? ''),
    );
  return labels.map((l) => Number(/^Open image (\d+)/.exec(l)?.[1]));
}

/** Waits until the grid's ids (in order) satisfy `ok`. */
async function gridShows(ok: (ids: number[]) => boolean, what: string): Promise<void> {
  let now: number[] = [];
  for (const until = Date.now() + 30_000; Date.now() < until; await page.waitForTimeout(50)) {
    now = await gridIds();
    if (ok(now)) return;
  }
  await page.screenshot({ path: join(shotDir, `failed-${Date.now()}.png`) });
  throw new Error(`the grid never showed ${what}: it shows ${now.join(', ')} (screenshot in ${shotDir})`);
}

const gallery = async (): Promise<void> => {
  await page.getByRole('tab', { name: 'Gallery' }).click();
  await grid().waitFor();
};

describe('studio E2E on the default pack (emoji-tiny, web mode, headless Chromium)', { skip }, () => {
  before(async () => {
    runDir = mkdtempSync(join(tmpdir(), 'default-pack-e2e-'));
    libraryDir = join(runDir, 'library');
    shotDir = join(runDir, 'screenshots');
    mkdirSync(libraryDir);
    mkdirSync(shotDir);
    const t0 = performance.now();
    [url, browser] = await Promise.all([
      startWebMode(libraryDir, (child) => (server = child)),
      chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless'] }),
    ]);
    console.log(`# web mode and Chromium up in ${Math.round(performance.now() - t0)} ms`);
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
  });

  after(async () => {
    await browser?.close();
    await stopWebMode(server);
    rmSync(libraryDir, { recursive: true, force: true });
    rmSync(`${libraryDir}-config`, { recursive: true, force: true });
    console.log(`# screenshots: ${process.env.STUDIO_SCREENSHOTS ?? shotDir}`);
  });

  it(
    'generates with the default pack: progress in the queue, then the images in the Gallery',
    { timeout: 120_000 },
    async () => {
      await page.goto(url);
      await page.waitForFunction(() => !(globalThis as unknown as PageGlobals).location.search.includes('token='));
      // No --pack: the engine loads the default pack.
      await page
        .getByRole('status', { name: 'Engine status' })
        .getByText('Emoji tiny', { exact: false })
        .waitFor({ timeout: 60_000 });
      // Settings start at the pack's defaults (decoder 15 steps): a whole image takes a few tenths of a second.
      assert.equal(await page.getByLabel('Decoder steps').inputValue(), '15');

      await recordQueue(page);
      await page.getByLabel('Prompt').fill(CAT);
      await page.getByLabel('Images', { exact: true }).fill('2');
      await page.getByLabel('Seed', { exact: true }).fill('7');
      await page.getByRole('button', { name: 'Generate', exact: true }).click();
      const results = page.getByRole('list', { name: 'Generated images' });
      await results.getByText('seed 8').waitFor({ timeout: 60_000 });
      for (const image of await decodeAll(results.locator('img')))
        assert.ok(image.w > 0 && image.h > 0, `result not decoded: ${JSON.stringify(image)}`);
      const seen = await queueTexts(page);
      assert.ok(
        seen.some((text) => /Generate.*step \d+\/\d+/.test(text)),
        `the queue showed no progress: ${JSON.stringify(seen.slice(-5))}`,
      );
      await view('create');

      // The unrelated concept.
      await page.getByLabel('Prompt').fill(APPLE);
      await page.getByLabel('Images', { exact: true }).fill('1');
      await page.getByLabel('Seed', { exact: true }).fill('3');
      await page.getByRole('button', { name: 'Generate', exact: true }).click();
      await results.getByText('seed 3').waitFor({ timeout: 60_000 });

      await gallery();
      await says(/^3 images$/);
      await gridShows((ids) => ids.length === 3, 'the three images');
      const [apple, otherCat, cat] = await gridIds(); // newest first
      Object.assign(made, { cat: cat!, otherCat: otherCat!, apple: apple! });
      assert.match((await tileButton(made.cat).getAttribute('aria-label')) ?? '', new RegExp(`: ${CAT}`));
      assert.match((await tileButton(made.apple).getAttribute('aria-label')) ?? '', new RegExp(`: ${APPLE}`));
      for (const image of await decodeAll(grid().locator('img')))
        assert.ok(image.w > 0, `thumbnail not decoded: ${JSON.stringify(image)}`);
      await view('gallery');

      await tileButton(made.cat).click();
      const detail = page.getByRole('complementary', { name: `Image ${made.cat}` });
      await detail.getByTestId('detail-seed').getByText('7').waitFor({ timeout: 30_000 });
      assert.equal(await detail.getByTestId('detail-prompt').innerText(), CAT);
      assert.ok(await detail.getByText('emoji-tiny', { exact: false }).isVisible(), 'the pack is named');
      await view('gallery-detail');
      assert.deepEqual(problems, []);
    },
  );

  it(
    'varies, interpolates and text-diffs the image in the Editor, each result saved with its lineage',
    { timeout: 180_000 },
    async () => {
      const detail = page.getByRole('complementary', { name: `Image ${made.cat}` });
      await detail.getByRole('link', { name: 'Open in editor' }).click();
      await page.getByRole('heading', { name: `Editing image ${made.cat}` }).waitFor();
      assert.equal(await page.getByTestId('editor-prompt').innerText(), CAT);
      const editors = page.getByRole('tablist', { name: 'Editors' });

      // Variations: two, η 1, the stored x_T.
      const varyForm = page.getByRole('form', { name: 'Variation settings' });
      await varyForm.getByLabel('Count').fill('2');
      await varyForm.getByRole('button', { name: 'Make variations' }).click();
      const varyTiles = page
        .getByRole('region', { name: 'Variation results' })
        .getByRole('list', { name: /^Results of job \d+$/ })
        .getByRole('button');
      await varyTiles.nth(1).waitFor({ timeout: 60_000 });
      made.variations = await Promise.all(
        [0, 1].map(async (k) =>
          Number(/^Open image (\d+)/.exec((await varyTiles.nth(k).getAttribute('aria-label'))!)![1]),
        ),
      );
      for (const id of made.variations) {
        const d = await api<ImageDetail>(url, 'gallery.get', { id });
        assert.equal(d.image.kind, 'variation');
        assert.deepEqual(
          d.parents.map((p) => [p.id, p.op]),
          [[made.cat, 'vary']],
        );
      }
      await view('editor-variations');

      // Interpolate with the other cat: 4 frames.
      await editors.getByRole('tab', { name: 'Interpolate' }).click();
      const interpForm = page.getByRole('form', { name: 'Interpolation settings' });
      await interpForm
        .getByRole('list', { name: 'Images to interpolate with' })
        .getByRole('button', { name: new RegExp(`^Pick image ${made.otherCat}:`) })
        .click();
      assert.equal(await interpForm.getByTestId('interpolate-b').innerText(), `B: image ${made.otherCat}`);
      await interpForm.getByLabel('Frames').fill('4');
      await interpForm.getByRole('button', { name: 'Interpolate' }).click();
      const interp = page.getByRole('region', { name: 'Interpolation result' });
      const strip = interp.getByRole('list', { name: 'Interpolation frames' }).getByRole('button');
      await strip.nth(3).waitFor({ timeout: 60_000 });
      const interpJob = (await api<JobView[]>(url, 'jobs.list', {})).find((j) => j.kind === 'interpolate')!;
      made.frames = interpJob.imageIds;
      assert.equal(made.frames.length, 4);
      const frame = await api<ImageDetail>(url, 'gallery.get', { id: made.frames[1]! });
      assert.deepEqual(frame.parents.map((p) => [p.id, p.role, p.op]).sort(), [
        [made.cat, 'a', 'interpolate'],
        [made.otherCat, 'b', 'interpolate'],
      ]);
      await decodeAll(interp.getByTestId('interpolate-frame'));
      await view('editor-interpolate');

      // Text diff: grinning → crying, θ 0 to 0.5 in 3 frames; keep the middle one.
      await editors.getByRole('tab', { name: 'Text diff' }).click();
      const diffForm = page.getByRole('form', { name: 'Text diff settings' });
      assert.equal(await diffForm.getByLabel('From (what it shows)').inputValue(), CAT);
      await diffForm.getByLabel('To (what it should become)').fill(CRYING);
      await diffForm.getByLabel('From θ').fill('0');
      await diffForm.getByLabel('To θ').fill('0.5');
      await diffForm.getByLabel('Frames').fill('3');
      assert.equal(await diffForm.getByTestId('textdiff-thetas').innerText(), 'θ = 0, 0.25, 0.5');
      await diffForm.getByRole('button', { name: 'Sweep θ' }).click();
      const diffResult = page.getByRole('region', { name: 'Text diff result' });
      const diffStrip = diffResult.getByRole('list', { name: 'Text diff frames' }).getByRole('button');
      await diffStrip.nth(2).waitFor({ timeout: 60_000 });
      made.diffs = (await api<JobView[]>(url, 'jobs.list', {})).find((j) => j.kind === 'textdiff')!.imageIds;
      assert.equal(made.diffs.length, 3);
      await diffStrip.nth(1).click();
      await diffResult.getByRole('button', { name: 'Keep', exact: true }).click();
      await diffResult.getByRole('button', { name: 'Kept', exact: true }).waitFor();
      const kept = await api<ImageDetail>(url, 'gallery.get', { id: made.diffs[1]! });
      assert.equal(kept.image.starred, true);
      assert.equal(kept.image.prompt, CRYING);
      assert.deepEqual(
        kept.parents.map((p) => [p.id, p.op]),
        [[made.cat, 'textdiff']],
      );
      await view('editor-textdiff');

      // The source's detail lists all its children.
      assert.deepEqual(
        (await api<ImageDetail>(url, 'gallery.get', { id: made.cat })).children.map((c) => c.id).sort((a, b) => a - b),
        [...made.variations, ...made.frames, ...made.diffs].sort((a, b) => a - b),
      );
      assert.deepEqual(problems, []);
    },
  );

  it('after a restart of the server every image and its lineage are still there', { timeout: 120_000 }, async () => {
    const listed = await api<{ items: { id: number }[] }>(url, 'gallery.list', { limit: 200 });
    const ids = listed.items.map((i) => i.id);
    assert.equal(ids.length, 3 + 2 + 4 + 3);
    const lineage = new Map<number, ImageDetail['parents']>();
    for (const id of ids) lineage.set(id, (await api<ImageDetail>(url, 'gallery.get', { id })).parents);
    saved = { ids, lineage };

    // Leave the page first, so that its event socket does not complain about the server going away.
    await page.goto('about:blank');
    await stopWebMode(server);
    const t0 = performance.now();
    url = await startWebMode(libraryDir, (child) => (server = child));
    console.log(`# web mode restarted in ${Math.round(performance.now() - t0)} ms`);

    const again = await api<{ items: { id: number }[] }>(url, 'gallery.list', { limit: 200 });
    assert.deepEqual(
      again.items.map((i) => i.id),
      ids,
    );
    for (const id of ids)
      assert.deepEqual((await api<ImageDetail>(url, 'gallery.get', { id })).parents, lineage.get(id), `image ${id}`);

    // In the studio: the count, and each kind of edit names its parents.
    await page.goto(url);
    await gallery();
    await says(`${ids.length} images`);
    for (const [id, parent] of [
      [made.variations[0]!, `Image ${made.cat} (vary)`],
      [made.frames[1]!, `Image ${made.otherCat} (interpolate, end B)`],
      [made.diffs[1]!, `Image ${made.cat} (textdiff)`],
    ] as const) {
      await tileButton(id).click();
      await page
        .getByRole('complementary', { name: `Image ${id}` })
        .getByRole('list', { name: 'Parents' })
        .getByText(parent, { exact: false })
        .waitFor({ timeout: 30_000 });
    }
    await view('gallery-after-restart');
    await page.getByRole('button', { name: 'Close the image details' }).click();
    assert.deepEqual(problems, []);
  });

  it(
    'finds the images by words and by meaning; “more like this” ranks the image’s own edits first',
    { timeout: 120_000 },
    async () => {
      const search = async (text: string, meaning: boolean): Promise<void> => {
        const box = page.getByRole('search', { name: 'Search the gallery' });
        const byMeaning = box.getByLabel('By meaning');
        if ((await byMeaning.isChecked()) !== meaning) await byMeaning.setChecked(meaning);
        await page.getByLabel('Search prompts').fill(text);
        await box.getByRole('button', { name: 'Search', exact: true }).click();
      };
      /** Runs a ranked query from the UI; once the grid shows the service's answer, its ids in order. */
      // The reply to this query's text: ticking "By meaning" with words already in the box sends one
      // query and Search another, and a late reply of the previous query must not be taken for this one.
      // `query`: the text, or #id for "more like this".
      const ranked = async (query: string, action: () => Promise<void>): Promise<number[]> => {
        const reply = page.waitForResponse((r) => {
          if (!r.url().includes('/api/gallery.similar')) return false;
          const body = r.request().postDataJSON() as { text?: string; id?: number } | null;
          return (body?.text ?? `#${body?.id}`) === query;
        });
        await action();
        const ids = ((await (await reply).json()) as { value: { id: number }[] }).value.map((i) => i.id);
        await gridShows((now) => now.join() === ids.join(), `the ranking ${ids.join(', ')}`);
        return ids;
      };
      const sorted = (ids: number[]): number[] => [...ids].sort((a, b) => a - b);
      const all = saved.ids.length;

      // Words: "crying" is exactly the text diff's frames (their prompt is the "to" text); "grinning" the
      // generated cats and their variations and interpolation; "apple" the apple.
      await search('crying', false);
      await says(/^3 matching “crying”/);
      await gridShows((ids) => sorted(ids).join() === sorted(made.diffs).join(), 'the text diff frames');
      await view('gallery-search-words');
      await search('grinning', false);
      await says(new RegExp(`^${all - 3 - 1} matching “grinning”`));
      const grinning = [made.cat, made.otherCat, ...made.variations, ...made.frames];
      await gridShows((ids) => sorted(ids).join() === sorted(grinning).join(), 'the grinning cats');
      await search('apple', false);
      await says(/^1 matching “apple”/);
      await gridShows((ids) => ids.join() === String(made.apple), 'the apple');

      // By meaning (the text's CLIP embedding against the images'): the apple first for "apple", last for "a cat".
      const forApple = await ranked('apple', () => search('apple', true));
      await says(new RegExp(`^${all} closest in meaning to “apple”`));
      assert.equal(forApple[0], made.apple, `the apple ranks first for “apple”: ${forApple.join(', ')}`);
      const forCat = await ranked('a cat', () => search('a cat', true));
      await says(new RegExp(`^${all} closest in meaning to “a cat”`));
      assert.equal(forCat.at(-1), made.apple, `the apple ranks last for “a cat”: ${forCat.join(', ')}`);
      // Each tile shows its score, best first.
      const scores = (await grid().locator('.id').allInnerTexts()).map((t) => Number(/ · (-?[\d.]+)$/.exec(t)?.[1]));
      assert.equal(scores.length, all);
      assert.ok(
        scores.every((x, i) => Number.isFinite(x) && (i === 0 || x <= scores[i - 1]!)) && scores[0]! > scores.at(-1)!,
        `scores ${scores.join(', ')}`,
      );
      await view('gallery-search-meaning');
      await page.getByRole('button', { name: 'Clear', exact: true }).click();
      await says(`${all} images`);

      // More like this on the cat: its variations and the other cat (the same prompt) before the apple, which is last.
      const like = await ranked(`#${made.cat}`, () =>
        grid()
          .getByRole('button', { name: `More like image ${made.cat}`, exact: true })
          .click(),
      );
      await says(new RegExp(`^${all - 1} closest to image ${made.cat}`));
      assert.ok(!like.includes(made.cat), 'not the image itself');
      assert.equal(like.at(-1), made.apple, `ranking: ${like.join(', ')}`);
      for (const id of [...made.variations, made.otherCat])
        assert.ok(like.indexOf(id) < like.indexOf(made.apple), `image ${id} ranks above the apple: ${like.join(', ')}`);
      await view('gallery-more-like-this');
      await summary().getByRole('button', { name: 'Show all' }).click();
      await says(`${all} images`);
      assert.deepEqual(problems, []);
    },
  );

  it('stars, puts on a board, trashes and restores', { timeout: 120_000 }, async () => {
    const all = saved.ids.length;
    const library = page.getByRole('navigation', { name: 'Library' });
    const selection = page.getByRole('toolbar', { name: 'Selected images' });

    // Star the apple from its tile; the Starred filter then shows it and the kept text-diff frame.
    await grid()
      .getByRole('button', { name: `Star image ${made.apple}`, exact: true })
      .click();
    await grid().locator(`button[aria-label="Star image ${made.apple}"][aria-pressed="true"]`).waitFor();
    await page.getByLabel('Starred', { exact: true }).check();
    await says('2 images (filtered)');
    const starred = [made.apple, made.diffs[1]!].sort((a, b) => a - b);
    await gridShows((ids) => [...ids].sort((a, b) => a - b).join() === starred.join(), 'the two starred images');
    await view('gallery-starred');
    await page.getByLabel('Starred', { exact: true }).uncheck();
    await says(`${all} images`);

    // A board with the two generated cats.
    await library.getByRole('button', { name: 'New board' }).click();
    await library.getByLabel('Board name').fill('Cats');
    await library.getByRole('button', { name: 'Create' }).click();
    await library.getByRole('button', { name: /^Cats/ }).waitFor();
    await tileButton(made.cat).click();
    await tileButton(made.otherCat).click({ modifiers: ['Control'] });
    await selection.getByLabel('Add the selected images to a board').selectOption({ label: 'Cats' });
    await message().getByText('Added 2 images to “Cats”.').waitFor();
    await library.getByRole('button', { name: 'Cats 2 images' }).click();
    await says('2 images on “Cats”');
    await gridShows((ids) => [...ids].sort((a, b) => a - b).join() === `${made.cat},${made.otherCat}`, 'the board');
    await view('gallery-board');
    await library.getByRole('button', { name: 'All images' }).click();
    await says(`${all} images`);

    // Trash the apple from its details; the Trash shows it; Restore brings it back.
    await tileButton(made.apple).click();
    const detail = page.getByRole('complementary', { name: `Image ${made.apple}` });
    await detail.getByRole('button', { name: 'Trash' }).click();
    await says(`${all - 1} images`);
    await library.getByRole('button', { name: 'Trash 1 images' }).click();
    await says('1 image in the trash');
    await gridShows((ids) => ids.join() === String(made.apple), 'the trashed apple');
    await view('gallery-trash');
    await grid()
      .getByRole('button', { name: `Restore image ${made.apple}`, exact: true })
      .click();
    await page.getByTestId('gallery-empty').getByText('The trash is empty.', { exact: false }).waitFor();
    await library.getByRole('button', { name: 'All images' }).click();
    await says(`${all} images`);
    const apple = await api<ImageDetail>(url, 'gallery.get', { id: made.apple });
    assert.equal(apple.image.trashedAt, null);
    assert.equal(apple.image.starred, true);
    assert.deepEqual(problems, []);
  });

  it('imports a dropped PNG with A1111 parameters, with its prompt', { timeout: 120_000 }, async () => {
    const { embedPngMetadata } = await import('../../main/library/png-metadata.ts');
    const { default: sharp } = await import('sharp');
    const plain = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 250, g: 200, b: 20 } } })
      .png()
      .toBuffer();
    const prompt = 'a yellow star on a blue night sky';
    const png = embedPngMetadata(new Uint8Array(plain), {
      parameters: `${prompt}\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 64x64`,
    });
    await dropFiles(page, [{ name: 'star.png', type: 'image/png', bytes: png }]);
    await message().getByText('Imported 1 image', { exact: false }).waitFor({ timeout: 30_000 });
    const jobText = await page.getByTestId('import-jobs').innerText();
    const jobId = Number(/Import job (\d+)/.exec(jobText)?.[1]);
    assert.ok(jobId > 0, jobText);
    await says(`${saved.ids.length + 1} images`);
    await gridShows((ids) => ids.length === saved.ids.length + 1, 'the imported image');
    const [id] = await gridIds();
    assert.match((await tileButton(id!).getAttribute('aria-label')) ?? '', new RegExp(`^Open image ${id}: ${prompt}$`));
    assert.equal(await grid().locator('li[data-index="0"] .kind').innerText(), 'import');
    // The import's job encodes it with the pack's CLIP image encoder: then it has an embedding.
    await page.getByTestId('import-jobs').getByText(`Import job ${jobId} done`).waitFor({ timeout: 60_000 });
    assert.equal((await api<ImageDetail>(url, 'gallery.get', { id })).image.hasEmbedding, true);
    await tileButton(id!).click();
    const detail = page.getByRole('complementary', { name: `Image ${id}` });
    assert.equal(await detail.getByTestId('detail-prompt').innerText(), prompt);
    await view('gallery-import');
    assert.deepEqual(problems, []);
  });

  it(
    'Models verifies the default pack; Settings switches the theme; About and the shortcuts open',
    { timeout: 120_000 },
    async () => {
      await page.getByRole('tab', { name: 'Models' }).click();
      await page.getByRole('heading', { name: 'Model packs' }).waitFor();
      await page.getByRole('button', { name: /^Verify the files of Emoji tiny/ }).click();
      await page
        .getByTestId('models-message')
        .getByText('files match manifest.json', { exact: false })
        .waitFor({ timeout: 60_000 });
      await view('models');

      await page.getByRole('tab', { name: 'Settings' }).click();
      await page.getByRole('radio', { name: 'Dark' }).check();
      await page.waitForFunction(
        () => (globalThis as unknown as ThemeGlobals).document.documentElement.dataset.theme === 'dark',
      );
      await page.getByRole('radio', { name: 'Same as the system' }).check();
      await page.waitForFunction(
        () => (globalThis as unknown as ThemeGlobals).document.documentElement.dataset.theme === undefined,
      );
      await view('settings');

      await page.getByRole('button', { name: 'About' }).click();
      const about = page.getByRole('dialog', { name: 'About unCLIP Studio' });
      await about.getByRole('group', { name: 'ATTRIBUTION.md' }).getByText('ATTRIBUTION.md', { exact: true }).click();
      await about.getByText('Attribution: data this model was trained on', { exact: true }).waitFor();
      await view('about');
      await page.keyboard.press('Escape');
      await about.waitFor({ state: 'hidden' });

      await page.getByRole('tab', { name: 'Gallery' }).click();
      await page.keyboard.press('?');
      await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor();
      await view('shortcuts');
      await page.keyboard.press('Escape');
      assert.deepEqual(problems, []);
    },
  );
});

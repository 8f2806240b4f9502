// The Editor in a real browser: web mode's server and service in this process over a temporary
// library, with the scripted engine (test/integration/web/scripted-engine.ts: tiny solid-colour
// PNGs, real latent files) so the manipulations run in milliseconds on any machine, and the renderer
// built by Vite into a temporary folder (out/renderer is left alone). Headless Chromium drives the
// UI by its labels and roles: generate → open the image in the editor → variations (η, count, seed,
// fresh noise) with their lineage → interpolation with a picked second image, the scrubber, play and
// the exported GIF → a text-diff sweep, Keep and "Discard the others" → an image that has no x_T
// yet shows that it is inverted first, with the job's progress.
// Set STUDIO_SCREENSHOTS=DIR to keep screenshots of the editor views (1280×800 and 800×600, light and dark).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { InlineConfig } from 'vite';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { CHROMIUM, shots, skip } from './browser.ts';
import type { EngineClient, ManipulationRequest } from '../../main/engine/api.ts';
import { createStudioService, type StudioService } from '../../main/service/studio.ts';
import { startWebServer, type WebServer } from '../../main/web/server.ts';
import { createScriptedEngine, scriptedInfo } from '../integration/web/scripted-engine.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** The renderer's Vite config, the one web mode builds with (plain JS, imported by path). */
async function rendererViteConfig(): Promise<InlineConfig & { build: NonNullable<InlineConfig['build']> }> {
  const { rendererConfig } = (await import(pathToFileURL(join(root, 'vite.renderer.config.mjs')).href)) as {
    rendererConfig: InlineConfig & { build: NonNullable<InlineConfig['build']> };
  };
  return rendererConfig;
}

/**
 * The scripted engine, with a gate: while it is closed, manipulations wait (after reporting the
 * inversion phase for an invert), so a test can look at a job while it runs.
 */
function gatedEngine(): EngineClient & { hold(): void; release(): void; failNext(message: string): void } {
  const base = createScriptedEngine({ stepDelayMs: 20 });
  let gate: Promise<void> | null = null;
  let open: (() => void) | null = null;
  let failure: string | null = null;
  return {
    ...base,
    // The scripted pack's super-resolution default (1 step) is below the form's minimum: the Create
    // form would refuse it. This engine has no super-resolution; 2 changes nothing it makes.
    async info() {
      return {
        ...scriptedInfo,
        pack: { ...scriptedInfo.pack, defaults: { ...scriptedInfo.pack.defaults, stepsSuperRes: 2 } },
      };
    },
    async manipulate(request: ManipulationRequest, opts = {}) {
      if (gate) {
        if (request.op === 'invert')
          opts.onProgress?.({
            stage: 'decoder',
            step: 1,
            total: 4,
            elapsedMs: 0,
            etaMs: 0,
            manipulation: { phase: 'invert' },
          });
        await gate;
      }
      if (failure !== null && request.op !== 'invert') {
        const message = failure;
        failure = null;
        throw new Error(message);
      }
      return base.manipulate!(request, opts);
    },
    failNext(message: string) {
      failure = message;
    },
    hold() {
      gate ??= new Promise((resolve) => (open = resolve));
    },
    release() {
      open?.();
      gate = null;
      open = null;
    },
  };
}

/** Interactive roles that must have an accessible name. */
const NAMED_ROLES = new Set([
  'button',
  'link',
  'textbox',
  'searchbox',
  'slider',
  'spinbutton',
  'radio',
  'checkbox',
  'combobox',
  'tab',
  'listbox',
  'switch',
]);

/**
 * Every control on the page has an accessible name (Chromium's accessibility tree), and every focus
 * stop of the Editor view, walked with Tab, shows a focus indicator (an outline or a ring).
 */
async function checkControls(page: Page, where: string): Promise<void> {
  const cdp = await page.context().newCDPSession(page);
  const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as {
    nodes: { ignored: boolean; role?: { value: string }; name?: { value: string } }[];
  };
  await cdp.detach();
  const unnamed = nodes
    .filter((n) => !n.ignored && NAMED_ROLES.has(n.role?.value ?? '') && !n.name?.value?.trim())
    .map((n) => n.role?.value);
  assert.deepEqual(unnamed, [], `${where}: controls without an accessible name`);

  await page.locator('[role="tablist"][aria-label="Editors"] [aria-selected="true"]').focus();
  const seen: string[] = [];
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press('Tab');
    // (A string, not a function: the test's compiler would wrap inner functions in a helper the page lacks.)
    const stop = (await page.evaluate(`(() => {
      const el = document.activeElement;
      if (!el || !el.closest('.editor-view')) return null;
      const s = getComputedStyle(el);
      const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
      const name = el.getAttribute('aria-label') || el.id || el.textContent.trim().slice(0, 30) || el.tagName;
      return { name: el.tagName + ' ' + name, ring };
    })()`)) as { name: string; ring: boolean } | null;
    if (!stop) break;
    assert.ok(stop.ring, `${where}: no visible focus on ${stop.name}`);
    seen.push(stop.name);
  }
  assert.ok(seen.length >= 5, `${where}: Tab reached only ${seen.join(', ')}`);
}

let service: StudioService;
let server: WebServer;
let browser: Browser | undefined;
let engine: ReturnType<typeof gatedEngine>;
let libraryDir: string;
let staticDir: string;

describe('editors E2E (web mode, scripted engine, headless Chromium)', { skip }, () => {
  before(async () => {
    staticDir = mkdtempSync(join(tmpdir(), 'editors-e2e-renderer-'));
    libraryDir = mkdtempSync(join(tmpdir(), 'editors-e2e-library-'));
    const [{ build }, rendererConfig] = await Promise.all([import('vite'), rendererViteConfig()]);
    await build({
      ...rendererConfig,
      configFile: false,
      logLevel: 'warn',
      mode: 'production',
      build: { ...rendererConfig.build, outDir: staticDir },
    });
    engine = gatedEngine();
    service = createStudioService({ engine, libraryDir });
    server = await startWebServer({ service, staticDir, port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless'] });
  });

  after(
    async () => {
      engine?.release();
      await browser?.close();
      await server?.close();
      await service?.close();
      rmSync(libraryDir, { recursive: true, force: true });
      rmSync(staticDir, { recursive: true, force: true });
    },
    { timeout: 30_000 },
  );

  it(
    'varies, interpolates and text-diffs an image from the editor, each result saved with its lineage',
    { timeout: 300_000 },
    async () => {
      assert.ok(browser);
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
      });

      await page.goto(server.url);
      await page
        .getByRole('status', { name: 'Engine status' })
        .getByText('Scripted test engine')
        .waitFor({ timeout: 60_000 });

      // The Editor with nothing open says what to do.
      await page.getByRole('tab', { name: 'Editor' }).click();
      await page.getByRole('heading', { name: 'Choose an image to edit' }).waitFor();
      await page.getByText('No other image in the gallery yet', { exact: false }).waitFor();
      await shots(page, 'editor-empty');

      // Generate two images.
      await page.getByRole('tab', { name: 'Create' }).click();
      const prompt = 'a red apple on a wooden table';
      await page.getByLabel('Prompt').fill(prompt);
      await page.getByLabel('Images', { exact: true }).fill('2');
      await page.getByRole('button', { name: 'Generate', exact: true }).click();
      await page.getByRole('list', { name: 'Generated images' }).locator('img').nth(1).waitFor({ timeout: 60_000 });
      const generated = (await service.call('gallery.list', { sort: 'oldest' })).items.map((i) => i.id);
      assert.equal(generated.length, 2);
      const [source, other] = generated as [number, number];

      // Gallery → the image's detail → "Open in editor".
      await page.getByRole('tab', { name: 'Gallery' }).click();
      await page
        .getByRole('list', { name: 'Gallery images' })
        .getByRole('button', { name: new RegExp(`^Open image ${source}:`) })
        .click();
      const detail = page.getByRole('complementary', { name: `Image ${source}` });
      await detail.getByRole('link', { name: 'Open in editor' }).waitFor();
      await shots(page, 'gallery-detail-open-in-editor');
      await detail.getByRole('link', { name: 'Open in editor' }).click();
      await page.getByRole('heading', { name: `Editing image ${source}` }).waitFor();
      assert.equal(await page.getByRole('tab', { name: 'Editor' }).getAttribute('aria-selected'), 'true');
      await page.waitForFunction(
        () =>
          (globalThis as unknown as { document: { activeElement: { id: string } | null } }).document.activeElement
            ?.id === 'editor-title',
      );
      assert.equal(await page.getByTestId('editor-prompt').innerText(), prompt);
      assert.match(page.url(), new RegExp(`#editor/${source}$`));

      // ---- Variations: η 0.5, three of them, a fixed seed, fresh noise.
      const editors = page.getByRole('tablist', { name: 'Editors' });
      assert.equal(await editors.getByRole('tab', { name: 'Variations' }).getAttribute('aria-selected'), 'true');
      const varyForm = page.getByRole('form', { name: 'Variation settings' });
      await varyForm.getByLabel('η (eta)').fill('0.5');
      assert.equal(await varyForm.locator('output').innerText(), '0.50');
      await varyForm.getByLabel('Count').fill('3');
      await varyForm.getByLabel('Seed').fill('not a number');
      await varyForm.getByRole('button', { name: 'Make variations' }).click();
      await varyForm.getByRole('alert').getByText('Seed: enter a whole number', { exact: false }).waitFor();
      await varyForm.getByLabel('Seed').fill('77');
      await varyForm.getByLabel('Fresh noise', { exact: false }).check();
      // Decoder settings: folded away; a guidance out of range is said in words; steps go with the job.
      await varyForm.getByText('Decoder settings').click();
      await varyForm.getByLabel('Guidance').fill('500');
      await varyForm.getByRole('button', { name: 'Make variations' }).click();
      await varyForm
        .getByRole('alert')
        .getByText('Guidance: enter a number from 0 to 100.', { exact: false })
        .waitFor();
      await varyForm.getByLabel('Guidance').fill('');
      await varyForm.getByLabel('Steps').fill('5');
      await varyForm.getByRole('button', { name: 'Make variations' }).click();
      const varyResults = page.getByRole('region', { name: 'Variation results' });
      const tiles = varyResults.getByRole('list', { name: /^Results of job \d+$/ }).getByRole('button');
      await tiles.nth(2).waitFor({ timeout: 60_000 });
      assert.equal(await tiles.count(), 3);
      await varyResults.getByText('η 0.5 · 3 images · fresh noise · seed 77 · 5 steps', { exact: false }).waitFor();
      const varied = await Promise.all(
        [0, 1, 2].map(async (k) =>
          Number(/^Open image (\d+)/.exec((await tiles.nth(k).getAttribute('aria-label'))!)![1]),
        ),
      );
      for (const [k, id] of varied.entries()) {
        const d = await service.call('gallery.get', { id });
        assert.equal(d.image.kind, 'variation');
        assert.equal(d.image.seed, 77 + k, 'the typed seed, one more per image');
        assert.equal(d.parents.length, 1);
        assert.equal(d.parents[0]!.id, source);
        assert.equal(d.parents[0]!.op, 'vary');
        assert.equal(d.parents[0]!.params.eta, 0.5);
        assert.equal(d.parents[0]!.params.fresh, true);
        assert.equal(d.image.settings.steps, 5, 'the decoder steps typed');
      }
      assert.deepEqual(
        (await service.call('gallery.get', { id: source })).children.map((c) => c.id).sort(),
        [...varied].sort(),
      );
      await shots(page, 'editor-variations');

      // A result opens in the Gallery's detail, which names the source as its parent; back to the editor.
      await tiles.first().click();
      const childDetail = page.getByRole('complementary', { name: `Image ${varied[0]}` });
      await childDetail.getByRole('list', { name: 'Parents' }).getByText(`Image ${source} (vary)`).waitFor();
      await page.getByRole('tab', { name: 'Editor' }).click();
      await page.getByRole('heading', { name: `Editing image ${source}` }).waitFor();

      // ---- Interpolate with the other generated image: 4 frames, x_T fixed at A's.
      await editors.getByRole('tab', { name: 'Interpolate' }).click();
      const interpForm = page.getByRole('form', { name: 'Interpolation settings' });
      await interpForm.getByRole('button', { name: 'Interpolate' }).click();
      await interpForm.getByRole('alert').getByText('Pick the second image', { exact: false }).waitFor();
      const choices = interpForm.getByRole('list', { name: 'Images to interpolate with' });
      await choices.getByRole('button').first().waitFor();
      assert.equal(
        await choices.getByRole('button', { name: new RegExp(`^Pick image ${source}:`) }).count(),
        0,
        'the image being edited is not offered',
      );
      const pickOther = choices.getByRole('button', { name: new RegExp(`^Pick image ${other}:`) });
      await pickOther.click();
      assert.equal(await pickOther.getAttribute('aria-pressed'), 'true');
      assert.equal(await interpForm.getByTestId('interpolate-b').innerText(), `B: image ${other}`);
      await interpForm.getByLabel('Frames').fill('4');
      await interpForm.getByLabel('Fixed: A’s').check();
      engine.hold();
      await interpForm.getByRole('button', { name: 'Interpolate' }).click();
      const result = page.getByRole('region', { name: 'Interpolation result' });
      // While it runs: its status, a place for each frame, and Cancel.
      await result.locator('[data-testid="editor-job"][data-status="running"]').waitFor({ timeout: 30_000 });
      assert.equal(await result.locator('li.placeholder').count(), 4);
      await shots(page, 'editor-interpolate-running');
      engine.release();
      const strip = result.getByRole('list', { name: 'Interpolation frames' }).getByRole('button');
      await strip.nth(3).waitFor({ timeout: 60_000 });
      assert.equal(await strip.count(), 4);
      const job = (await service.call('jobs.list', {})).find((j) => j.kind === 'interpolate')!;
      assert.deepEqual({ a: (job.args as { a: number }).a, b: (job.args as { b: number }).b }, { a: source, b: other });
      assert.equal((job.args as { noise: string }).noise, 'a');
      const frameIds = job.imageIds;
      assert.equal(frameIds.length, 4);
      const firstFrame = await service.call('gallery.get', { id: frameIds[0]! });
      assert.deepEqual(
        firstFrame.parents.map((p) => [p.id, p.role, p.op]).sort(),
        [
          [source, 'a', 'interpolate'],
          [other, 'b', 'interpolate'],
        ].sort(),
      );

      // The scrubber: frame 1 shown; a step right shows frame 2 (its image); End the last.
      const position = result.getByTestId('interpolate-position');
      const frame = result.getByTestId('interpolate-frame');
      const scrubber = result.getByLabel('Frame', { exact: true });
      assert.equal(await position.innerText(), '1 / 4');
      assert.equal(Number(await frame.getAttribute('data-image-id')), frameIds[0]);
      await scrubber.focus();
      await page.keyboard.press('ArrowRight');
      await result.getByText('2 / 4').waitFor();
      assert.equal(Number(await frame.getAttribute('data-image-id')), frameIds[1]);
      assert.equal(await scrubber.getAttribute('aria-valuetext'), 'Frame 2 of 4');
      await page.keyboard.press('End');
      await result.getByText('4 / 4').waitFor();
      assert.equal(Number(await frame.getAttribute('data-image-id')), frameIds[3]);
      // A strip tile jumps there.
      await strip.nth(1).click();
      await result.getByText('2 / 4').waitFor();
      assert.equal(await strip.nth(1).getAttribute('aria-current'), 'true');

      // Play moves the frames by itself; Pause stops them.
      await result.getByRole('button', { name: 'Play' }).click();
      await result.getByText('3 / 4').waitFor({ timeout: 5_000 });
      await result.getByText('1 / 4').waitFor({ timeout: 5_000 }); // it loops
      await result.getByRole('button', { name: 'Pause' }).click();
      const stopped = await position.innerText();
      await page.waitForTimeout(700);
      assert.equal(await position.innerText(), stopped, 'paused');
      await shots(page, 'editor-interpolate');

      // Export GIF: a download made in the page, an animated GIF with one image per frame, scaled up.
      const downloading = page.waitForEvent('download');
      await result.getByRole('button', { name: 'Export GIF' }).click();
      const download = await downloading;
      assert.equal(download.suggestedFilename(), `interpolation-${source}-${other}-4f.gif`);
      const gif = readFileSync((await download.path())!);
      assert.equal(gif.subarray(0, 6).toString('latin1'), 'GIF89a');
      assert.equal(gif.readUInt16LE(6), 256, 'width: 8 px frames scaled up to 256');
      assert.equal(gif.readUInt16LE(8), 256);
      const controlBlocks = gif.toString('latin1').split('\x21\xf9\x04').length - 1;
      assert.equal(controlBlocks, 4, 'one graphic control block per frame');
      assert.ok(gif.toString('latin1').includes('NETSCAPE2.0'), 'it loops');
      assert.equal(gif.at(-1), 0x3b, 'ends with the trailer');
      await result.getByText('Saved interpolation-', { exact: false }).waitFor();
      // Back and forth: the GIF plays A → B → A (4 frames, then 3 and 2 again: 6 images).
      await result.getByLabel('Back and forth').check();
      const again = page.waitForEvent('download');
      await result.getByRole('button', { name: 'Export GIF' }).click();
      const pingPong = readFileSync((await (await again).path())!);
      assert.equal(pingPong.toString('latin1').split('\x21\xf9\x04').length - 1, 6, 'six frames back and forth');
      await result.getByLabel('Back and forth').uncheck();

      // ---- Text diff: from is the prompt; a 6-frame sweep of θ from 0 to 0.5.
      await editors.getByRole('tab', { name: 'Text diff' }).click();
      const diffForm = page.getByRole('form', { name: 'Text diff settings' });
      assert.equal(await diffForm.getByLabel('From (what it shows)').inputValue(), prompt);
      await diffForm.getByLabel('To (what it should become)').fill('a green apple on a wooden table');
      await diffForm.getByLabel('From θ').fill('0');
      await diffForm.getByLabel('To θ').fill('0.5');
      await diffForm.getByLabel('Frames').fill('6');
      assert.equal(await diffForm.getByTestId('textdiff-thetas').innerText(), 'θ = 0, 0.1, 0.2, 0.3, 0.4, 0.5');
      await diffForm.getByRole('button', { name: 'Sweep θ' }).click();
      const diffResult = page.getByRole('region', { name: 'Text diff result' });
      const diffStrip = diffResult.getByRole('list', { name: 'Text diff frames' }).getByRole('button');
      await diffStrip.nth(5).waitFor({ timeout: 60_000 });
      assert.equal(await diffStrip.count(), 6);
      const diffJob = (await service.call('jobs.list', {})).find((j) => j.kind === 'textdiff')!;
      assert.deepEqual((diffJob.args as { thetas: number[] }).thetas, [0, 0.1, 0.2, 0.3, 0.4, 0.5]);
      const diffIds = diffJob.imageIds;
      assert.equal(diffIds.length, 6);

      // The θ slider selects a frame: three steps right is θ = 0.3.
      const theta = diffResult.getByLabel('θ', { exact: true });
      await theta.focus();
      for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowRight');
      await diffResult.getByTestId('textdiff-theta').getByText('θ = 0.3').waitFor();
      const chosen = diffIds[3]!;
      assert.equal(Number(await diffResult.getByTestId('textdiff-frame').getAttribute('data-image-id')), chosen);
      assert.equal(await diffStrip.nth(3).getAttribute('aria-current'), 'true');

      // Keep stars it (only it).
      const keep = diffResult.getByRole('button', { name: 'Keep', exact: true });
      await keep.click();
      await diffResult.getByRole('button', { name: 'Kept', exact: true }).waitFor();
      assert.equal(
        await diffResult.getByRole('button', { name: 'Kept', exact: true }).getAttribute('aria-pressed'),
        'true',
      );
      const chosenDetail = await service.call('gallery.get', { id: chosen });
      assert.equal(chosenDetail.image.starred, true);
      assert.equal(chosenDetail.parents[0]!.op, 'textdiff');
      assert.equal(chosenDetail.parents[0]!.id, source);
      assert.equal(chosenDetail.parents[0]!.params.theta, 0.3);
      for (const id of diffIds.filter((id) => id !== chosen))
        assert.equal((await service.call('gallery.get', { id })).image.starred, false, `image ${id} not starred`);
      await shots(page, 'editor-textdiff');

      // Discard the others: asked first ("Keep them" keeps them), then the five go to the trash.
      await diffResult.getByRole('button', { name: 'Discard the others…' }).click();
      const confirm = page.getByRole('dialog', { name: 'Discard the other frames?' });
      await confirm.getByText('5 frames of this sweep', { exact: false }).waitFor();
      await shots(page, 'editor-textdiff-discard');
      await confirm.getByRole('button', { name: 'Keep them' }).click();
      await confirm.waitFor({ state: 'hidden' });
      assert.equal(await diffStrip.count(), 6);
      await diffResult.getByRole('button', { name: 'Discard the others…' }).click();
      await confirm.getByRole('button', { name: 'Move 5 to the trash' }).click();
      await diffResult.getByText('Moved 5 frames to the trash', { exact: false }).waitFor();
      assert.equal(await diffStrip.count(), 1);
      assert.match((await diffStrip.first().getAttribute('aria-label')) ?? '', /θ = 0\.3 .*kept/);
      for (const id of diffIds) {
        const trashed = (await service.call('gallery.get', { id })).image.trashedAt !== null;
        assert.equal(trashed, id !== chosen, `image ${id} ${id === chosen ? 'kept' : 'trashed'}`);
      }

      // A reload comes back to the same image, tab, jobs, kept and discarded frames.
      await page.reload();
      await page.getByRole('heading', { name: `Editing image ${source}` }).waitFor({ timeout: 30_000 });
      await editors.locator('[role="tab"][aria-selected="true"]', { hasText: 'Text diff' }).waitFor();
      await diffStrip.first().waitFor({ timeout: 30_000 });
      assert.equal(await diffStrip.count(), 1);
      assert.equal(
        await diffResult.getByRole('button', { name: 'Kept', exact: true }).getAttribute('aria-pressed'),
        'true',
      );
      await checkControls(page, 'text diff');
      await editors.getByRole('tab', { name: 'Interpolate' }).click();
      await strip.nth(3).waitFor({ timeout: 30_000 });
      assert.equal(await interpForm.getByTestId('interpolate-b').innerText(), `B: image ${other}`);
      await checkControls(page, 'interpolate');
      await editors.getByRole('tab', { name: 'Variations' }).click();
      await tiles.nth(2).waitFor({ timeout: 30_000 });
      assert.equal(await tiles.count(), 3);
      await checkControls(page, 'variations');
      await editors.getByRole('tab', { name: 'Text diff' }).click();

      // ---- The kept frame has no x_T (text-diff frames are not inverted): the editor says it will be
      // inverted first, and the variation's job shows the inversion while it runs.
      await diffResult.getByRole('button', { name: 'Edit this frame' }).click();
      await page.getByRole('heading', { name: `Editing image ${chosen}` }).waitFor();
      assert.match(await page.getByTestId('editor-latents').innerText(), /first edit (encodes and )?inverts it/);
      await editors.getByRole('tab', { name: 'Variations' }).click();
      const note = page.getByTestId('inversion-note');
      await note.getByText(`Image ${chosen} has no stored x_T yet`, { exact: false }).waitFor();
      engine.hold();
      await varyForm.getByLabel('Count').fill('1');
      await varyForm.getByRole('button', { name: 'Make variations' }).click();
      const running = page.locator('[data-testid="editor-job"][data-status="running"]');
      await running
        .getByTestId('editor-job-step')
        .getByText('Inverting the image first (no stored x_T yet): step 1 of 4')
        .waitFor({ timeout: 30_000 });
      assert.ok(await running.getByRole('progressbar').isVisible());
      assert.ok(await running.getByRole('button', { name: 'Cancel' }).isVisible());
      await shots(page, 'editor-inverting');
      engine.release();
      await varyResults
        .getByRole('list', { name: /^Results of job \d+$/ })
        .getByRole('button')
        .first()
        .waitFor({
          timeout: 60_000,
        });
      // Inverted now: the note is gone and the header says the latents are stored.
      await page.getByTestId('editor-latents').getByText('Stored z_i and x_T', { exact: false }).waitFor();
      assert.equal(await note.count(), 0);
      assert.equal((await service.call('gallery.get', { id: chosen })).image.inverted, true);

      assert.deepEqual(problems, []);
      await page.close();
    },
  );

  it('reopens the image the address names (#editor/ID) after a reload', { timeout: 60_000 }, async () => {
    assert.ok(browser);
    const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
    await page.goto(server.url);
    await page.waitForFunction(() => !(globalThis as unknown as { location: { search: string } }).location.search);
    const [first] = (await service.call('gallery.list', { sort: 'oldest' })).items;
    assert.ok(first);
    await page.goto(`${server.origin}/#editor/${first.id}`);
    await page.getByRole('heading', { name: `Editing image ${first.id}` }).waitFor({ timeout: 30_000 });
    assert.equal(await page.getByRole('tab', { name: 'Editor' }).getAttribute('aria-selected'), 'true');
    // "Change image…" offers the gallery; picking another opens it.
    await page.getByRole('button', { name: 'Change image…' }).click();
    const list: Locator = page.getByRole('list', { name: 'Images to edit' });
    await list.getByRole('button').first().waitFor();
    assert.equal(await list.getByRole('button', { pressed: true }).count(), 1, 'the open image is pressed');
    await shots(page, 'editor-choose');
    const name = (await list.getByRole('button', { pressed: false }).first().getAttribute('aria-label')) ?? '';
    const id = Number(/^Pick image (\d+)/.exec(name)?.[1]);
    assert.ok(id > 0 && id !== first.id, name);
    await list.getByRole('button', { name: new RegExp(`^Pick image ${id}:`) }).click();
    await page.getByRole('heading', { name: `Editing image ${id}` }).waitFor();
    assert.match(page.url(), new RegExp(`#editor/${id}$`));

    // At 800×600 the editor's main button is in the window without scrolling, with nothing over it.
    for (const [tab, button] of [
      ['Variations', 'Make variations'],
      ['Interpolate', 'Interpolate'],
      ['Text diff', 'Sweep θ'],
    ] as const) {
      await page.getByRole('tablist', { name: 'Editors' }).getByRole('tab', { name: tab }).click();
      const main = page.getByRole('tabpanel').getByRole('button', { name: button, exact: true });
      const box = await main.boundingBox();
      assert.ok(box && box.y >= 0 && box.y + box.height <= 600, `${button} at ${JSON.stringify(box)} of 600`);
      const hit = await page.evaluate(
        `document.elementFromPoint(${box.x + box.width / 2}, ${box.y + box.height / 2})?.textContent?.trim()`,
      );
      assert.equal(hit, button);
    }
    await page.getByRole('tablist', { name: 'Editors' }).getByRole('tab', { name: 'Variations' }).click();

    // A job that fails says why, and Retry runs it again.
    engine.failNext('the decoder ran out of memory');
    const form = page.getByRole('form', { name: 'Variation settings' });
    await form.getByLabel('Count').fill('2');
    await form.getByRole('button', { name: 'Make variations' }).click();
    const failed = page.locator('[data-testid="editor-job"][data-status="failed"]');
    await failed.getByText('2 variations failed:', { exact: false }).waitFor({ timeout: 30_000 });
    assert.match(await failed.innerText(), /ran out of memory/);
    await shots(page, 'editor-failed');
    await failed.getByRole('button', { name: 'Retry' }).click();
    const results = page.getByRole('region', { name: 'Variation results' }).getByRole('list').getByRole('button');
    await results.nth(1).waitFor({ timeout: 30_000 });
    assert.equal(await results.count(), 2);

    // An image that is not there: said, with the way out.
    await page.goto(`${server.origin}/#editor/99999`);
    await page
      .getByRole('alert')
      .getByText('Could not open image 99999', { exact: false })
      .waitFor({ timeout: 30_000 });
    await page.getByRole('heading', { name: 'Image 99999 cannot be opened' }).waitFor();
    assert.ok(await page.getByRole('button', { name: 'Go to the Gallery' }).isVisible());
    await shots(page, 'editor-missing');
    await page.getByRole('button', { name: 'Choose another image' }).click();
    await page.getByRole('list', { name: 'Images to edit' }).getByRole('button').first().click();
    await page.getByRole('heading', { name: /^Editing image \d+$/ }).waitFor();
    await page.close();
  });
});

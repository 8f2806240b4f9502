// `unclip bench --studio`: the studio's start-up and gallery figures against their targets. Not a test.
// Each measure runs --runs times (default 3) and the median is compared with its target:
//   - `unclip generate` cold: a fresh `node main/cli/bin.mjs generate …` process (the built CLI,
//     out/node/cli.js) on the default pack with its default settings into a fresh library and --out
//     folder; spawn → the PNG appears in --out (fs.watch), and spawn → the process has exited. (Cold is
//     the process: the operating system's file cache holds the pack after the first run.)
//   - `unclip info`: spawn → exit.
//   - web mode (`node main/launch.mjs --web --port 0`, the built out/node/serve.js) with a built renderer:
//     spawn → the URL line printed (the server listens), → the first 200 for the page, and → the
//     engine's info answered (the pack loaded in its worker; no target).
//   - the Gallery over 100,000 images (bench-library.ts's synthetic library) in headless Chromium:
//     first paint (two ways, see galleryRun), 3 s of animation frames with nothing moving (the control)
//     and 3 s scrolling the virtual grid one step per frame (frame intervals from requestAnimationFrame,
//     long tasks), and the renderer's memory after it. CHROMIUM=PATH picks another browser binary.
// Every measured process gets an empty app data folder (no saved settings); $UNCLIP_* and --pack still apply.
// --json prints the rows (each with every run's value) instead of the table.
// The renderer is built first when it is stale, so no start includes a build.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, watch } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { REPO_ROOT } from '../engine/packs.ts';
import { ensureRendererBuilt, rendererIsStale } from '../web/renderer-build.ts';
import { syntheticLibrary } from './bench-library.ts';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PROMPT = 'a red rocket, twemoji style';
const SCROLL_MS = 3000;
const SCROLL_STEP_PX = 60; // per animation frame: 3,600 px/s, about 20 rows a second
const FRAME_MS = 1000 / 60;

export interface StudioRow {
  what: string;
  unit: 'ms' | 'MiB' | 'frames' | '';
  /** The median of the runs (for frames: the worst run). */
  value: number;
  runs: number[];
  target: number | null;
  pass: boolean | null;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

function row(what: string, unit: StudioRow['unit'], runs: number[], target: number | null, value = median(runs)) {
  return { what, unit, value, runs, target, pass: target === null ? null : value <= target } satisfies StudioRow;
}

/** RSS of a process in MiB (Linux /proc), or null. */
function rssMiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

interface Timed {
  child: ChildProcess;
  t0: number;
  output: () => string;
  exited: Promise<number>;
}

/**
 * The app data folder the measured processes get (XDG_CONFIG_HOME, APPDATA): an empty one, so that the saved
 * settings of whoever runs the bench (library, pack, backend, threads) do not change what is measured.
 */
let benchAppData: string | null = null;
function appDataEnv(): Record<string, string> {
  benchAppData ??= mkdtempSync(join(tmpdir(), 'unclip-bench-studio-appdata-'));
  return { XDG_CONFIG_HOME: join(benchAppData, 'config'), APPDATA: join(benchAppData, 'appdata') };
}

/** Spawns `node ARGS` from the repository root, its clock started just before the spawn. */
function run(args: string[]): Timed {
  let out = '';
  const t0 = performance.now();
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...appDataEnv() },
  });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) => child.once('exit', () => resolve(performance.now())));
  return { child, t0, output: () => out, exited };
}

/** One cold `unclip generate`: ms to the PNG in --out, ms to exit. */
async function coldGenerate(packDir: string | undefined): Promise<{ png: number; exit: number }> {
  const work = mkdtempSync(join(tmpdir(), 'unclip-bench-studio-gen-'));
  const out = join(work, 'out');
  const library = join(work, 'library');
  for (const dir of [out, library]) mkdirSync(dir);
  let pngAt = NaN;
  const watcher = watch(out, (_, name) => {
    if (Number.isNaN(pngAt) && String(name).endsWith('.png')) pngAt = performance.now();
  });
  try {
    const p = run([
      'main/cli/bin.mjs',
      'generate',
      PROMPT,
      '--out',
      out,
      '--library',
      library,
      ...(packDir ? ['--pack', packDir] : []),
    ]);
    const end = await p.exited;
    if (p.child.exitCode !== 0) throw new Error(`unclip generate failed:\n${p.output()}`);
    if (Number.isNaN(pngAt)) throw new Error(`unclip generate wrote no PNG into ${out}:\n${p.output()}`);
    return { png: pngAt - p.t0, exit: end - p.t0 };
  } finally {
    watcher.close();
    rmSync(work, { recursive: true, force: true });
  }
}

async function coldInfo(packDir: string | undefined): Promise<number> {
  const p = run(['main/cli/bin.mjs', 'info', ...(packDir ? ['--pack', packDir] : [])]);
  const end = await p.exited;
  if (p.child.exitCode !== 0) throw new Error(`unclip info failed:\n${p.output()}`);
  return end - p.t0;
}

interface WebMode {
  url: string;
  child: ChildProcess;
  /** spawn → URL printed, → first 200 for the page, → engine info answered. */
  ready: number;
  page200: number;
  engine: number;
  rebuilt: boolean;
  stop: () => Promise<void>;
}

async function startWebMode(library: string, packDir: string | undefined): Promise<WebMode> {
  const p = run([
    'main/launch.mjs',
    '--web',
    '--port',
    '0',
    '--library',
    library,
    ...(packDir ? ['--pack', packDir] : []),
  ]);
  const stop = async (): Promise<void> => {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`web mode did not start:\n${p.output()}`)), 120_000);
      const check = (): void => {
        const m = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(p.output());
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      p.child.stdout!.on('data', check);
      void p.exited.then(() => reject(new Error(`web mode exited:\n${p.output()}`)));
    });
    const ready = performance.now() - p.t0;
    const page = await fetch(url);
    if (page.status !== 200) throw new Error(`web mode answered ${page.status} for the page`);
    await page.arrayBuffer();
    const page200 = performance.now() - p.t0;
    const token = new URL(url).searchParams.get('token')!;
    const info = await fetch(new URL('/api/engine.info', url), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    const reply = (await info.json()) as { ok: boolean };
    if (!reply.ok) throw new Error(`engine.info: ${JSON.stringify(reply)}`);
    const engine = performance.now() - p.t0;
    return {
      url,
      child: p.child,
      ready,
      page200,
      engine,
      rebuilt: p.output().includes('building the renderer'),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

// The page side, as strings (this file is compiled without the DOM library, and the bundler would wrap
// inner functions in helpers the page lacks).

/** Installed before the page's scripts: on each animation frame, whether the grid's first row is painted. */
const FIRST_ROW_WATCH = `(() => {
  const firstRowReady = () => {
    const grid = document.querySelector('ul[aria-label="Gallery images"]');
    if (!grid) return false;
    const cols = Number(grid.getAttribute('data-cols')) || 1;
    const imgs = [];
    for (let i = 0; i < cols; i++) {
      const img = grid.querySelector('li[data-index="' + i + '"] img');
      if (!img) return false;
      imgs.push(img);
    }
    return imgs.every((img) => img.complete && img.naturalWidth > 0);
  };
  window.__bench = { ready: null, painted: null, lcp: null, fcp: null };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__bench.lcp = e.startTime;
  }).observe({ type: 'largest-contentful-paint', buffered: true });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.name === 'first-contentful-paint') window.__bench.fcp = e.startTime;
  }).observe({ type: 'paint', buffered: true });
  const tick = (t) => {
    const b = window.__bench;
    if (b.armed === false) return requestAnimationFrame(tick);
    if (b.ready === null) {
      if (firstRowReady()) b.ready = t;
      return requestAnimationFrame(tick);
    }
    b.painted = t; // the frame after the one that had the first row decoded: that one was presented
  };
  requestAnimationFrame(tick);
  window.__benchRearm = () => {
    window.__bench = { ...window.__bench, ready: null, painted: null, armed: true };
    requestAnimationFrame(tick);
  };
})()`;

/**
 * Animation frames for SCROLL_MS, moving the grid by `step` px in each (0: the idle control, nothing
 * moves): the intervals between frames, and the main thread's long tasks (≥ 50 ms) meanwhile.
 */
const frames = (step: number): string => `new Promise((resolve) => {
  const scroller = document.querySelector('[data-testid="gallery-scroller"]');
  const intervals = [];
  const longTasks = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) longTasks.push(e.duration);
  });
  observer.observe({ type: 'longtask' });
  let last = 0, start = 0;
  const tick = (t) => {
    if (last) intervals.push(t - last); else start = t;
    last = t;
    if (t - start >= ${SCROLL_MS}) {
      observer.disconnect();
      resolve({ intervals, longTasks });
      return;
    }
    scroller.scrollTop += ${step};
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})`;

/** The page has painted the grid's first row since FIRST_ROW_WATCH was (re)armed. */
const painted = (): boolean =>
  (globalThis as unknown as { __bench: { painted: number | null } }).__bench.painted !== null;

interface GalleryRun {
  /** Navigation start → the first frame after the grid's first row of thumbnails was decoded (#gallery). */
  loadToPainted: number;
  /** The Gallery tab clicked (from Create, engine loaded) → the same, for the first showing in that page. */
  tabToPainted: number;
  lcp: number | null;
  fcp: number | null;
  /** Frame intervals while scrolling, and the long tasks meanwhile (their durations). */
  intervals: number[];
  longTasks: number[];
  /** Frame intervals of the idle control. */
  idleIntervals: number[];
  heapUsedMiB: number;
  heapTotalMiB: number;
  domNodes: number;
  rendererRssMiB: number | null;
  serverRssMiB: number | null;
}

async function galleryRun(browser: Browser, web: WebMode, engineTitle: string): Promise<GalleryRun> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    // 1. A fresh page straight onto #gallery: from navigation start.
    const page = await context.newPage();
    await page.addInitScript(FIRST_ROW_WATCH);
    const hashed = new URL(web.url);
    hashed.hash = 'gallery';
    await page.goto(hashed.href);
    await page.waitForFunction(painted, undefined, { timeout: 60_000, polling: 50 });
    const nav = (await page.evaluate('window.__bench')) as { painted: number; lcp: number | null; fcp: number | null };

    // 2. The same, for the Gallery tab's first showing in a page that opened on Create.
    const page2 = await context.newPage();
    await page2.addInitScript(FIRST_ROW_WATCH);
    await page2.goto(web.url);
    await page2.getByRole('status', { name: 'Engine status' }).getByText(engineTitle).waitFor({ timeout: 60_000 });
    const t0 = (await page2.evaluate(`(() => {
      window.__benchRearm();
      const t = performance.now();
      [...document.querySelectorAll('[role="tab"]')].find((b) => b.textContent.trim() === 'Gallery').click();
      return t;
    })()`)) as number;
    await page2.waitForFunction(painted, undefined, { timeout: 60_000, polling: 50 });
    const tabPainted = (await page2.evaluate('window.__bench.painted')) as number;
    await page2.close();

    // 3. The first page's frames with nothing moving (the control), then scrolling its grid, then its memory.
    await page.waitForTimeout(300);
    type Frames = { intervals: number[]; longTasks: number[] };
    const idle = (await page.evaluate(frames(0))) as Frames;
    const scrolled = (await page.evaluate(frames(SCROLL_STEP_PX))) as Frames;
    const cdp = await context.newCDPSession(page);
    await cdp.send('HeapProfiler.collectGarbage');
    await cdp.send('Performance.enable');
    const { metrics } = (await cdp.send('Performance.getMetrics')) as { metrics: { name: string; value: number }[] };
    const metric = (name: string): number => metrics.find((m) => m.name === name)?.value ?? NaN;
    await cdp.detach();
    // The renderer processes (Chromium's process list over the browser's CDP session); the page's is the largest.
    let rendererRssMiB: number | null = null;
    try {
      const bcdp = await browser.newBrowserCDPSession();
      const info = (await bcdp.send('SystemInfo.getProcessInfo')) as { processInfo: { type: string; id: number }[] };
      await bcdp.detach();
      const rss = info.processInfo
        .filter((p) => p.type === 'renderer')
        .map((p) => rssMiB(p.id))
        .filter((x): x is number => x !== null);
      if (rss.length) rendererRssMiB = Math.max(...rss);
    } catch {
      // not available here
    }
    return {
      loadToPainted: nav.painted,
      tabToPainted: tabPainted - t0,
      lcp: nav.lcp,
      fcp: nav.fcp,
      intervals: scrolled.intervals,
      longTasks: scrolled.longTasks,
      idleIntervals: idle.intervals,
      heapUsedMiB: metric('JSHeapUsedSize') / 2 ** 20,
      heapTotalMiB: metric('JSHeapTotalSize') / 2 ** 20,
      domNodes: metric('Nodes'),
      rendererRssMiB,
      serverRssMiB: rssMiB(web.child.pid),
    };
  } finally {
    await context.close();
  }
}

export async function benchStudio(options: { runs: number; json: boolean; packDir?: string }): Promise<number> {
  const { runs, json, packDir } = options;
  const log = (line: string): void => void (json ? console.error(line) : console.log(line));
  const load = [loadavg()];
  const rows: StudioRow[] = [];
  const notes: string[] = [];

  if (!existsSync(join(REPO_ROOT, 'out', 'node', 'cli.js')))
    throw new Error('the CLI is not built: run npm run build:node');
  if (rendererIsStale()) {
    log('building the renderer first (it was older than its sources) …');
    await ensureRendererBuilt();
  }

  // The CLI, cold.
  const gens: { png: number; exit: number }[] = [];
  const infos: number[] = [];
  for (let i = 0; i < runs; i++) {
    gens.push(await coldGenerate(packDir));
    infos.push(await coldInfo(packDir));
  }
  rows.push(
    row(
      '`unclip generate` cold: spawn → first PNG',
      'ms',
      gens.map((g) => g.png),
      2000,
    ),
  );
  rows.push(
    row(
      '`unclip generate` cold: spawn → exit',
      'ms',
      gens.map((g) => g.exit),
      null,
    ),
  );
  rows.push(row('`unclip info`: spawn → exit', 'ms', infos, 3000));

  // Web mode, on an empty library.
  const starts: WebMode[] = [];
  for (let i = 0; i < runs; i++) {
    const library = mkdtempSync(join(tmpdir(), 'unclip-bench-studio-web-'));
    const web = await startWebMode(library, packDir);
    await web.stop();
    rmSync(library, { recursive: true, force: true });
    if (web.rebuilt) notes.push('a web-mode start rebuilt the renderer (someone changed its sources): excluded');
    else starts.push(web);
  }
  rows.push(
    row(
      'web mode: spawn → URL printed (listening)',
      'ms',
      starts.map((w) => w.ready),
      2000,
    ),
  );
  rows.push(
    row(
      'web mode: spawn → first 200 for the page',
      'ms',
      starts.map((w) => w.page200),
      2000,
    ),
  );
  rows.push(
    row(
      'web mode: spawn → engine info answered (pack loaded)',
      'ms',
      starts.map((w) => w.engine),
      null,
    ),
  );

  // The Gallery at 100,000 images.
  if (!existsSync(CHROMIUM)) {
    notes.push(`${CHROMIUM} is missing (apt-get install -y chromium; or CHROMIUM=PATH): no gallery figures`);
  } else {
    const { dir, buildMs } = await syntheticLibrary(128);
    if (buildMs !== null) log(`built the 100,000-image library ${dir} in ${(buildMs / 1000).toFixed(1)} s`);
    const { chromium } = await import('playwright-core');
    const web = await startWebMode(dir, packDir);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless'] });
    try {
      const title = (
        (await (
          await fetch(new URL('/api/engine.info', web.url), {
            method: 'POST',
            headers: {
              authorization: `Bearer ${new URL(web.url).searchParams.get('token')}`,
              'content-type': 'application/json',
            },
            body: '{}',
          })
        ).json()) as { value: { pack: { title: string } } }
      ).value.pack.title;
      const gallery: GalleryRun[] = [];
      for (let i = 0; i < runs; i++) gallery.push(await galleryRun(browser, web, title));
      rows.push(
        row(
          'gallery (100,000 images): navigation → first row of thumbnails painted',
          'ms',
          gallery.map((g) => g.loadToPainted),
          null,
        ),
      );
      rows.push(
        row(
          'gallery (100,000 images): Gallery tab clicked → first row of thumbnails painted',
          'ms',
          gallery.map((g) => g.tabToPainted),
          500,
        ),
      );
      rows.push(
        row(
          'gallery: largest contentful paint (navigation → LCP)',
          'ms',
          gallery.map((g) => g.lcp ?? NaN),
          null,
        ),
      );
      const worst = (f: (g: GalleryRun) => number): number => Math.max(...gallery.map(f));
      const p = (q: number) => (g: GalleryRun) => quantile(g.intervals, q);
      rows.push(row(`scroll ${SCROLL_MS / 1000} s: frame interval p50`, 'ms', gallery.map(p(0.5)), null));
      rows.push(row('scroll: frame interval p95', 'ms', gallery.map(p(0.95)), null));
      rows.push(row('scroll: longest frame interval', 'ms', gallery.map(p(1)), null));
      // rAF times are vsync-aligned: an on-time frame measures 16.7 ms give or take a few hundredths, so an
      // interval counts as "> 16.7 ms" (a vsync missed) from 1.5 vsyncs and as "> 33.3 ms" from 2.5.
      const over = (vsyncs: number, of: (g: GalleryRun) => number[]) => (g: GalleryRun) =>
        of(g).filter((x) => x > (vsyncs + 0.5) * FRAME_MS).length;
      const dropped = (of: (g: GalleryRun) => number[]) => (g: GalleryRun) =>
        of(g).reduce((n, x) => n + Math.max(0, Math.round(x / FRAME_MS) - 1), 0);
      const scrolling = (g: GalleryRun): number[] => g.intervals;
      const idle = (g: GalleryRun): number[] => g.idleIntervals;
      const worstRow = (
        what: string,
        f: (g: GalleryRun) => number,
        target: number | null = null,
        unit: StudioRow['unit'] = 'frames',
      ): StudioRow => row(what, unit, gallery.map(f), target, worst(f));
      rows.push(worstRow('scroll: frames dropped (vsyncs missed; worst run)', dropped(scrolling), 0));
      rows.push(worstRow('scroll: intervals > 16.7 ms (worst run)', over(1, scrolling)));
      rows.push(worstRow('scroll: intervals > 33.3 ms (worst run)', over(2, scrolling)));
      rows.push(worstRow('scroll: frames (per run)', (g) => g.intervals.length));
      rows.push(
        worstRow('scroll: long tasks ≥ 50 ms on the main thread (worst run)', (g) => g.longTasks.length, null, ''),
      );
      rows.push(worstRow('idle control (no scrolling, 3 s): frames dropped (worst run)', dropped(idle)));
      rows.push(
        row(
          'renderer: JS heap used (CDP JSHeapUsedSize, after GC)',
          'MiB',
          gallery.map((g) => g.heapUsedMiB),
          null,
        ),
      );
      rows.push(
        row(
          'renderer: JS heap total (CDP JSHeapTotalSize)',
          'MiB',
          gallery.map((g) => g.heapTotalMiB),
          null,
        ),
      );
      rows.push(
        row(
          'renderer: DOM nodes (CDP Nodes)',
          '',
          gallery.map((g) => g.domNodes),
          null,
        ),
      );
      const rss = gallery.map((g) => g.rendererRssMiB).filter((x): x is number => x !== null);
      if (rss.length) rows.push(row('renderer process RSS (largest renderer, /proc)', 'MiB', rss, null));
      const server = gallery.map((g) => g.serverRssMiB).filter((x): x is number => x !== null);
      if (server.length) rows.push(row('web-mode server process RSS (/proc)', 'MiB', server, null));
    } finally {
      await browser.close();
      await web.stop();
    }
  }
  load.push(loadavg());
  if (benchAppData) rmSync(benchAppData, { recursive: true, force: true });
  benchAppData = null;

  const report = {
    runs,
    loadAverage: { start: load[0], end: load[1] },
    rows,
    notes,
  };
  if (json) {
    console.log(JSON.stringify(report, null, 2));
    return 0;
  }
  const fmt = (r: StudioRow, v: number): string =>
    Number.isNaN(v)
      ? '–'
      : r.unit === 'ms' || r.unit === 'MiB'
        ? v.toFixed(r.unit === 'MiB' || v < 100 ? 1 : 0)
        : String(Math.round(v));
  console.log(
    `studio bench: medians of ${runs} runs (“worst run” rows: the largest); load average ${load[0]!.map((x) => x.toFixed(2)).join(' ')} at the start, ${load[1]!.map((x) => x.toFixed(2)).join(' ')} at the end`,
  );
  console.log(`  ${'measure'.padEnd(80)} ${'target'.padStart(10)} ${'measured'.padStart(12)}  runs`);
  for (const r of rows)
    console.log(
      `  ${r.what.padEnd(80)} ${(r.target === null ? '' : `≤ ${r.target} ${r.unit}`).padStart(10)} ${`${fmt(r, r.value)} ${r.unit}`.padStart(12)}  ${r.runs.map((v) => fmt(r, v)).join(' / ')}  ${r.pass === null ? '' : r.pass ? 'PASS' : 'MISS'}`,
    );
  for (const n of notes) console.log(`  note: ${n}`);
  return 0;
}

#!/usr/bin/env node
// `npm start`: open the desktop studio when Electron can run here, otherwise serve the same
// studio to the browser (web mode). `npm run serve` (--web) always picks web mode.
//   npm start -- [--library DIR] [--pack DIR] [--backend NAME] [--threads N]
//   npm run serve -- [--port N] [--library DIR] [--pack DIR] [--backend NAME] [--threads N]
// Plain JavaScript; web mode runs the built server (out/node/serve.js, `npm run build:node`).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

const USAGE = `usage: npm start -- [--library DIR] [--pack DIR] [--backend cpu|webgpu|cuda|dml|coreml] [--threads N]
       npm run serve -- [--port N] [same flags]   (web mode only)`;

function hasDisplay() {
  if (process.platform !== 'linux') return true;
  return Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);
}

function electronDir() {
  return dirname(require.resolve('electron/package.json'));
}

/** Mirrors electron/install.js isInstalled(): the binary for this version is in dist/. */
function electronInstalled() {
  const dir = electronDir();
  try {
    const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const installed = readFileSync(join(dir, 'dist', 'version'), 'utf8')
      .trim()
      .replace(/^v/, '');
    const exe = readFileSync(join(dir, 'path.txt'), 'utf8');
    return installed === version && existsSync(join(dir, 'dist', exe));
  } catch {
    return false;
  }
}

/** Runs Electron's own installer (Electron ≥42 downloads on first use, not on npm install). */
function installElectron() {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(electronDir(), 'install.js')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 10 * 60_000,
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    // Say something only when it is a real download, not an instant offline failure.
    const notice = setTimeout(() => console.log('Downloading the Electron runtime (first run) ...'), 1500);
    child.on('close', (code) => {
      clearTimeout(notice);
      const firstLine = output.split('\n').find((l) => l.trim()) ?? `exit code ${code}`;
      resolve(code === 0 && electronInstalled() ? null : firstLine.trim());
    });
    child.on('error', (err) => {
      clearTimeout(notice);
      resolve(err.message);
    });
  });
}

/** Why the desktop app cannot open here, or null when it can. */
async function desktopUnavailable() {
  if (!hasDisplay()) return 'No display (DISPLAY and WAYLAND_DISPLAY are unset)';
  if (electronInstalled()) return null;
  const failure = await installElectron();
  return failure === null ? null : `The Electron runtime is not installed and could not be downloaded (${failure})`;
}

/**
 * better-sqlite3 12 is a V8-ABI addon: `npm install` builds it for Node (tests, web mode, CLI);
 * the desktop app needs Electron's build. Probe it inside Electron and rebuild when it does not load.
 */
function ensureElectronNativeModules() {
  const dir = electronDir();
  const electron = join(dir, 'dist', readFileSync(join(dir, 'path.txt'), 'utf8'));
  const probe = spawnSync(electron, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], {
    cwd: root,
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (probe.status === 0) return;
  console.log('Rebuilding better-sqlite3 for Electron (npm run rebuild:electron) ...');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const rebuild = spawnSync(npm, ['run', 'rebuild:electron'], {
    cwd: root,
    stdio: 'inherit',
    shell: process.platform === 'win32',
  });
  if (rebuild.status !== 0)
    console.warn('unclip-studio: the rebuild failed; the gallery may not open (see README, Troubleshooting)');
}

function runDesktop(appArgs) {
  ensureElectronNativeModules();
  const cli = join(root, 'node_modules', 'electron-vite', 'bin', 'electron-vite.js');
  const child = spawn(process.execPath, [cli, 'preview', '--', ...appArgs], { cwd: root, stdio: 'inherit' });
  child.on('close', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
}

async function runWeb(appArgs) {
  const built = join(root, 'out', 'node', 'serve.js');
  if (!existsSync(built)) {
    console.error('unclip-studio: web mode is not built yet; run `npm run build:node` (npm install does it)');
    process.exit(1);
  }
  const { runWebMode } = await import(pathToFileURL(built).href);
  try {
    await runWebMode(appArgs);
  } catch (err) {
    console.error(`unclip-studio: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
}

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
const webOnly = args.includes('--web');
const appArgs = args.filter((a) => a !== '--web');

if (webOnly) {
  await runWeb(appArgs);
} else {
  const reason = await desktopUnavailable();
  if (reason === null) {
    if (appArgs.some((a) => a === '--port' || a.startsWith('--port='))) {
      console.error('unclip-studio: --port applies to web mode only (npm run serve)');
      process.exit(2);
    }
    runDesktop(appArgs);
  } else {
    console.log(`${reason}: serving the studio in your browser instead (web mode).`);
    await runWeb(appArgs);
  }
}

#!/usr/bin/env node
// `npm run build:node` (also run by `npm install` as `prepare`, and by `npm test`): the plain-Node
// programs as built JavaScript in out/node — the CLI (`unclip`), web mode's server and the engine
// worker they start — so nothing compiles TypeScript at run time (tsx is for the tests only).
// Packages stay external (native addons are loaded by path from node_modules); the three files sit
// two levels under the repository root, like main/<tier>/*.ts, so paths built from import.meta.url
// (the default pack, package.json, the renderer) resolve the same. The desktop app is built by
// electron-vite (`npm run build`).

import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const t0 = performance.now();
await build({
  absWorkingDir: root,
  entryPoints: {
    cli: 'main/cli/index.ts',
    serve: 'main/web/serve.ts',
    'engine-worker': 'main/engine/worker.ts',
  },
  outdir: 'out/node',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
if (!process.argv.includes('--quiet'))
  console.log(`built out/node (cli, serve, engine-worker) in ${Math.round(performance.now() - t0)} ms`);

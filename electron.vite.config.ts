// Builds the desktop app's three targets from the fixed top-level layout:
//   main/app/index.ts (+ engine-process.ts) → out/main, preload/index.ts → out/preload/index.cjs,
//   renderer/index.html → out/renderer.
// The renderer's config lives in vite.renderer.config.mjs, which web mode builds with too
// (main/web/renderer-build.ts), so both modes load one and the same renderer bundle.

import { defineConfig, type UserConfig } from 'electron-vite';
import { resolve } from 'node:path';
import { rendererConfig } from './vite.renderer.config.mjs';

const root = import.meta.dirname;

const renderer: NonNullable<UserConfig['renderer']> = rendererConfig;
export { rendererConfig };

export default defineConfig({
  main: {
    build: {
      outDir: resolve(root, 'out', 'main'),
      // Native and runtime packages (onnxruntime-node, better-sqlite3, sharp, ...) stay external:
      // electron-vite externalizes `dependencies` by default.
      externalizeDeps: true,
      rolldownOptions: {
        input: {
          index: resolve(root, 'main', 'app', 'index.ts'),
          'engine-process': resolve(root, 'main', 'app', 'engine-process.ts'),
        },
      },
    },
  },
  preload: {
    build: {
      outDir: resolve(root, 'out', 'preload'),
      // A sandboxed preload is one self-contained CommonJS script: bundle zod and the contract.
      externalizeDeps: false,
      rolldownOptions: {
        input: { index: resolve(root, 'preload', 'index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer,
});

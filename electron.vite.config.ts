// Builds the desktop app's three targets from the fixed top-level layout:
//   main/app/index.ts (+ engine-process.ts) → out/main, preload/index.ts → out/preload/index.cjs,
//   renderer/index.html → out/renderer.
// rendererConfig is also what web mode builds (main/web/renderer-build.ts), so both modes load
// one and the same renderer bundle.

import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig, type UserConfig } from 'electron-vite';
import { resolve } from 'node:path';

const root = import.meta.dirname;

export const rendererConfig = {
  root: resolve(root, 'renderer'),
  base: './',
  plugins: [svelte({ configFile: resolve(root, 'svelte.config.js') })],
  build: {
    outDir: resolve(root, 'out', 'renderer'),
    emptyOutDir: true,
    target: 'chrome120',
    minify: true,
    reportCompressedSize: false,
    rolldownOptions: { input: resolve(root, 'renderer', 'index.html') },
  },
} satisfies NonNullable<UserConfig['renderer']>;

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
  renderer: rendererConfig,
});

// The renderer's Vite config, shared by the desktop build (electron.vite.config.ts) and web mode's
// on-start build (main/web/renderer-build.ts). Plain JavaScript, so built web mode loads it without
// compiling TypeScript; its paths come from this file's place, the repository root.
import { svelte } from '@sveltejs/vite-plugin-svelte';
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
};

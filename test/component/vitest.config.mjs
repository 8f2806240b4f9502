// The component tier: the renderer's state classes (renderer/lib/*.svelte.ts) and components, run by
// Vitest in happy-dom (a page without a browser) and rendered with @testing-library/svelte.
// `npm test` runs it (test/run.mjs); alone: `npx vitest run --config test/component/vitest.config.mjs`.
// The Svelte plugin is the renderer's own (vite.renderer.config.mjs), so .svelte and .svelte.ts files
// compile here exactly as in the app.
import { svelteTesting } from '@testing-library/svelte/vite';
import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';
import { rendererConfig } from '../../vite.renderer.config.mjs';

const root = resolve(import.meta.dirname, '..', '..');

export default defineConfig({
  root,
  plugins: [...rendererConfig.plugins, svelteTesting()],
  // Svelte's browser build (mount, effects), not its server one.
  resolve: { conditions: ['browser'] },
  test: {
    include: ['test/component/**/*.test.ts'],
    // happy-dom, not jsdom: it has <dialog>'s showModal (ConfirmDialog opens with it) and
    // ResizeObserver (VirtualGrid measures with it), and supports Node 20 (jsdom ≥ 30 needs Node 22).
    environment: 'happy-dom',
    setupFiles: ['test/component/setup.ts'],
    restoreMocks: true,
    unstubGlobals: true,
  },
});

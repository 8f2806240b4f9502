// ESLint flat config: JS + typescript-eslint + eslint-plugin-svelte, plus the layering rules
// that keep each folder to its job (electron-anchors §3.3, §3.6):
//   - main/engine, main/service, main/web, main/cli, main/library never import Electron;
//   - renderer/ never imports Node built-ins, Electron or anything from main/ (preload/contract.ts is its door).
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import svelteConfig from './svelte.config.js';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  {
    ignores: [
      'out/**',
      'dist/**',
      'release/**',
      'node_modules/**',
      'models/.venv/**',
      'models/work/**',
      'test/fixtures/**',
      'test-results/**',
      '**/*.tmp.*',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...svelte.configs['flat/recommended'],
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      eqeqeq: ['error', 'smart'],
      'no-console': 'off',
    },
  },
  // Node-side code: main, preload, tests, tooling.
  {
    files: ['main/**', 'preload/**', 'test/**', '*.{js,mjs,ts}', 'models/**/*.{js,mjs,ts}'],
    languageOptions: { globals: { ...globals.node } },
  },
  // Renderer: browser globals, Svelte files parsed with TypeScript.
  {
    files: ['renderer/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['renderer/**/*.svelte', 'renderer/**/*.svelte.ts'],
    languageOptions: {
      parserOptions: {
        parser: tseslint.parser,
        extraFileExtensions: ['.svelte'],
        svelteConfig,
      },
    },
  },
  // Layering: Electron stays in main/app and preload.
  {
    files: ['main/engine/**', 'main/service/**', 'main/web/**', 'main/cli/**', 'main/library/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'electron', message: 'Only main/app and preload may use Electron; keep this code plain Node.' },
          ],
          patterns: [{ group: ['electron/*'], message: 'Only main/app and preload may use Electron.' }],
        },
      ],
    },
  },
  // Layering: the renderer is a web page.
  {
    files: ['renderer/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({ name, message: 'The renderer runs in a browser: no Node built-ins.' })),
            { name: 'electron', message: 'The renderer talks to main only through window.studio (lib/api.ts).' },
          ],
          patterns: [{ group: ['**/main/**'], message: 'The renderer reaches main only through preload/contract.ts.' }],
        },
      ],
    },
  },
);

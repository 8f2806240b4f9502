#!/usr/bin/env node
// `npm test`: every tier, one command.
//   1. Python toolchain tests (pytest test/python) when models/.venv exists ($UNCLIP_TEST_VENV: another venv);
//      without it the tier is skipped, its test functions counted as skipped and the closing line says so;
//   2. component tests (Vitest in happy-dom, @testing-library/svelte) over test/component/**/*.test.ts:
//      the renderer's state classes and components; without vitest installed the tier is skipped
//      the same way, its tests counted as skipped and named in the closing line;
//   3. node's test runner (with tsx) over test/{unit,integration,e2e}/**/*.test.ts.
// Streams output; exits non-zero if any tier fails. Node's runner prints the last lines
// (its ℹ tests / ℹ pass / ℹ fail summary).
// Extra arguments are passed to node's runner only, e.g. `npm test -- --test-name-pattern=web`
// (the component tier always runs whole; alone: `npx vitest run --config test/component/vitest.config.mjs`).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const extra = process.argv.slice(2);
let failed = false;
// Machine-readable copies of each tier's results, summed into one closing line.
const reports = mkdtempSync(join(tmpdir(), 'unclip-test-'));
const totals = { passed: 0, failed: 0, skipped: 0 };

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) {
    console.error(`test/run.mjs: could not run ${command}: ${result.error.message}`);
    return 1;
  }
  return result.status ?? 1;
}

function findTests(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return entry.name === 'fixtures' || entry.name === 'node_modules' ? [] : findTests(path);
      return entry.name.endsWith('.test.ts') ? [path] : [];
    })
    .sort();
}

/** better-sqlite3 may have been rebuilt for Electron (npm start / npm run dist); tests need Node's ABI. */
function ensureNodeNativeModules() {
  const probe = spawnSync(process.execPath, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], {
    cwd: root,
    encoding: 'utf8',
  });
  if (probe.status === 0) return;
  if (!/NODE_MODULE_VERSION|was compiled against a different Node\.js version/.test(probe.stderr)) return;
  console.log('better-sqlite3 is built for Electron; rebuilding it for Node (npm rebuild better-sqlite3) ...');
  run('npm', ['rebuild', 'better-sqlite3']);
}

/** Test functions (`def test_…`) under test/python, for a tier that cannot run: pytest cannot collect without Python. */
function countPythonTests(dir) {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir, { withFileTypes: true }).reduce((n, entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return n + countPythonTests(path);
    if (!/^test_.*\.py$/.test(entry.name)) return n;
    return n + (readFileSync(path, 'utf8').match(/^\s*(?:async\s+)?def\s+test_\w*\s*\(/gm)?.length ?? 0);
  }, 0);
}

/** Test calls (`test(` / `it(`) in test/component, for a tier that cannot run without vitest. */
function countComponentTests(dir) {
  return findTests(dir).reduce(
    (n, path) => n + (readFileSync(path, 'utf8').match(/^\s*(?:test|it)(?:\.\w+)?\(/gm)?.length ?? 0),
    0,
  );
}

// The CLI and web mode run as built JavaScript (out/node): build them from the sources under test.
if (run(process.execPath, [join(root, 'main', 'build-node.mjs')]) !== 0) {
  console.error('test/run.mjs: npm run build:node failed');
  process.exit(1);
}

// 1. Python
const venv = resolve(root, process.env.UNCLIP_TEST_VENV || join('models', '.venv'));
const python = join(venv, 'bin', 'python');
/** Why the python tier did not run (null when it ran). */
let pythonSkipped = null;
if (!existsSync(join(root, 'test', 'python'))) {
  pythonSkipped = 'test/python does not exist';
  console.log(`SKIP python tier: ${pythonSkipped}`);
} else if (!existsSync(python)) {
  const count = countPythonTests(join(root, 'test', 'python'));
  const shown = venv.startsWith(root) ? relative(root, venv) : venv;
  totals.skipped += count;
  pythonSkipped = `${shown} is missing; its ${count} test functions are counted as skipped`;
  console.log(`SKIP python tier: ${shown} is missing (run \`npm run models:setup\` to create it)`);
} else {
  console.log('\n== pytest test/python ==');
  const junit = join(reports, 'pytest.xml');
  const status = run(python, ['-m', 'pytest', '-q', 'test/python', `--junitxml=${junit}`]);
  if (existsSync(junit)) {
    const suite = readFileSync(junit, 'utf8').match(/<testsuite [^>]*>/)?.[0] ?? '';
    const count = (name) => Number(suite.match(new RegExp(`\\b${name}="(\\d+)"`))?.[1] ?? 0);
    const bad = count('failures') + count('errors');
    totals.failed += bad;
    totals.skipped += count('skipped');
    totals.passed += count('tests') - bad - count('skipped');
  }
  // pytest exits 5 when it collected no tests: not a failure of the suite.
  if (status !== 0 && status !== 5) failed = true;
}

// 2. Components (Vitest)
const componentDir = join(root, 'test', 'component');
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
/** Why the component tier did not run (null when it ran). */
let componentSkipped = null;
if (findTests(componentDir).length === 0) {
  console.log('SKIP component tier: no test files under test/component');
} else if (!existsSync(vitest)) {
  const count = countComponentTests(componentDir);
  totals.skipped += count;
  componentSkipped = `vitest is not installed; its ${count} tests are counted as skipped`;
  console.log('SKIP component tier: vitest is not installed (run `npm install`)');
} else {
  console.log('\n== vitest test/component ==');
  const json = join(reports, 'vitest.json');
  const status = run(process.execPath, [
    vitest,
    'run',
    '--config',
    join('test', 'component', 'vitest.config.mjs'),
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${json}`,
  ]);
  if (existsSync(json)) {
    const report = JSON.parse(readFileSync(json, 'utf8'));
    totals.passed += report.numPassedTests ?? 0;
    totals.failed += report.numFailedTests ?? 0;
    totals.skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
    // A file that failed to load runs no tests: count it as a failure rather than nothing.
    const broken = (report.testResults ?? []).filter((f) => f.status === 'failed' && !f.assertionResults?.length);
    totals.failed += broken.length;
  } else if (status !== 0) {
    totals.failed += 1;
  }
  if (status !== 0) failed = true;
}

// 3. Node (unit, integration, e2e)
ensureNodeNativeModules();
const files = ['unit', 'integration', 'e2e'].flatMap((tier) => findTests(join(root, 'test', tier)));
if (files.length === 0) {
  console.error('test/run.mjs: no test files under test/{unit,integration,e2e}');
  process.exit(1);
}
console.log(`\n== node --test (${files.length} files) ==`);
const status = run(process.execPath, [
  '--import',
  'tsx',
  '--test',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=tap',
  `--test-reporter-destination=${join(reports, 'node.tap')}`,
  '--test-concurrency=1',
  ...extra,
  ...files.map((f) => relative(root, f)),
]);
if (status !== 0) failed = true;
const tap = existsSync(join(reports, 'node.tap')) ? readFileSync(join(reports, 'node.tap'), 'utf8') : '';
const tapCount = (name) => Number(tap.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? 0);
totals.passed += tapCount('pass');
totals.failed += tapCount('fail') + tapCount('cancelled');
totals.skipped += tapCount('skipped') + tapCount('todo');
rmSync(reports, { recursive: true, force: true });

// Every tier together, in the plain form any CI reads.
const notes = [
  pythonSkipped && `python tier did not run: ${pythonSkipped}`,
  componentSkipped && `component tier did not run: ${componentSkipped}`,
].filter(Boolean);
const note = notes.length ? ` (${notes.join('; ')})` : '';
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped${note}`);
process.exit(failed ? 1 : 0);

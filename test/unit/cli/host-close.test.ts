import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';

const HOST = new URL('../../../main/engine/host.ts', import.meta.url).href;
const work = mkdtempSync(join(tmpdir(), 'host-close-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A stand-in engine worker: answers info, and close as `onClose` says ('answer', 'exit' or 'hang'). */
function stubWorker(onClose: 'answer' | 'exit' | 'hang'): string {
  const file = join(work, `${onClose}.mjs`);
  writeFileSync(
    file,
    `import { parentPort } from 'node:worker_threads';
parentPort.on('message', (m) => {
  if (m.type === 'info') parentPort.postMessage({ type: 'result', id: m.id, value: {} });
  if (m.type === 'close' && '${onClose}' === 'answer') parentPort.postMessage({ type: 'result', id: m.id, value: null });
  if (m.type === 'close' && '${onClose}' === 'exit') process.exit(0);
});`,
  );
  return pathToFileURL(file).href;
}

/** Seconds until a process that starts a worker engine, calls info() and close() has exited. */
function secondsToExit(workerUrl: string): number {
  const script = `const { createWorkerEngine } = await import(${JSON.stringify(HOST)});
const engine = createWorkerEngine({ workerUrl: new URL(${JSON.stringify(workerUrl)}) });
await engine.info();
await engine.close();`;
  const file = join(work, 'main.mjs');
  writeFileSync(file, script);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return (performance.now() - t0) / 1000;
}

test('engine.close() lets the process exit as soon as the worker answers or exits', () => {
  // the 5 s fallback timer once kept every CLI process alive after a prompt close
  assert.ok(secondsToExit(stubWorker('answer')) < 3);
  assert.ok(secondsToExit(stubWorker('exit')) < 3);
});

test('engine.close() still ends a hung worker, after the fallback timeout', () => {
  const s = secondsToExit(stubWorker('hang'));
  assert.ok(s >= 4.5 && s < 10, `${s} s`);
});

// The desktop app's engine host (main/app/engine-host.ts) with the engine in a real child process
// standing in for Electron's utilityProcess: when that process dies mid-job the job fails with the
// reason, the next job starts a fresh process, what was saved stays, and a crash loop is cut off.

import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createUtilityEngine, type ForkUtility } from '../../../main/app/engine-host.ts';
import { TINY_PACK_DIR } from '../../../main/engine/packs.ts';
import { createStudioService, type StudioService } from '../../../main/service/studio.ts';
import { parseArgs, type OperationName } from '../../../preload/contract.ts';

const CHILD = fileURLToPath(new URL('./fixtures/engine-child.ts', import.meta.url));

/** utilityProcess.fork over child_process.fork (structured-clone IPC, like Electron's ports). */
const children: ChildProcess[] = [];
const forkChild: ForkUtility = (modulePath, args) => {
  const child = fork(modulePath, args, { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: 'inherit' });
  children.push(child);
  return {
    postMessage: (message) => void child.send(message as never),
    on: (event, listener) => child.on(event, listener),
    // Electron reports a code; a signal death here becomes 128 + the signal's number, as a shell says.
    once: (event, listener) =>
      child.once(event, (code: number | null, signal: NodeJS.Signals | null) =>
        listener(code ?? (signal === 'SIGKILL' ? 137 : 128)),
      ),
    kill: () => child.kill(),
  };
};

let dir: string;
let service: StudioService;

async function call<K extends OperationName>(op: K, raw: unknown) {
  return service.call(op, parseArgs(op, raw));
}

/** Waits until no job is queued or running (each new image's background inversion included). */
async function settle(): Promise<void> {
  for (;;) {
    const active = await call('jobs.list', { status: ['queued', 'running'] });
    if (active.length === 0) return;
    await service.waitForJob(active[0]!.id);
  }
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'engine-host-'));
  service = createStudioService({
    engine: createUtilityEngine({
      modulePath: CHILD,
      args: ['--pack', TINY_PACK_DIR, '--threads', '1'],
      fork: forkChild,
    }),
    libraryDir: join(dir, 'library'),
  });
});
after(async () => {
  await service.close();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('engine host: the engine process dies mid-job', () => {
  const generate = async (prompt: string, settings: Record<string, number>) =>
    (await call('generate', { prompt, settings: { n: 1, ...settings } })).id;

  it(
    'fails the running job with the reason, restarts for the next, keeps what was saved',
    { timeout: 120_000 },
    async () => {
      const first = await service.waitForJob(await generate('a cat', { seed: 1 }));
      assert.equal(first.status, 'done', first.error ?? '');
      await settle();
      assert.equal(children.length, 1);
      const saved = await call('gallery.get', { id: first.imageIds[0]! });

      // A long job; the engine process is killed while it runs the job's decoder.
      let longId = 0;
      const killed = new Promise<void>((resolve) => {
        const off = service.subscribe((event) => {
          if (event.name !== 'progress' || event.payload.jobId !== longId) return;
          if (event.payload.stage !== 'decoder' || event.payload.step < 2) return;
          off();
          children.at(-1)!.kill('SIGKILL');
          resolve();
        });
      });
      longId = await generate('a dog', { seed: 2, stepsDecoder: 400 });
      await killed;
      const failed = await service.waitForJob(longId);
      assert.equal(failed.status, 'failed');
      assert.match(failed.error ?? '', /engine process exited \(code 137\)/);
      assert.deepEqual(failed.imageIds, []);

      // The next job gets a fresh engine process; the image saved before the crash is still there.
      const next = await service.waitForJob(await generate('a fox', { seed: 3 }));
      assert.equal(next.status, 'done', next.error ?? '');
      await settle();
      assert.equal(children.length, 2);
      assert.deepEqual(await call('gallery.get', { id: saved.image.id }), saved);
      assert.equal((await call('gallery.count', {})).count, 2, 'the two finished images, nothing of the killed job');
    },
  );

  it('a crash loop is cut off with a clear message instead of forking forever', { timeout: 120_000 }, async () => {
    const engine = createUtilityEngine({
      modulePath: CHILD,
      args: ['--pack', TINY_PACK_DIR, '--threads', '1'],
      fork: forkChild,
    });
    try {
      for (let i = 0; i < 3; i++) {
        await engine.info();
        const child = children.at(-1)!;
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await gone;
      }
      const before = children.length;
      await assert.rejects(engine.info(), /the engine process crashed 3 times in a minute; restart the studio/);
      assert.equal(children.length, before, 'no fourth process');
    } finally {
      await engine.close();
    }
  });
});

// Crash safety: a writer process is SIGKILLed at random moments during saves, trash, restore,
// empty-trash and job work, many times (UNCLIP_CRASH_ROUNDS, default 50); after each kill the library
// must pass integrity_check with no orphan file, no row without its file, every reported save present
// with its sha256 (unless it was trashed and the trash emptied), and every reported job still there.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Library } from '../../../main/library/library.ts';

const WRITER = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const ROUNDS = Number(process.env.UNCLIP_CRASH_ROUNDS ?? 50);
const SEED = Number(process.env.UNCLIP_CRASH_SEED ?? Date.now() % 100000);

/** Runs the writer until `ready` plus a random delay, kills it, returns what it reported. */
function round(dir: string, seed: number, delayMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, String(seed)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!timer && /(^|\n)ready\n/.test(out)) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`writer exited (${code}) before the kill: ${err}`));
      // A line cut by the kill was not reported.
      resolve(out.split('\n').slice(0, -1));
    });
  });
}

test(`library survives ${ROUNDS} SIGKILLs of its writer (seed ${SEED})`, { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'unclip-crash-'));
  const saved = new Map<number, string>();
  const trashed = new Set<number>();
  const deleted = new Set<number>();
  const jobs = new Set<number>();
  try {
    for (let k = 0; k < ROUNDS; k++) {
      const seed = SEED * 1000 + k;
      const lines = await round(dir, seed, Math.floor(((seed * 7919) % 400) + 5));
      if (!lines.includes('ready')) throw new Error(`round ${k}: the writer never got going`);
      for (const line of lines) {
        const [what, a, b] = line.split(' ');
        if (what === 'saved') saved.set(Number(a), b!);
        else if (what === 'trashed') trashed.add(Number(a));
        else if (what === 'restored') trashed.delete(Number(a));
        else if (what === 'emptied') {
          for (const id of trashed) deleted.add(id);
          trashed.clear();
        } else if (what === 'enqueued') jobs.add(Number(a));
      }
      // Far in the future: every file counts (no grace for fresh ones), every lease has expired.
      const lib = Library.open(dir, { now: () => Date.now() + 3_600_000 });
      try {
        const report = await lib.check({ verifyHashes: true });
        const at = `round ${k} (seed ${seed})`;
        assert.equal(report.integrity, 'ok', at);
        assert.deepEqual(report.missingFiles, [], `${at}: rows without their file`);
        assert.deepEqual(report.orphanFiles, [], `${at}: files without a row`);
        assert.deepEqual(report.damagedFiles, [], `${at}: damaged files`);
        for (const [id, sha] of saved) {
          // A trashed image may be gone (the writer may have been killed inside empty-trash); any other must be there.
          if (deleted.has(id) || trashed.has(id)) continue;
          assert.ok(lib.exists(id), `${at}: image ${id} was lost`);
          assert.equal(lib.get(id).sha256, sha, `${at}: image ${id}`);
        }
        for (const id of jobs) {
          const job = lib.jobs.get(id);
          assert.notEqual(job.status, 'cancelled', `${at}: job ${id} was cancelled by a crash`);
        }
        assert.equal(lib.jobs.counts().running, 0, `${at}: a dead writer's job is still running`);
      } finally {
        lib.close();
      }
    }
    assert.ok(saved.size > ROUNDS / 2, `the writer saved too little to test anything (${saved.size})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

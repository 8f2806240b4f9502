// Crash safety: a writer process (fixtures/crash-writer.ts) is SIGKILLed at random moments while it
// saves, trashes, restores, empties the trash and works jobs, UNCLIP_CRASH_ROUNDS times (default 50).
// After each kill the library is opened here and must hold exactly what the writer reported, give or
// take the one operation the kill cut (all of it or none): integrity_check ok, no orphan file, thumb
// or temp file, no row without its file, every reported image with its sha256 and trash state, every
// reported job there and recovered (never running for a dead writer, never cancelled).
// Seeded (UNCLIP_CRASH_SEED): the seed picks the writers' operations and the kill delays; the exact
// moment a kill lands still depends on the machine's speed.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../../../main/engine/rng.ts';
import { Library, MIME_EXT, type ImageMime } from '../../../main/library/library.ts';

const WRITER = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));
const ROUNDS = Number(process.env.UNCLIP_CRASH_ROUNDS ?? 50);
const SEED = Number(process.env.UNCLIP_CRASH_SEED ?? Math.floor(Math.random() * 1e9));

type ImageState = 'live' | 'trashed';
type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
interface Model {
  images: Map<number, { sha: string; state: ImageState }>;
  jobs: Map<number, JobStatus>;
}

/**
 * Runs the writer and SIGKILLs it `delayMs` after it is ready (or, with `fromSpawn`, after it
 * starts: a kill may land while it opens the library). Returns the lines it finished writing.
 */
function runWriter(dir: string, seed: number, delayMs: number, fromSpawn: boolean): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, String(seed)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => void (timer ??= setTimeout(() => child.kill('SIGKILL'), delayMs));
    if (fromSpawn) arm();
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) arm();
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`the writer exited (${code ?? signal}) before the kill: ${err}`));
      else resolve(out.split('\n').slice(0, -1)); // a line cut by the kill was not reported
    });
  });
}

/** Applies the writer's reports to the model; returns the operation the kill cut, if any. */
function apply(model: Model, lines: string[], at: string): string[] | null {
  let pending: string[] | null = null;
  for (const line of lines) {
    const [what, a, b] = line.split(' ');
    const id = Number(a);
    if (what === 'begin') pending = line.split(' ').slice(1);
    else if (what === 'end') pending = null;
    else if (what === 'saved') {
      const known = model.images.get(id);
      if (known) assert.equal(b, known.sha, `${at}: a job's re-run returned image ${id} with other bytes`);
      model.images.set(id, { sha: b!, state: known?.state ?? 'live' });
    } else if (what === 'trashed') model.images.get(id)!.state = 'trashed';
    else if (what === 'restored') model.images.get(id)!.state = 'live';
    else if (what === 'emptied') {
      for (const [i, image] of model.images) if (image.state === 'trashed') model.images.delete(i);
    } else if (what === 'enqueued') model.jobs.set(id, 'queued');
    else if (what === 'claimed' && a !== 'none') model.jobs.set(id, 'running');
    else if (what === 'completed') model.jobs.set(id, 'done');
  }
  return pending;
}

/** Every file under files/ and thumbs/ belongs to a row; tmp/ and the journal are empty. */
function assertNoStrayFiles(lib: Library, at: string): void {
  const rows = lib.db.prepare('SELECT DISTINCT file_sha256 AS sha, mime FROM images').all() as {
    sha: string;
    mime: ImageMime;
  }[];
  const expected = new Set(rows.map((r) => lib.files.pathOf(r.sha, MIME_EXT[r.mime])));
  const thumbs = new Set(rows.map((r) => lib.files.thumbPathOf(r.sha)));
  for (const f of lib.files.walk(lib.files.filesDir)) assert.ok(expected.has(f.path), `${at}: orphan file ${f.path}`);
  for (const f of lib.files.walk(lib.files.thumbsDir)) assert.ok(thumbs.has(f.path), `${at}: orphan thumb ${f.path}`);
  for (const t of thumbs) assert.ok(existsSync(t), `${at}: thumbnail missing: ${t}`);
  assert.deepEqual(readdirSync(lib.files.tmpDir), [], `${at}: temp files left after open`);
  assert.deepEqual(lib.db.prepare('SELECT * FROM file_journal').all(), [], `${at}: journal left after open`);
}

/** The library matches the model up to the cut operation `pending`; then the model takes what is there. */
function assertMatches(lib: Library, model: Model, pending: string[] | null, at: string): void {
  const [op, a, b] = pending ?? [];
  const rows = new Map(
    (
      lib.db.prepare('SELECT id, file_sha256 AS sha, trashed_at, job_id FROM images').all() as {
        id: number;
        sha: string;
        trashed_at: number | null;
        job_id: number | null;
      }[]
    ).map((r) => [r.id, r]),
  );
  const emptyFates = new Set<string>();
  for (const [id, image] of model.images) {
    const row = rows.get(id);
    const actual = row ? (row.trashed_at === null ? 'live' : 'trashed') : 'gone';
    const allowed: (ImageState | 'gone')[] = [image.state];
    if (op === 'trash' && Number(a) === id) allowed.push('trashed');
    if (op === 'restore' && Number(a) === id) allowed.push('live');
    if (op === 'empty' && image.state === 'trashed') {
      allowed.push('gone');
      emptyFates.add(actual);
    }
    assert.ok(allowed.includes(actual), `${at}: image ${id} is ${actual}, expected ${allowed.join(' or ')}`);
    if (row) assert.equal(row.sha, image.sha, `${at}: image ${id} has other bytes`);
  }
  assert.ok(emptyFates.size <= 1, `${at}: a cut empty-trash deleted only some of the trash`);
  // Rows the writer never reported: only the cut save's, all of them or none, in the gallery.
  const unknown = [...rows.values()].filter((r) => !model.images.has(r.id));
  if (op === 'save') assert.ok([0, Number(a)].includes(unknown.length), `${at}: ${unknown.length} of ${a} saved`);
  else if (op === 'jobsave') {
    assert.ok(unknown.length <= Number(b), `${at}: ${unknown.length} rows for a job of ${b}`);
    assert.ok(
      unknown.every((r) => r.job_id === Number(a)),
      `${at}: unreported rows not of job ${a}`,
    );
  } else assert.deepEqual(unknown, [], `${at}: rows nobody saved`);
  assert.ok(
    unknown.every((r) => r.trashed_at === null),
    `${at}: an unreported row in the trash`,
  );

  const jobs = new Map(
    (lib.db.prepare('SELECT id, status FROM jobs').all() as { id: number; status: JobStatus }[]).map((j) => [
      j.id,
      j.status,
    ]),
  );
  for (const [id, status] of jobs) {
    assert.notEqual(status, 'running', `${at}: job ${id} still running for a dead writer`);
    assert.notEqual(status, 'cancelled', `${at}: job ${id} cancelled by a crash`);
  }
  for (const [id, expected] of model.jobs) {
    const actual = jobs.get(id);
    assert.ok(actual, `${at}: job ${id} vanished`);
    // A running job's writer died: recovery re-queues it, or fails it after its last attempt.
    const allowed: JobStatus[] = expected === 'running' ? ['queued', 'failed'] : [expected];
    if (op === 'claim' && expected === 'queued') allowed.push('failed'); // claimed unreported, then recovered
    if (op === 'complete' && Number(a) === id) allowed.push('done');
    assert.ok(allowed.includes(actual), `${at}: job ${id} is ${actual}, expected ${allowed.join(' or ')}`);
  }
  const unknownJobs = [...jobs.keys()].filter((id) => !model.jobs.has(id));
  assert.ok(unknownJobs.length <= (op === 'enqueue' ? 1 : 0), `${at}: jobs nobody enqueued: ${unknownJobs}`);

  model.images = new Map(
    [...rows.values()].map((r) => [r.id, { sha: r.sha, state: r.trashed_at === null ? 'live' : 'trashed' }]),
  );
  model.jobs = jobs;
}

test(`the library survives ${ROUNDS} SIGKILLs of its writer (UNCLIP_CRASH_SEED=${SEED})`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'unclip-crash-'));
  const rng = mulberry32(SEED);
  const model: Model = { images: new Map(), jobs: new Map() };
  const seen = new Map<string, number>();
  const cut = new Map<string, number>();
  try {
    for (let k = 0; k < ROUNDS; k++) {
      const seed = Math.floor(rng() * 2 ** 32);
      const fromSpawn = rng() < 0.2;
      const delay = Math.floor(fromSpawn ? 150 + rng() * 300 : rng() * 300);
      const at = `round ${k} (UNCLIP_CRASH_SEED=${SEED}, writer seed ${seed}, kill ${delay} ms after ${fromSpawn ? 'spawn' : 'ready'})`;
      const lines = await runWriter(dir, seed, delay, fromSpawn);
      if (!fromSpawn) assert.ok(lines.includes('ready'), `${at}: the writer never got going`);
      for (const line of lines) seen.set(line.split(' ')[0]!, (seen.get(line.split(' ')[0]!) ?? 0) + 1);
      const pending = apply(model, lines, at);
      cut.set(pending?.[0] ?? 'nothing', (cut.get(pending?.[0] ?? 'nothing') ?? 0) + 1);
      const lib = Library.open(dir);
      try {
        const report = await lib.check({ verifyHashes: true });
        assert.equal(report.integrity, 'ok', at);
        assert.deepEqual(report.missingFiles, [], `${at}: rows without their file`);
        assert.deepEqual(report.damagedFiles, [], `${at}: files whose bytes do not match their name`);
        assert.equal(report.missingThumbs, 0, `${at}: rows without their thumbnail`);
        assertNoStrayFiles(lib, at);
        assertMatches(lib, model, pending, at);
        // The semantic index loads from what survived: a live image is its own nearest neighbour.
        const withEmbedding = lib.db
          .prepare(
            'SELECT e.image_id AS id, e.z_i FROM embeddings e JOIN images i ON i.id = e.image_id WHERE i.trashed_at IS NULL ORDER BY random() LIMIT 1',
          )
          .get() as { id: number; z_i: Buffer } | undefined;
        if (withEmbedding) {
          const zi = new Float32Array(new Uint8Array(withEmbedding.z_i).buffer);
          assert.equal(lib.similar(zi, 'c'.repeat(64), 1)[0]?.id, withEmbedding.id, `${at}: semantic search`);
        }
      } finally {
        lib.close();
      }
    }
    const list = (m: Map<string, number>): string => [...m].map(([w, n]) => `${w} ${n}`).join(', ');
    t.diagnostic(`reported: ${list(seen)}; the kill cut: ${list(cut)}`);
    for (const what of ['saved', 'trashed', 'restored', 'emptied', 'enqueued', 'claimed', 'completed'])
      assert.ok(
        (seen.get(what) ?? 0) > 0 || ROUNDS < 20,
        `the writers never reported "${what}": the harness tests too little`,
      );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

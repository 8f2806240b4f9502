// The studio issue's "bad input" bar, scenario by scenario, against the real service over a temp
// library and the scripted engine: each ends with a one-line message that says what happened and
// what to do, the service goes on working, and the images saved before are still there.
// (Elsewhere: the engine process killed mid-job, test/integration/app/engine-host.test.ts; a pack
// that fails to load, packs-settings.test.ts; the studio closed mid-job and opened again,
// service.test.ts "a job queued by a service that closed runs when the library is opened again".)

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs, { cpSync, existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';
import { afterEach, beforeEach, describe, it } from 'node:test';
import sharp from 'sharp';
import { parseArgs, StudioError, type JobView, type StudioEvent } from '../../../preload/contract.ts';
import type { EngineClient } from '../../../main/engine/api.ts';
import { MAX_QUEUED } from '../../../main/library/jobs.ts';
import { createStudioService, type StudioService } from '../../../main/service/studio.ts';
import { createScriptedEngine } from '../web/scripted-engine.ts';

const READ_ONLY_MOUNT = fileURLToPath(new URL('./fixtures/read-only-mount.ts', import.meta.url));

let dir: string;
let libraryDir: string;
const services: StudioService[] = [];

/** A generate that waits for open() before it starts (so a test can act while a job runs). */
function gatedEngine(): { engine: EngineClient; open: () => void; started: Promise<void> } {
  const engine = createScriptedEngine({ stepDelayMs: 1 });
  const generate = engine.generate.bind(engine);
  let open!: () => void;
  let started!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const startedP = new Promise<void>((r) => (started = r));
  let first = true;
  engine.generate = async (req, opts) => {
    if (first) {
      first = false;
      started();
      await gate;
    }
    return generate(req, opts);
  };
  return { engine, open, started: startedP };
}

function service(engine: EngineClient = createScriptedEngine({ stepDelayMs: 1 })): StudioService {
  const s = createStudioService({ engine, libraryDir });
  services.push(s);
  return s;
}

async function call<K extends Parameters<typeof parseArgs>[0]>(s: StudioService, op: K, raw: unknown) {
  return s.call(op, parseArgs(op, raw));
}

/** The job's end as the UI hears it (the job event), whatever the library can still be asked. */
function ended(s: StudioService, id: number): Promise<JobView> {
  return new Promise((resolve) => {
    const off = s.subscribe((e: StudioEvent) => {
      if (e.name === 'job' && e.payload.id === id && ['done', 'failed', 'cancelled'].includes(e.payload.status)) {
        off();
        resolve(e.payload);
      }
    });
  });
}

/** One image generated and saved before the trouble starts; its id. */
async function earlierImage(s: StudioService): Promise<number> {
  const job = await s.waitForJob((await call(s, 'generate', { prompt: 'saved before', settings: { seed: 7 } })).id);
  assert.equal(job.status, 'done', job.error ?? '');
  return job.imageIds[0]!;
}

async function stillThere(s: StudioService, id: number): Promise<void> {
  const image = (await call(s, 'gallery.get', { id })).image;
  assert.equal(image.prompt, 'saved before');
  assert.ok((await s.media('image', id)).path);
}

const rejectsWith = async (p: Promise<unknown>, message: RegExp): Promise<StudioError> => {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof StudioError, String(err));
    assert.match(err.message, message);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err;
  }
  assert.fail(`expected a rejection matching ${message}`);
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'studio-bad-input-'));
  libraryDir = join(dir, 'library');
});
afterEach(async () => {
  for (const s of services.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([length, body, crc]);
}

/** A PNG whose header says width × height (grey), with next to no data: a decompression bomb's header. */
function pngHeader(width: number, height: number): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth; colour type 0 (grey)
  return new Uint8Array(
    Buffer.concat([
      Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
      pngChunk('IHDR', ihdr),
      pngChunk('IDAT', deflateSync(Buffer.alloc(4 * (width + 1)))),
      pngChunk('IEND', Buffer.alloc(0)),
    ]),
  );
}

async function picture(colour: string, size = 32): Promise<Uint8Array> {
  return new Uint8Array(
    await sharp({ create: { width: size, height: size, channels: 3, background: colour } })
      .png()
      .toBuffer(),
  );
}

describe('bad input: dropped files', () => {
  it('leaves out a renamed text file, a PDF, a truncated PNG and a 20000×20000 header, each named; imports the rest', async () => {
    const s = service();
    const before = await earlierImage(s);
    const whole = await picture('#3060c0', 64);
    const out = await call(s, 'gallery.import', {
      files: [
        { name: 'good.png', bytes: await picture('#c03020') },
        { name: 'notes.png', bytes: new TextEncoder().encode('shopping list: apples') },
        { name: 'report.pdf', bytes: new TextEncoder().encode('%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n') },
        { name: 'cut.png', bytes: whole.subarray(0, Math.floor(whole.length * 0.6)) },
        { name: 'bomb.png', bytes: pngHeader(20_000, 20_000) },
        {
          name: 'also-good.webp',
          bytes: new Uint8Array(
            await sharp(await picture('#20a040'))
              .webp()
              .toBuffer(),
          ),
        },
      ],
    });
    assert.equal(out.imported.length, 2);
    assert.equal(out.jobs.length, 2);
    assert.deepEqual(out.refused, [
      { name: 'notes.png', error: 'notes.png: not a PNG, JPEG or WebP image' },
      { name: 'report.pdf', error: 'report.pdf: not a PNG, JPEG or WebP image' },
      { name: 'cut.png', error: 'cut.png: the image data is damaged or cut short' },
      {
        name: 'bomb.png',
        error: 'bomb.png: 20000×20000 is over the 40 Mpx limit (a decompression bomb?); scale it down first',
      },
    ]);
    for (const job of out.jobs) assert.equal((await s.waitForJob(job.id)).status, 'done');
    assert.equal((await call(s, 'gallery.count', {})).count, 3);
    await stillThere(s, before);
  });

  it('refuses a drop with no picture in it, naming every file', async () => {
    const s = service();
    const before = await earlierImage(s);
    await rejectsWith(
      call(s, 'gallery.import', {
        files: [
          { name: 'a.png', bytes: new TextEncoder().encode('a') },
          { name: 'b.png', bytes: pngHeader(20_000, 20_000) },
        ],
      }),
      /^a\.png: not a PNG, JPEG or WebP image; b\.png: 20000×20000 is over the 40 Mpx limit/,
    );
    assert.equal((await call(s, 'gallery.count', {})).count, 1);
    await stillThere(s, before);
  });

  it('a file over the import limit is refused by the contract with its name and the limit', async () => {
    const s = service();
    const before = await earlierImage(s);
    const big = new Uint8Array(64 * 2 ** 20 + 1);
    await rejectsWith(
      Promise.resolve().then(() => call(s, 'gallery.import', { files: [{ name: 'huge.png', bytes: big }] })),
      /^gallery\.import: files\.0\.bytes: huge\.png is 64\.0 MiB, over the 64 MiB limit per file \(got 67108865 bytes\)$/,
    );
    await stillThere(s, before);
  });
});

describe('bad input: Generate pressed again and again', () => {
  it('takes 20 at once; past the bound says the queue is full; the running job still finishes', async () => {
    const { engine, open, started } = gatedEngine();
    const s = service(engine);
    const first = await call(s, 'generate', { prompt: 'saved before', settings: { seed: 1 } });
    await started;
    const twenty: JobView[] = [];
    for (let k = 0; k < 20; k++) twenty.push(await call(s, 'generate', { prompt: `press ${k}`, settings: {} }));
    assert.ok(twenty.every((j) => j.status === 'queued'));
    while ((await call(s, 'library.info', {})).jobs.queued < MAX_QUEUED)
      await call(s, 'generate', { prompt: 'more', settings: {} });
    const full = await rejectsWith(
      call(s, 'generate', { prompt: 'one too many', settings: {} }),
      new RegExp(`^the queue is full \\(${MAX_QUEUED} jobs waiting\\); wait for some to finish or cancel some$`),
    );
    assert.equal(full.code, 'conflict');
    // Cancelling one makes room.
    await call(s, 'jobs.cancel', { id: twenty[0]!.id });
    assert.equal((await call(s, 'generate', { prompt: 'now it fits', settings: {} })).status, 'queued');
    // The running job saves its image and queues its inversion even though the queue is full.
    open();
    const done = await s.waitForJob(first.id);
    assert.equal(done.status, 'done', done.error ?? '');
    const invert = (await call(s, 'jobs.list', { status: ['queued', 'running'], limit: 1000 })).find(
      (j) => j.kind === 'invert',
    );
    assert.ok(invert, 'the follow-up inversion was queued past the bound');
    await stillThere(s, done.imageIds[0]!);
  });
});

describe('bad input: the library folder vanishes while the studio runs', () => {
  it('moved away mid-job: the job fails saying so, nothing else runs; back again, it all works', async () => {
    const { engine, open, started } = gatedEngine();
    const s = service(engine);
    // The first generate is held: make the earlier image with a job queued after it.
    const held = await call(s, 'generate', { prompt: 'held', settings: {} });
    await started;
    const waiting = await call(s, 'generate', { prompt: 'saved before', settings: { seed: 3 } });
    const heldEnd = ended(s, held.id);
    renameSync(libraryDir, `${libraryDir}.away`);
    open();
    const failed = await heldEnd;
    assert.equal(failed.status, 'failed');
    assert.equal(
      failed.error,
      `the library folder ${libraryDir} is gone (deleted, moved, or on a disk that was unplugged); put it back and try again, or choose another library folder (Settings, or --library)`,
    );
    const gone = await rejectsWith(call(s, 'gallery.list', {}), /^the library folder .* is gone \(/);
    assert.equal(gone.code, 'library');
    await rejectsWith(call(s, 'generate', { prompt: 'x', settings: {} }), /is gone/);
    await rejectsWith(s.media('image', 1), /is gone/);
    assert.ok(!existsSync(libraryDir), 'the folder is not made again behind the user’s back');
    await new Promise((r) => setTimeout(r, 300));

    renameSync(`${libraryDir}.away`, libraryDir);
    const queued = await call(s, 'jobs.get', { id: waiting.id });
    assert.equal(queued.status === 'queued' || queued.status === 'running' || queued.status === 'done', true);
    const made = await s.waitForJob(waiting.id);
    assert.equal(made.status, 'done', 'the job queued behind waited for the folder, then ran');
    assert.equal((await call(s, 'jobs.get', { id: held.id })).error, failed.error, 'the failure is on record');
    const retried = await call(s, 'jobs.retry', { id: held.id });
    assert.equal((await s.waitForJob(retried.id)).status, 'done');
    await stillThere(s, made.imageIds[0]!);
  });

  it('deleted: says so without making it again; a copy put back is opened; a restart starts a new one', async () => {
    const s = service();
    const before = await earlierImage(s);
    await s.waitForJob((await call(s, 'jobs.list', { status: ['queued', 'running'] }))[0]?.id ?? 1);
    const backup = join(dir, 'backup');
    cpSync(libraryDir, backup, { recursive: true });
    rmSync(libraryDir, { recursive: true, force: true });
    await rejectsWith(call(s, 'gallery.list', {}), /^the library folder .* is gone \(deleted, moved/);
    await rejectsWith(
      call(s, 'gallery.import', { files: [{ name: 'x.png', bytes: await picture('#fff') }] }),
      /is gone/,
    );
    assert.ok(!existsSync(libraryDir));
    assert.equal((await call(s, 'engine.info', {})).pack.name, 'scripted', 'the rest of the studio works');

    cpSync(backup, libraryDir, { recursive: true });
    await stillThere(s, before);
    assert.equal(
      (await s.waitForJob((await call(s, 'generate', { prompt: 'after', settings: {} })).id)).status,
      'done',
    );

    rmSync(libraryDir, { recursive: true, force: true });
    await s.close();
    services.splice(services.indexOf(s), 1);
    const restarted = service();
    assert.equal((await call(restarted, 'gallery.count', {})).count, 0, 'a new, empty library');
  });
});

describe('bad input: the library folder is read-only', () => {
  // The tests run as root, where chmod stops no write: the file layer is made to answer EROFS as a
  // read-only mount would (the database's open handle keeps writing, as it does on a bind mount
  // remounted read-only).
  function readOnly(root: string): () => void {
    const real = { openSync: fs.openSync, mkdirSync: fs.mkdirSync };
    const refuse = (path: fs.PathLike): void => {
      if (String(path).startsWith(root + '/'))
        throw Object.assign(new Error(`EROFS: read-only file system, open '${String(path)}'`), { code: 'EROFS' });
    };
    // Creating files (openSync 'wx', how the library writes) and folders under `root`.
    fs.openSync = ((path: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
      if (flags === 'wx') refuse(path);
      return real.openSync(path, flags ?? 'r', mode);
    }) as typeof fs.openSync;
    fs.mkdirSync = ((path: fs.PathLike, options?: fs.MakeDirectoryOptions) => {
      refuse(path);
      return real.mkdirSync(path, options);
    }) as typeof fs.mkdirSync;
    syncBuiltinESMExports();
    return () => {
      Object.assign(fs, real);
      syncBuiltinESMExports();
    };
  }

  it('on a real read-only bind mount (where unshare and mount work): the same message, then retry works', async (t) => {
    const probe = spawnSync('unshare', ['-m', 'mount', '--bind', dir, dir], { stdio: 'ignore' });
    if (probe.status !== 0) return t.skip('needs unshare -m and mount (root on Linux)');
    const child = spawnSync('unshare', ['-m', process.execPath, '--import', 'tsx', READ_ONLY_MOUNT, libraryDir], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(child.status, 0, child.stderr);
    const seen = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as {
      before: string;
      readOnly: { status: string; error: string };
      listed: string[];
      readable: string;
      retried: string;
    };
    assert.equal(seen.before, 'done');
    assert.equal(seen.readOnly.status, 'failed');
    assert.match(
      seen.readOnly.error,
      /: the library folder is read-only \(EROFS\); make it writable, or choose another/,
    );
    assert.deepEqual(seen.listed, ['saved before']);
    assert.equal(seen.readable, 'saved before');
    assert.equal(seen.retried, 'done');
  });

  it('a save fails with what happened and what to do; earlier images stay; writable again, retry works', async () => {
    const s = service();
    const before = await earlierImage(s);
    const restore = readOnly(libraryDir);
    let job: JobView;
    try {
      job = await s.waitForJob((await call(s, 'generate', { prompt: 'on a read-only disk', settings: {} })).id);
    } finally {
      restore();
    }
    assert.equal(job.status, 'failed');
    assert.match(
      job.error ?? '',
      /^cannot write (files|thumbs)\/[0-9a-f]{2}\/[0-9a-f]{64}\.(png|webp) in .*library: the library folder is read-only \(EROFS\); make it writable, or choose another library folder \(Settings, or --library\)$/,
    );
    await stillThere(s, before);
    assert.equal((await call(s, 'gallery.count', {})).count, 1, 'nothing half-saved');
    assert.equal((await s.waitForJob((await call(s, 'jobs.retry', { id: job.id })).id)).status, 'done');
  });
});

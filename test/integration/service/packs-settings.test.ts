// The Models and Settings operations over a real worker engine and copies of the tiny pack: listing,
// verifying (a corrupted copy fails with the file named), importing (ok, duplicate, not a pack,
// corrupt: nothing left behind), switching packs (the engine restarts, a queued job still runs),
// the settings file (persisted, corrupt → defaults), library relocation, and web mode's routes.

import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { parseArgs, StudioError, type StudioEvent } from '../../../preload/contract.ts';
import { createWorkerEngine } from '../../../main/engine/host.ts';
import { TINY_PACK_DIR } from '../../../main/engine/packs.ts';
import type { EngineConfig } from '../../../main/service/engine-slot.ts';
import { loadSettings, settingsFile } from '../../../main/service/settings.ts';
import { createStudioService, type StudioService } from '../../../main/service/studio.ts';
import { parseWebArgs } from '../../../main/web/serve.ts';
import { startWebServer } from '../../../main/web/server.ts';
import { createScriptedEngine } from '../web/scripted-engine.ts';

let root: string;
const services: StudioService[] = [];

/** A copy of the tiny pack under `parent`/`folder`, its manifest renamed to `name`. */
function packCopy(parent: string, folder: string, name = folder): string {
  const dir = join(parent, folder);
  cpSync(TINY_PACK_DIR, dir, { recursive: true });
  const file = join(dir, 'manifest.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), name }));
  return dir;
}

/** Flips one byte in the middle of a file. */
function corrupt(file: string): void {
  const bytes = readFileSync(file);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(file, bytes);
}

const bundled = (): string => join(root, 'bundled');
const dataDir = (): string => join(root, 'data');

function open(options: { library?: string; scripted?: boolean; stepDelayMs?: number } = {}): StudioService {
  const config: EngineConfig = { packDir: join(bundled(), 'tiny') };
  const start = (c: EngineConfig) => createWorkerEngine({ ...c, threads: c.threads ?? 1 });
  const service = createStudioService({
    engine: options.scripted ? createScriptedEngine({ stepDelayMs: options.stepDelayMs ?? 1 }) : start(config),
    ...(options.scripted ? {} : { engineConfig: config, startEngine: start }),
    libraryDir: options.library ?? join(root, 'library'),
    dataDir: dataDir(),
    bundledPacksDirs: [bundled()],
  });
  services.push(service);
  return service;
}

async function call<K extends Parameters<typeof parseArgs>[0]>(s: StudioService, op: K, raw: unknown) {
  return s.call(op, parseArgs(op, raw));
}

async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StudioError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    assert.ok(!err.message.includes('\n'), 'one line');
    return true;
  });
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'studio-packs-'));
  mkdirSync(bundled());
  packCopy(bundled(), 'tiny');
  packCopy(bundled(), 'tiny-bad');
  corrupt(join(bundled(), 'tiny-bad', 'decoder.onnx'));
  mkdirSync(join(bundled(), 'not-a-pack'));
  writeFileSync(join(bundled(), 'not-a-pack', 'manifest.json'), '{"name": 3}');
});
afterEach(async () => {
  for (const s of services.splice(0)) await s.close();
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('packs: list, verify, import, use', () => {
  it('lists the bundled packs with their networks and size; a broken folder says why', async () => {
    const s = open();
    const list = await call(s, 'packs.list', {});
    assert.deepEqual(
      list.packs.map((p) => [p.name, p.source, p.active]),
      [
        ['tiny', 'bundled', true],
        ['tiny-bad', 'bundled', false],
      ],
    );
    const tiny = list.packs[0]!;
    assert.equal(tiny.schemaVersion, 1);
    assert.ok(tiny.bytes > 10_000_000 && tiny.bytes < 30_000_000, String(tiny.bytes));
    assert.ok(tiny.networks.includes('decoder') && tiny.networks.includes('super_res_last'));
    assert.deepEqual(tiny.optional, { arPrior: false, imageEncoder: true, superRes: true });
    assert.equal(list.broken.length, 1);
    assert.match(list.broken[0]!.error, /not-a-pack.*manifest\.json/);
    assert.equal(list.userDir, join(dataDir(), 'models'));
  });

  it('verifies a pack, and names the corrupted file of a damaged copy', async () => {
    const s = open();
    const listed = Object.keys(JSON.parse(readFileSync(join(TINY_PACK_DIR, 'manifest.json'), 'utf8')).files).length;
    const good = await call(s, 'packs.verify', { name: 'tiny' });
    assert.ok(good.ok, good.summary);
    assert.equal(good.files.length, listed);
    assert.match(good.summary, new RegExp(`^all ${listed} files match`));
    const bad = await call(s, 'packs.verify', { name: 'tiny-bad' });
    assert.equal(bad.ok, false);
    assert.deepEqual(
      bad.files.filter((f) => !f.ok).map((f) => f.name),
      ['decoder.onnx'],
    );
    assert.match(
      bad.summary,
      new RegExp(`^1 of ${listed} files fail: decoder\\.onnx: sha256 differs from manifest\\.json`),
    );
    await rejects(call(s, 'packs.verify', { name: 'nope' }), 'not_found', /no pack named "nope"/);
  });

  it('imports a pack folder, refusing duplicates, non-packs and corrupt files with nothing left behind', async () => {
    const s = open();
    const sources = join(root, 'sources');
    mkdirSync(sources, { recursive: true });
    const two = packCopy(sources, 'two', 'tiny-two');
    writeFileSync(join(two, 'training-log.bin'), 'not part of the pack');
    const added = await call(s, 'packs.import', { dir: two });
    assert.equal(added.name, 'tiny-two');
    assert.equal(added.source, 'user');
    assert.equal(added.dir, join(dataDir(), 'models', 'tiny-two'));
    assert.ok(existsSync(join(added.dir, 'NOTICE.md')), 'notices come along');
    assert.ok(!existsSync(join(added.dir, 'training-log.bin')), 'files outside the pack stay behind');
    assert.ok((await call(s, 'packs.verify', { name: 'tiny-two' })).ok);

    await rejects(call(s, 'packs.import', { dir: two }), 'conflict', /"tiny-two" is already installed/);
    await rejects(call(s, 'packs.import', { dir: join(bundled(), 'tiny') }), 'conflict', /"tiny" is already installed/);
    const empty = join(sources, 'empty');
    mkdirSync(empty);
    await rejects(call(s, 'packs.import', { dir: empty }), 'invalid_argument', /empty is not a model pack/);
    await rejects(call(s, 'packs.import', { dir: join(sources, 'missing') }), 'invalid_argument', /is not a folder/);
    const three = packCopy(sources, 'three', 'tiny-three');
    corrupt(join(three, 'prior.onnx'));
    await rejects(
      call(s, 'packs.import', { dir: three }),
      'invalid_argument',
      /prior\.onnx: sha256 does not match manifest\.json .*nothing was imported/,
    );
    assert.deepEqual(readdirSync(join(dataDir(), 'models')), ['tiny-two'], 'no half-copied pack');
  });

  it('uses another pack: the engine restarts, a queued job still finishes, the choice is saved', async () => {
    const s = open();
    const events: StudioEvent[] = [];
    s.subscribe((e) => events.push(e));
    const job = await call(s, 'generate', {
      prompt: 'a red apple',
      settings: { seed: 3, stepsPrior: 2, stepsDecoder: 2, stepsSuperRes: 2 },
    });
    const info = await call(s, 'packs.use', { name: 'tiny-two' });
    assert.equal(info.pack.name, 'tiny-two');
    assert.equal((await call(s, 'engine.info', {})).pack.dir, join(dataDir(), 'models', 'tiny-two'));
    assert.ok(events.some((e) => e.name === 'engine' && e.payload.pack.name === 'tiny-two'));
    const done = await s.waitForJob(job.id);
    assert.equal(done.status, 'done', done.error ?? '');
    assert.equal((await call(s, 'gallery.count', {})).count, 1);
    const active = (await call(s, 'packs.list', {})).packs.filter((p) => p.active).map((p) => p.name);
    assert.deepEqual(active, ['tiny-two']);

    const loaded = loadSettings(dataDir());
    const saved = loaded.settings;
    assert.equal(saved.pack, join(dataDir(), 'models', 'tiny-two'));
    // What the next start (web mode here) reads: the saved pack, unless a flag names another.
    assert.equal(parseWebArgs([], loaded, {}).packDir, saved.pack);
    assert.equal(parseWebArgs(['--pack', TINY_PACK_DIR], loaded, {}).packDir, TINY_PACK_DIR);
  });

  it('a pack that fails to load leaves the engine running as before', async () => {
    const s = open();
    await rejects(call(s, 'packs.use', { name: 'tiny-bad' }), 'engine', /decoder\.onnx.*sha256.*it runs as before/);
    assert.equal((await call(s, 'engine.info', {})).pack.dir, join(bundled(), 'tiny'));
  });
});

describe('settings', () => {
  it('reports backends with reasons and threads; restarts the engine for threads; refuses too many', async () => {
    const s = open();
    const view = await call(s, 'settings.get', {});
    const cpu = view.engine.backends?.find((b) => b.backend === 'cpu');
    assert.deepEqual(cpu, { backend: 'cpu', available: true });
    for (const b of view.engine.backends ?? []) if (!b.available) assert.ok(b.reason, `${b.backend} says why`);
    assert.equal(view.engine.runningThreads, 1);
    assert.ok(view.engine.restartable);
    const updated = await call(s, 'settings.update', { threads: 2 });
    assert.equal(updated.engine.threads, 2);
    assert.match(updated.note ?? '', /engine restarted: 2 threads/);
    assert.equal((await call(s, 'engine.info', {})).threads, 2);
    await rejects(call(s, 'settings.update', { threads: 1000 }), 'invalid_argument', /threads: at most \d+/);
  });

  it('persists across a new service; a corrupt file means defaults and a warning, kept aside when saved', async () => {
    const a = open({ scripted: true });
    await call(a, 'settings.update', { theme: 'dark' });
    await a.close();
    services.splice(services.indexOf(a), 1);
    const b = open({ scripted: true });
    const view = await call(b, 'settings.get', {});
    assert.equal(view.theme, 'dark');
    assert.equal(view.warning, undefined);
    assert.equal(view.engine.restartable, false);
    await rejects(call(b, 'settings.update', { threads: 1 }), 'conflict', /fixed engine/);

    writeFileSync(settingsFile(dataDir()), '{"theme": "purple"');
    const c = open({ scripted: true });
    const broken = await call(c, 'settings.get', {});
    assert.equal(broken.theme, 'system');
    assert.match(broken.warning ?? '', /settings\.json: not valid JSON; using the defaults/);
    await call(c, 'settings.update', { theme: 'light' });
    assert.equal(readFileSync(`${settingsFile(dataDir())}.bad`, 'utf8'), '{"theme": "purple"');
    assert.equal(loadSettings(dataDir()).settings.theme, 'light');
    writeFileSync(settingsFile(dataDir()), '{"theme": "purple"}');
    assert.match(loadSettings(dataDir()).warning ?? '', /theme: /);
    rmSync(settingsFile(dataDir()));
  });

  it('moves the library now when no job waits, else at the next start (said so)', async () => {
    const first = join(root, 'lib-a');
    const s = open({ scripted: true, library: first, stepDelayMs: 30 });
    assert.equal((await call(s, 'library.info', {})).dir, first);
    const second = join(root, 'lib-b');
    const moved = await call(s, 'settings.update', { libraryDir: second });
    assert.equal(moved.library.current, second);
    assert.equal(moved.library.pending, false);
    assert.match(moved.note ?? '', /The library is now .*lib-b/);
    assert.equal((await call(s, 'library.info', {})).dir, second);

    await call(s, 'generate', { prompt: 'slow', settings: { stepsDecoder: 200 } });
    const later = await call(s, 'settings.update', { libraryDir: first });
    assert.equal(later.library.current, second);
    assert.equal(later.library.saved, first);
    assert.ok(later.library.pending);
    assert.match(later.note ?? '', /moves to .*lib-a when the studio starts again: 1 job is queued or running/);
    assert.equal(loadSettings(dataDir()).settings.libraryDir, first);

    await rejects(call(s, 'settings.update', { libraryDir: '/proc/x' }), 'invalid_argument', /under \/proc/);
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    await rejects(call(s, 'settings.update', { libraryDir: file }), 'invalid_argument', /is not a folder/);
    rmSync(settingsFile(dataDir()));
  });
});

describe('web mode: the new operations over HTTP', () => {
  it('serves packs and settings, and refuses a malformed update with 400', async () => {
    const s = open({ scripted: true });
    const server = await startWebServer({ service: s, staticDir: join(root, 'no-renderer') });
    try {
      const post = (op: string, body: unknown) =>
        fetch(`${server.origin}/api/${op}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` },
          body: JSON.stringify(body),
        });
      const list = await post('packs.list', {});
      assert.equal(list.status, 200);
      const reply = (await list.json()) as { ok: boolean; value: { packs: { name: string }[] } };
      assert.ok(reply.value.packs.some((p) => p.name === 'tiny'));
      const bad = await post('settings.update', { theme: 'purple' });
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { error: { message: string } }).error.message, /^settings\.update: theme: /);
      assert.equal((await post('settings.update', {})).status, 400);
    } finally {
      await server.close();
    }
  });
});

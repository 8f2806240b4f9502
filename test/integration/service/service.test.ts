// The studio service over a real library and the scripted engine: every engine operation is a
// queued job whose images land in the library with their latents, recipe and lineage.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import sharp from 'sharp';
import { parseArgs, StudioError, type JobView, type StudioEvent } from '../../../preload/contract.ts';
import { Library } from '../../../main/library/library.ts';
import { readPngMetadata } from '../../../main/library/png-metadata.ts';
import { createStudioService, type StudioService } from '../../../main/service/studio.ts';
import { createScriptedEngine, scriptedInfo } from '../web/scripted-engine.ts';

let dir: string;
const services: StudioService[] = [];

function open(options: { stepDelayMs?: number; libraryDir?: string } = {}): StudioService {
  const service = createStudioService({
    engine: createScriptedEngine({ stepDelayMs: options.stepDelayMs ?? 1 }),
    libraryDir: options.libraryDir ?? join(dir, 'library'),
  });
  services.push(service);
  return service;
}

/** Calls an operation the way every transport does: validated by the contract first. */
async function call<K extends Parameters<typeof parseArgs>[0]>(s: StudioService, op: K, raw: unknown) {
  return s.call(op, parseArgs(op, raw));
}

async function settle(s: StudioService): Promise<JobView[]> {
  for (;;) {
    const active = await call(s, 'jobs.list', { status: ['queued', 'running'] });
    if (active.length === 0) return call(s, 'jobs.list', {});
    await s.waitForJob(active[0]!.id);
  }
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'studio-service-'));
});
afterEach(async () => {
  for (const s of services.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('studio service: generation through the queue', () => {
  it('queues, runs, saves with z_i, z_t and recipe, then inverts in the background', async () => {
    const s = open();
    const events: StudioEvent[] = [];
    s.subscribe((e) => events.push(e));
    const job = await call(s, 'generate', { prompt: 'a red apple', settings: { n: 2, seed: 10 } });
    assert.equal(job.status, 'queued');
    const done = await s.waitForJob(job.id);
    assert.equal(done.status, 'done', done.error ?? '');
    assert.equal(done.imageIds.length, 2);
    const jobs = await settle(s);
    assert.equal(jobs.filter((j) => j.kind === 'invert' && j.status === 'done').length, 2);

    const page = await call(s, 'gallery.list', {});
    assert.deepEqual(page.items.map((i) => i.seed).sort(), [10, 11]);
    for (const image of page.items) {
      assert.equal(image.kind, 'generated');
      assert.equal(image.prompt, 'a red apple');
      assert.equal(image.pack.sha256, scriptedInfo.pack.fingerprint);
      assert.ok(image.hasEmbedding && image.inverted);
      assert.equal(image.settings.n, 1, 'each image remakes alone');
      assert.equal(image.settings.seed, image.seed);
      const file = await s.media('image', image.id);
      const md = readPngMetadata(readFileSync(file.path));
      assert.match(md.parameters ?? '', /^a red apple\n.*Seed: \d+.*Model: scripted/s);
      assert.equal((md.unclip as { prompt: string }).prompt, 'a red apple');
    }
    const detail = await call(s, 'gallery.get', { id: done.imageIds[0] });
    assert.equal(detail.inversion?.psnr, 31.5);
    assert.match(detail.parameters, /Steps: 3/);
    assert.ok(events.some((e) => e.name === 'progress' && e.payload.jobId === job.id));
    assert.ok(events.some((e) => e.name === 'library' && e.payload.added.length === 2));
    assert.ok(events.some((e) => e.name === 'job' && e.payload.id === job.id && e.payload.status === 'running'));
  });

  it('runs jobs one at a time in queue order; moves and cancels', async () => {
    const s = open({ stepDelayMs: 5 });
    const a = await call(s, 'generate', { prompt: 'first', settings: { seed: 1 } });
    const b = await call(s, 'generate', { prompt: 'second', settings: { seed: 2 } });
    const c = await call(s, 'generate', { prompt: 'third', settings: { seed: 3 } });
    await call(s, 'jobs.move', { id: c.id, to: { before: b.id } });
    const cancelled = await call(s, 'jobs.cancel', { id: b.id });
    assert.equal(cancelled.status, 'cancelled');
    await settle(s);
    const [ja, jc] = [await call(s, 'jobs.get', { id: a.id }), await call(s, 'jobs.get', { id: c.id })];
    assert.equal(ja.status, 'done');
    assert.equal(jc.status, 'done');
    assert.ok(ja.finishedAt! <= jc.startedAt!, 'one at a time, a before c');
    assert.equal((await call(s, 'jobs.get', { id: b.id })).imageIds.length, 0);
  });

  it('cancels a running job', async () => {
    const s = open({ stepDelayMs: 20 });
    const job = await call(s, 'generate', { prompt: 'slow', settings: { stepsDecoder: 200 } });
    await new Promise((r) => setTimeout(r, 100));
    await call(s, 'jobs.cancel', { id: job.id });
    const end = await s.waitForJob(job.id);
    assert.equal(end.status, 'cancelled');
    assert.equal((await call(s, 'gallery.count', {})).count, 0);
  });

  it('a job queued by a service that closed runs when the library is opened again', async () => {
    const first = open({ stepDelayMs: 20 });
    const saved = await first.waitForJob((await call(first, 'generate', { prompt: 'zero', settings: {} })).id);
    await settle(first);
    const slow = await call(first, 'generate', { prompt: 'one', settings: { stepsDecoder: 100 } });
    const waiting = await call(first, 'generate', { prompt: 'two', settings: {} });
    await new Promise((r) => setTimeout(r, 60));
    await first.close();
    services.splice(services.indexOf(first), 1);
    const second = open();
    const [x, y] = [await second.waitForJob(slow.id), await second.waitForJob(waiting.id)];
    assert.equal(x.status, 'done');
    assert.equal(y.status, 'done');
    assert.equal(x.attempts, 1, 'a job given back on close does not spend an attempt');
    // The window closed (or the studio quit) mid-job: what was saved before is all there.
    assert.equal((await call(second, 'gallery.get', { id: saved.imageIds[0] })).image.prompt, 'zero');
    assert.equal((await call(second, 'gallery.count', {})).count, 3);
  });

  it('maps engine failures to a failed job with a one-line error', async () => {
    const engine = createScriptedEngine();
    engine.generate = async () => {
      throw Object.assign(new Error('settings.stepsDecoder: must be an integer\n    at stack'), { name: 'InputError' });
    };
    const s = createStudioService({ engine, libraryDir: join(dir, 'lib2') });
    services.push(s);
    const job = await call(s, 'generate', { prompt: 'x', settings: {} });
    const end = await s.waitForJob(job.id);
    assert.equal(end.status, 'failed');
    assert.equal(end.error, 'settings.stepsDecoder: must be an integer');
  });
});

describe('studio service: edits from stored latents', () => {
  it('vary, interpolate and textdiff save frames with lineage', async () => {
    const s = open();
    const g = await s.waitForJob((await call(s, 'generate', { prompt: 'a cat', settings: { n: 2, seed: 1 } })).id);
    const [p, q] = g.imageIds as [number, number];
    await settle(s);

    const v = await s.waitForJob((await call(s, 'vary', { id: p, n: 3, eta: 0.8, seed: 5 })).id);
    assert.equal(v.status, 'done', v.error ?? '');
    assert.equal(v.imageIds.length, 3);
    const vd = await call(s, 'gallery.get', { id: v.imageIds[1] });
    assert.equal(vd.image.kind, 'variation');
    assert.deepEqual(
      vd.parents.map((e) => [e.id, e.op, e.params.eta, e.params.index]),
      [[p, 'vary', 0.8, 1]],
    );
    assert.ok(vd.image.hasEmbedding, "a variation keeps its source's z_i");

    const i = await s.waitForJob((await call(s, 'interpolate', { a: p, b: q, frames: 3 })).id);
    assert.equal(i.status, 'done', i.error ?? '');
    const mid = await call(s, 'gallery.get', { id: i.imageIds[1] });
    assert.deepEqual(
      mid.parents.map((e) => [e.id, e.role, e.params.t]),
      [
        [p, 'a', 0.5],
        [q, 'b', 0.5],
      ],
    );

    const t = await s.waitForJob((await call(s, 'textdiff', { id: q, to: 'a dog', thetas: [0.2, 0.4] })).id);
    assert.equal(t.status, 'done', t.error ?? '');
    const td = await call(s, 'gallery.get', { id: t.imageIds[0] });
    assert.equal(td.image.kind, 'textdiff');
    assert.equal(td.parents[0]?.params.to, 'a dog');
    // Frames keep the z_i their decoder was conditioned on, so "more like this" works on them at once.
    assert.ok(td.image.hasEmbedding && mid.image.hasEmbedding);
    const near = await call(s, 'gallery.similar', { id: t.imageIds[0], k: 3 });
    assert.ok(near.length > 0);

    const pd = await call(s, 'gallery.get', { id: p });
    assert.equal(pd.children.length, 3 + 3, 'three variations and three interpolation frames');

    // A text-diff frame has no x_T yet: editing it inverts it first.
    const again = await s.waitForJob((await call(s, 'vary', { id: t.imageIds[0], n: 1 })).id);
    assert.equal(again.status, 'done', again.error ?? '');
    assert.ok((await call(s, 'gallery.get', { id: t.imageIds[0] })).image.inverted);
  });

  it('refuses images from another pack and unknown ids', async () => {
    const s = open();
    const g = await s.waitForJob((await call(s, 'generate', { prompt: 'a cat', settings: {} })).id);
    await settle(s);
    const lib = Library.open(join(dir, 'library'));
    lib.db
      .prepare("UPDATE images SET pack_sha256 = ?, pack_name = 'other' WHERE id = ?")
      .run('e'.repeat(64), g.imageIds[0]);
    lib.close();
    const v = await s.waitForJob((await call(s, 'vary', { id: g.imageIds[0] })).id);
    assert.equal(v.status, 'failed');
    assert.match(v.error ?? '', /made with pack "other".*engine runs "scripted"/);
    await assert.rejects(
      call(s, 'vary', { id: 999 }),
      (e: unknown) => e instanceof StudioError && e.code === 'not_found',
    );
  });
});

describe('studio service: gallery, search, boards, trash', () => {
  it('searches by text and by embedding, stars, boards, trashes and restores', async () => {
    const s = open();
    await s.waitForJob((await call(s, 'generate', { prompt: 'red apple on a table', settings: { seed: 1 } })).id);
    await s.waitForJob((await call(s, 'generate', { prompt: 'blue ocean waves', settings: { seed: 2 } })).id);
    await s.waitForJob((await call(s, 'generate', { prompt: 'green apple tree', settings: { seed: 3 } })).id);
    const all = (await call(s, 'gallery.list', {})).items;
    assert.deepEqual(
      all.map((i) => i.prompt),
      ['green apple tree', 'blue ocean waves', 'red apple on a table'],
    );
    assert.deepEqual((await call(s, 'gallery.list', { text: 'apple' })).items.map((i) => i.prompt).sort(), [
      'green apple tree',
      'red apple on a table',
    ]);
    const near = await call(s, 'gallery.similar', { text: 'blue ocean waves', k: 1 });
    assert.equal(near[0]?.prompt, 'blue ocean waves');
    const like = await call(s, 'gallery.similar', { id: all[0]!.id, k: 5 });
    assert.ok(!like.some((i) => i.id === all[0]!.id), 'more like this leaves the image itself out');

    await call(s, 'gallery.star', { ids: [all[1]!.id], starred: true });
    assert.deepEqual(
      (await call(s, 'gallery.list', { starred: true })).items.map((i) => i.id),
      [all[1]!.id],
    );
    const board = await call(s, 'boards.create', { name: 'Fruit 🍎' });
    await call(s, 'boards.add', { boardId: board.id, ids: [all[0]!.id, all[2]!.id] });
    assert.equal((await call(s, 'gallery.list', { boardId: board.id })).items.length, 2);
    assert.equal((await call(s, 'boards.list', {}))[0]?.count, 2);

    await call(s, 'gallery.trash', { ids: [all[0]!.id] });
    assert.equal((await call(s, 'gallery.count', {})).count, 2);
    assert.equal((await call(s, 'gallery.count', { trashed: true })).count, 1);
    await call(s, 'gallery.restore', { ids: [all[0]!.id] });
    await call(s, 'gallery.trash', { ids: [all[0]!.id] });
    assert.deepEqual(await call(s, 'gallery.emptyTrash', {}), { deleted: 1, filesRemoved: 1 });
    await assert.rejects(
      s.media('image', all[0]!.id),
      (e: unknown) => e instanceof StudioError && e.code === 'not_found',
    );
    const info = await call(s, 'library.info', {});
    assert.equal(info.images, 2);
    assert.equal(info.packs[0]?.name, 'scripted');
  });
});

describe('studio service: import and export', () => {
  it('imports pictures (queued inversion), refuses a drop of bad files, exports and merges into another library', async () => {
    const s = open();
    const png = new Uint8Array(
      await sharp({ create: { width: 16, height: 16, channels: 3, background: '#c03020' } })
        .png()
        .toBuffer(),
    );
    await assert.rejects(
      call(s, 'gallery.import', { files: [{ name: 'notes.png', bytes: new TextEncoder().encode('not an image') }] }),
      /notes\.png: not a PNG, JPEG or WebP image/,
    );
    assert.equal((await call(s, 'gallery.count', {})).count, 0, 'a bad file stores nothing');
    // (a drop mixing good and bad files: test/integration/service/bad-input.test.ts)

    const imported = await call(s, 'gallery.import', { files: [{ name: 'ok.png', bytes: png }] });
    assert.equal(imported.imported.length, 1);
    assert.equal(imported.jobs.length, 1);
    assert.equal((await s.waitForJob(imported.jobs[0]!.id)).status, 'done');
    const again = await call(s, 'gallery.import', { files: [{ name: 'copy.png', bytes: png }] });
    assert.deepEqual(again.duplicates, imported.imported);
    assert.deepEqual(again.imported, []);

    const g = await s.waitForJob((await call(s, 'generate', { prompt: 'a kite', settings: { seed: 4 } })).id);
    await settle(s);
    const v = await s.waitForJob((await call(s, 'vary', { id: g.imageIds[0], n: 1 })).id);
    await settle(s);

    const out = join(dir, 'export');
    const view = await call(s, 'gallery.export', { all: true, dir: out });
    assert.equal(view.written, 3);
    const names = readdirSync(out);
    // The import and the generated image were inverted (in the background); the variation not yet.
    assert.equal(names.filter((n) => n.endsWith('.latent.safetensors')).length, 2);
    assert.equal((await call(s, 'gallery.export', { all: true, dir: out })).skipped, 3);

    const other = open({ libraryDir: join(dir, 'other') });
    const files = names.map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(out, name))) }));
    const merged = await call(other, 'gallery.import', { files });
    assert.equal(merged.imported.length, 3);
    assert.equal(merged.jobs.length, 1, 'two latents came with their files: only the variation is inverted');
    const variation = (await call(other, 'gallery.list', {})).items.find(
      (i) => i.prompt === 'a kite' && (i.settings.recipe as { kind?: string } | undefined)?.kind === 'variation',
    );
    assert.ok(variation, 'the variation came back with its recipe');
    assert.equal(
      (await call(other, 'gallery.get', { id: variation.id })).parents.length,
      1,
      'lineage kept across libraries',
    );
    const twice = await call(other, 'gallery.import', { files });
    assert.equal(twice.imported.length, 0);
    assert.equal(twice.duplicates.length, 3);
    assert.equal(v.imageIds.length, 1);
  });

  it('refuses to export into a system folder', async () => {
    const s = open();
    await assert.rejects(call(s, 'gallery.export', { all: true, dir: '/proc/x' }), /export: /);
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { DB_FILE } from '../../../main/library/db.ts';
import { EmbeddingIndex } from '../../../main/library/embedding-index.ts';
import { LibraryError } from '../../../main/library/errors.ts';
import { Library, MAX_PROMPT_CHARS, type NewImage } from '../../../main/library/library.ts';
import { SCHEMA_VERSION } from '../../../main/library/migrations.ts';

const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'unclip-lib-'));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const pack = { name: 'test', sha256: 'a'.repeat(64) };
const png = (r: number, g = 0, b = 0): Promise<Buffer> =>
  sharp({ create: { width: 8, height: 8, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();
const vec = (...v: number[]): Float32Array => {
  const out = new Float32Array(4);
  out.set(v);
  return out;
};
async function image(prompt: string, r: number, extra: Partial<NewImage> = {}): Promise<NewImage> {
  return {
    kind: 'generated',
    prompt,
    settings: { steps: 3 },
    seed: r,
    pack,
    width: 8,
    height: 8,
    bytes: await png(r),
    ...extra,
  };
}
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('library', () => {
  test('save → get round trip with files, thumbnails and latents bit-exact', async () => {
    const lib = Library.open(tempDir());
    const bytes = await png(10);
    const zi = vec(1, 2, 3, 4.5);
    const xT = new Float32Array([0.1, -0.2, 0.3]);
    const [id] = await lib.save([
      {
        ...(await image('a cat', 10)),
        bytes,
        embedding: { zi, zt: vec(0, 1) },
        inversion: { zi, xT, shape: [3, 1, 1], settings: { steps: 50 }, psnr: 36.5 },
      },
    ]);
    const rec = lib.get(id!);
    assert.equal(rec.prompt, 'a cat');
    assert.equal(rec.sha256, sha(bytes));
    assert.deepEqual(rec.settings, { steps: 3 });
    assert.ok(rec.inverted && rec.hasEmbedding);
    assert.equal(sha(readFileSync(lib.filePath(rec))), rec.sha256);
    assert.ok(existsSync(await lib.thumbPath(id!)));
    const l = lib.latents(id!);
    assert.deepEqual([...l.zi], [...zi]);
    assert.deepEqual([...l.inversion!.xT], [...xT]);
    assert.equal(l.inversion!.psnr, 36.5);
    lib.close();
  });

  test('a job saved twice keeps one set of images', async () => {
    const lib = Library.open(tempDir());
    const job = lib.jobs.enqueue('generate', {});
    const items = [await image('x', 1), await image('y', 2)];
    const a = await lib.save(items, { jobId: job.id });
    const b = await lib.save(items, { jobId: job.id });
    assert.deepEqual(a, b);
    assert.equal(lib.count(), 2);
    assert.deepEqual(lib.jobs.get(job.id).imageIds, a);
    lib.close();
  });

  test('hostile prompts are stored and found verbatim; long prompts refused', async () => {
    const lib = Library.open(tempDir());
    const prompts = ['it\'s "quoted"', "'); DROP TABLE images;--", 'tab\tand\u0007bell', 'a 🐱 cat', 'قطة حمراء'];
    const ids = await lib.save(await Promise.all(prompts.map((p, i) => image(p, i + 1))));
    ids.forEach((id, i) => assert.equal(lib.get(id).prompt, prompts[i]));
    assert.deepEqual(
      lib.list({ text: 'DROP' }).items.map((r) => r.id),
      [ids[1]],
    );
    assert.deepEqual(
      lib.list({ text: '🐱' }).items.map((r) => r.id),
      [ids[3]],
    );
    assert.deepEqual(
      lib.list({ text: 'حمراء' }).items.map((r) => r.id),
      [ids[4]],
    );
    assert.deepEqual(
      lib.list({ text: 'quot' }).items.map((r) => r.id),
      [ids[0]],
    );
    // The count of a search is the search's, words or symbols.
    assert.equal(lib.count({ text: 'DROP' }), 1);
    assert.equal(lib.count({ text: '🐱' }), 1);
    assert.equal(lib.count({ text: 'a' }), 2);
    assert.equal(lib.count({ text: 'zebra' }), 0);
    await assert.rejects(lib.save([await image('x'.repeat(MAX_PROMPT_CHARS + 1), 9)]), /too long/);
    lib.close();
  });

  test('filters, sort and keyset pages visit every row once', async () => {
    let t = 1000;
    const lib = Library.open(tempDir(), { now: () => t++ });
    const ids: number[] = [];
    for (let i = 0; i < 25; i++)
      ids.push(...(await lib.save([await image(`p${i}`, i, { kind: i % 2 ? 'variation' : 'generated' })])));
    lib.star([ids[3]!], true);
    assert.deepEqual(
      lib.list({ starred: true }).items.map((r) => r.id),
      [ids[3]],
    );
    assert.equal(lib.list({ kinds: ['variation'] }).items.length, 12);
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page = lib.list({ limit: 7, sort: 'oldest', cursor });
      seen.push(...page.items.map((r) => r.id));
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, ids);
    assert.equal(lib.list({ sort: 'newest', limit: 1 }).items[0]!.id, ids.at(-1));
    assert.throws(() => lib.list({ cursor: 'nonsense' }), /cursor/);
    lib.close();
  });

  test('trash, restore, empty trash (a file another row uses stays)', async () => {
    const lib = Library.open(tempDir());
    const same = await png(50);
    const [a, b, c] = await lib.save([
      { ...(await image('a', 50)), bytes: same },
      { ...(await image('b', 50)), bytes: same },
      await image('c', 51),
    ]);
    lib.trash([a!, c!]);
    assert.deepEqual(
      lib.list().items.map((r) => r.id),
      [b],
    );
    assert.equal(lib.list({ trashed: true }).items.length, 2);
    lib.restore([a!]);
    const cPath = lib.filePath(lib.get(c!));
    lib.trash([a!]);
    // Only the given ones: a live image among them stays, the rest of the trash too.
    const [d] = await lib.save([await image('d', 52)]);
    lib.trash([d!]);
    assert.deepEqual(lib.emptyTrash([d!, b!]), { deleted: 1, filesRemoved: 1, ids: [d] });
    assert.ok(lib.exists(b!));
    assert.deepEqual(lib.emptyTrash(), { deleted: 2, filesRemoved: 1, ids: [a, c] });
    assert.ok(!existsSync(cPath));
    assert.ok(existsSync(lib.filePath(lib.get(b!))));
    assert.throws(
      () => lib.get(a!),
      (e: unknown) => e instanceof LibraryError && /no such image/.test(e.message),
    );
    lib.close();
  });

  test('boards, lineage and semantic search within one pack', async () => {
    const lib = Library.open(tempDir());
    const [p] = await lib.save([await image('parent', 1, { embedding: { zi: vec(1, 0, 0, 0) } })]);
    const [c1, c2] = await lib.save([
      await image('child', 2, {
        embedding: { zi: vec(1, 0.1) },
        parents: [{ id: p!, op: 'vary', params: { eta: 1 } }],
      }),
      await image('far', 3, { embedding: { zi: vec(0, 0, 1) } }),
    ]);
    await lib.save([
      await image('other pack', 4, { pack: { name: 'o', sha256: 'b'.repeat(64) }, embedding: { zi: vec(1) } }),
    ]);
    assert.deepEqual(lib.lineage(c1!).parents, [{ id: p, role: 'source', op: 'vary', params: { eta: 1 } }]);
    assert.deepEqual(
      lib.lineage(p!).children.map((e) => e.id),
      [c1],
    );
    const hits = lib.similar(vec(1, 0, 0, 0), pack.sha256, 5, {}, p);
    assert.deepEqual(
      hits.map((h) => h.id),
      [c1, c2],
    );
    const board = lib.createBoard('Cats');
    assert.throws(() => lib.createBoard('cats'), /exists already/);
    lib.addToBoard(board.id, [c1!, c2!]);
    lib.trash([c2!]);
    assert.equal(lib.listBoards()[0]!.count, 1);
    assert.deepEqual(
      lib.list({ boardId: board.id, trashed: false }).items.map((r) => r.id),
      [c1],
    );
    // A second writer's new image is visible to this one's search.
    const other = Library.open(lib.dir);
    const [n] = await other.save([await image('newcomer', 9, { embedding: { zi: vec(1, 0, 0, 0.01) } })]);
    other.close();
    assert.equal(lib.similar(vec(1, 0, 0, 0), pack.sha256, 1, {}, p)[0]!.id, n);
    lib.close();
  });

  test('check reports a row whose file vanished and repair moves it to the trash', async () => {
    const lib = Library.open(tempDir());
    const [id] = await lib.save([await image('gone', 7)]);
    rmSync(lib.filePath(lib.get(id!)));
    const report = await lib.check({ repair: true });
    assert.equal(report.integrity, 'ok');
    assert.deepEqual(
      report.missingFiles.map((m) => m.id),
      [id],
    );
    assert.ok(lib.get(id!).trashedAt !== null);
    lib.close();
  });

  test("a dead writer's half-done save is undone on the next open", async () => {
    const dir = tempDir();
    const lib = Library.open(dir);
    const bytes = await png(99);
    const path = lib.files.pathOf(sha(bytes), 'png');
    lib.files.writeAtomic(path, bytes);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const owner = `${lib.owner.split('~')[0]}~${dead.stdout}~dead`;
    lib.db
      .prepare("INSERT INTO file_journal (sha256, op, owner, created_at) VALUES (?, 'write', ?, 0)")
      .run(sha(bytes), owner);
    writeFileSync(join(dir, 'tmp', `${owner}~x.tmp`), 'partial');
    lib.close();
    const again = Library.open(dir);
    assert.equal(again.opened.journalResolved, 1);
    assert.equal(again.opened.tempFilesRemoved, 1);
    assert.ok(!existsSync(path));
    again.close();
  });
});

describe('library under concurrent writers and failures', () => {
  test('ids are never reused, even when the newest images are deleted for good', async () => {
    const lib = Library.open(tempDir());
    const [a, b] = await lib.save([await image('a', 1), await image('b', 2)]);
    lib.trash([b!]);
    lib.emptyTrash();
    const [c] = await lib.save([await image('c', 3)]);
    assert.ok(c! > b!, `new id ${c} must follow the deleted ${b}`);
    assert.deepEqual(
      lib.list().items.map((r) => r.id),
      [c, a],
    );
    lib.close();
  });

  test('a save that fails midway leaves no journal entry and no file', async () => {
    const lib = Library.open(tempDir());
    const [kept] = await lib.save([await image('kept', 5)]);
    const junk = new Uint8Array([1, 2, 3, 4]); // not a picture: its thumbnail fails
    await assert.rejects(lib.save([await image('ok', 6), { ...(await image('bad', 7)), bytes: junk }]));
    assert.equal((lib.db.prepare('SELECT count(*) AS n FROM file_journal').get() as { n: number }).n, 0);
    assert.ok(!existsSync(lib.files.pathOf(sha(await png(6)), 'png')));
    assert.ok(existsSync(lib.filePath(lib.get(kept!))));
    assert.equal(lib.count(), 1);
    lib.close();
  });

  test('a full disk: one line, nothing half-written (no row, file, thumbnail or journal entry)', async () => {
    const lib = Library.open(tempDir());
    const [kept] = await lib.save([await image('kept', 8)]);
    // SQLite's page cap stands in for a full disk: the rows' transaction fails with SQLITE_FULL.
    const pages = lib.db.pragma('page_count', { simple: true }) as number;
    lib.db.pragma(`max_page_count = ${pages}`);
    const big = await image('x'.repeat(4000), 9, { settings: { pad: 'y'.repeat(200_000) } });
    await assert.rejects(lib.save([big]), (e: unknown) => {
      assert.ok(e instanceof LibraryError, String(e));
      assert.match(e.message, /the disk is full; free some space and try again/);
      assert.equal(e.message.split('\n').length, 1);
      return true;
    });
    lib.db.pragma(`max_page_count = ${2 ** 30}`);
    assert.equal(lib.count(), 1);
    assert.ok(!existsSync(lib.files.pathOf(sha(big.bytes), 'png')));
    assert.ok(!existsSync(lib.files.thumbPathOf(sha(big.bytes))));
    assert.equal((lib.db.prepare('SELECT count(*) AS n FROM file_journal').get() as { n: number }).n, 0);
    assert.ok(existsSync(lib.filePath(lib.get(kept!))));
    lib.close();
  });

  test("emptying the trash keeps a file another writer is saving, and the writer's row finds it", async () => {
    const dir = tempDir();
    const lib = Library.open(dir);
    const bytes = await png(42);
    const [old] = await lib.save([{ ...(await image('old', 42)), bytes }]);
    lib.trash([old!]);
    // A second library in this process is between its file and its rows for the same picture.
    const writer = Library.open(dir);
    writer.db
      .prepare("INSERT INTO file_journal (sha256, op, owner, created_at) VALUES (?, 'write', ?, 0)")
      .run(sha(bytes), writer.owner);
    assert.deepEqual(lib.emptyTrash(), { deleted: 1, filesRemoved: 0, ids: [old] });
    assert.ok(existsSync(lib.files.pathOf(sha(bytes), 'png')));
    // Another open in this process does not take the live writer for a dead one.
    const third = Library.open(dir);
    assert.equal(third.opened.journalResolved, 0);
    third.close();
    writer.db.prepare('DELETE FROM file_journal').run();
    const [id] = await writer.save([{ ...(await image('new', 42)), bytes }]);
    assert.equal(sha(readFileSync(writer.filePath(writer.get(id!)))), sha(bytes));
    writer.close();
    lib.close();
  });

  test('semantic search within a small board or a rare filter equals a naive scan of what passes', async () => {
    const lib = Library.open(tempDir());
    let seed = 7;
    const rand = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    const items = await Promise.all(
      Array.from({ length: 120 }, async (_, k) =>
        image(`p${k}`, k, {
          embedding: { zi: vec(rand(), rand(), rand(), rand()) },
          kind: k % 17 === 0 ? 'import' : 'generated',
        }),
      ),
    );
    const ids = await lib.save(items);
    const board = lib.createBoard('few');
    const members = ids.filter((_, k) => k % 29 === 3);
    lib.addToBoard(board.id, members);
    const query = vec(1, -0.5, 0.25, 0);
    const cos = (v: Float32Array): number =>
      v.reduce((s, x, j) => s + x * query[j]!, 0) / Math.hypot(...v) / Math.hypot(...query);
    const naive = (keep: (k: number) => boolean, n: number): number[] =>
      items
        .map((it, k) => ({ id: ids[k]!, k, score: cos(it.embedding!.zi) }))
        .filter(({ k }) => keep(k))
        .sort((x, y) => y.score - x.score)
        .slice(0, n)
        .map((h) => h.id);
    assert.deepEqual(
      lib.similar(query, pack.sha256, 3, { boardId: board.id }).map((h) => h.id),
      naive((k) => k % 29 === 3, 3),
    );
    assert.deepEqual(
      lib.similar(query, pack.sha256, 50, { kinds: ['import'] }).map((h) => h.id),
      naive((k) => k % 17 === 0, 50),
    );
    lib.close();
  });
});

describe('library file and schema', () => {
  test('a non-SQLite file is refused untouched', async () => {
    const dir = tempDir();
    const bytes = await png(1);
    writeFileSync(join(dir, DB_FILE), bytes);
    assert.throws(() => Library.open(dir), /not an unCLIP Studio library/);
    assert.deepEqual(readFileSync(join(dir, DB_FILE)), bytes);
  });

  test('a library from a newer build is refused untouched', () => {
    const dir = tempDir();
    Library.open(dir).close();
    const db = new Database(join(dir, DB_FILE));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.pragma('journal_mode = DELETE');
    db.close();
    const before = sha(readFileSync(join(dir, DB_FILE)));
    assert.throws(() => Library.open(dir), /newer unCLIP Studio/);
    assert.equal(sha(readFileSync(join(dir, DB_FILE))), before);
  });

  test('a file in place of the folder, and /proc, are refused with one line', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'f'), 'x');
    assert.throws(() => Library.open(join(dir, 'f')), /cannot hold a library: .*f is not a folder/);
    assert.throws(() => Library.open('/proc/x'), /cannot hold a library: \/proc\/x is under \/proc/);
    // also through a link (a recursive mkdir there would spin forever)
    symlinkSync('/proc/self', join(dir, 'link'));
    assert.throws(() => Library.open(join(dir, 'link', 'lib')), /is under \/proc/);
  });
});

describe('job queue', () => {
  test('order, move, cancel, fencing and recovery of a dead runner', () => {
    let t = 0;
    const dir = tempDir();
    const lib = Library.open(dir, { now: () => t });
    const [a, b, c] = ['generate', 'vary', 'invert'].map((k) => lib.jobs.enqueue(k as 'generate', { k }));
    lib.jobs.move(c!.id, 'front');
    assert.equal(lib.jobs.claim()!.id, c!.id);
    lib.jobs.cancel(b!.id);
    assert.equal(lib.jobs.get(b!.id).status, 'cancelled');
    // c's lease expires: recover re-queues it, and the old holder can no longer complete it.
    t += 31_000;
    assert.deepEqual(lib.jobs.recover().requeued, [c!.id]);
    const other = Library.open(dir, { now: () => t });
    assert.equal(other.jobs.claim()!.id, c!.id);
    assert.equal(lib.jobs.complete(c!.id, {}), false);
    assert.equal(other.jobs.complete(c!.id, { ok: 1 }), true);
    assert.equal(lib.jobs.get(c!.id).status, 'done');
    assert.equal(lib.jobs.claim()!.id, a!.id);
    other.close();
    lib.close();
  });

  test('a job exhausting its attempts fails with the reason, never cancelled', () => {
    let t = 0;
    const lib = Library.open(tempDir(), { now: () => t });
    const job = lib.jobs.enqueue('generate', {}, { maxAttempts: 1 });
    lib.jobs.claim();
    t += 31_000;
    assert.deepEqual(lib.jobs.recover().failed, [job.id]);
    assert.match(lib.jobs.get(job.id).error!, /interrupted 1 times/);
    lib.close();
  });
});

test('embedding index: exact top-k equals a naive scan', () => {
  const index = new EmbeddingIndex(16);
  let s = 1;
  const rnd = (): number => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const rows = new Map<number, Float32Array>();
  for (let id = 1; id <= 300; id++) {
    const v = Float32Array.from({ length: 16 }, rnd);
    rows.set(id, v);
    index.upsert(id, v);
  }
  index.delete(5);
  rows.delete(5);
  const q = Float32Array.from({ length: 16 }, rnd);
  const norm = (v: Float32Array): number => Math.hypot(...v);
  const naive = [...rows]
    .map(([id, v]) => ({ id, score: v.reduce((acc, x, i) => acc + x * q[i]!, 0) / norm(v) / norm(q) }))
    .sort((x, y) => y.score - x.score)
    .slice(0, 10);
  const got = index.search(q, 10);
  assert.deepEqual(
    got.map((h) => h.id),
    naive.map((h) => h.id),
  );
  got.forEach((h, i) => assert.ok(Math.abs(h.score - naive[i]!.score) < 1e-5));
  assert.throws(() => index.search(new Float32Array(3), 1), /width 3 does not match/);
  assert.throws(() => index.upsert(1, new Float32Array(16)), /zero/);
});

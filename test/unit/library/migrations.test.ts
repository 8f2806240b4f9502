// Every earlier schema version, with data in it, opens in this build: the data is all there, the
// backup holds the old version, and what the migration changed works (search, paging, ids).

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { DB_FILE } from '../../../main/library/db.ts';
import { Library } from '../../../main/library/library.ts';
import { MIGRATIONS, SCHEMA_VERSION } from '../../../main/library/migrations.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const PACK = 'c'.repeat(64);
const PROMPTS = ['a photo of a fox', 'an owl at night', 'a red apple', 'photograph of a cat', 'at sunset, a ship'];
const f32 = (v: number[]): Buffer => Buffer.from(new Float32Array(v).buffer);

/**
 * Data written the way version v wrote it. Add one for each new version: the test refuses to run
 * without it. Rows are inserted out of created_at order (a clock that went back) on purpose.
 */
const SEEDS: Record<number, (db: Database.Database) => void> = {
  1: (db) => {
    db.prepare(
      `INSERT INTO jobs (id, kind, status, args, position, created_at) VALUES (1, 'generate', 'done', '{}', 1, 1000),
       (2, 'vary', 'queued', '{"id":1}', 2, 1001)`,
    ).run();
    const img = db.prepare(`INSERT INTO images (id, kind, prompt, settings, pack_name, pack_sha256, width, height,
      file_sha256, file_bytes, created_at, starred, trashed_at, job_id, job_index)
      VALUES (?, ?, ?, '{"steps":3}', 'emoji-tiny', ?, 8, 8, ?, 10, ?, ?, ?, ?, ?)`);
    PROMPTS.forEach((p, k) =>
      img.run(
        k + 1,
        k === 1 ? 'variation' : 'generated',
        p,
        PACK,
        String(k).repeat(64),
        k === 2 ? 500 : 2000 + k,
        k === 3 ? 1 : 0,
        k === 4 ? 3000 : null,
        k === 0 ? 1 : null,
        k === 0 ? 0 : null,
      ),
    );
    const emb = db.prepare('INSERT INTO embeddings (image_id, pack_sha256, dim, z_i, z_t) VALUES (?, ?, 4, ?, NULL)');
    PROMPTS.forEach((_, k) => emb.run(k + 1, PACK, f32([1, k, 0, 0])));
    db.prepare(
      `INSERT INTO inversions (image_id, z_i, shape, x_t, settings, psnr, created_at) VALUES (1, ?, '[2]', ?, '{}', 31.5, 2100)`,
    ).run(f32([1, 0, 0, 0]), f32([0.5, -0.5]));
    db.prepare(`INSERT INTO lineage (child_id, parent_id, op, params) VALUES (2, 1, 'vary', '{"eta":1}')`).run();
    db.prepare(`INSERT INTO boards (id, name, created_at) VALUES (1, 'Owls', 100)`).run();
    db.prepare(`INSERT INTO board_images (board_id, image_id, added_at) VALUES (1, 2, 101), (1, 3, 102)`).run();
  },
};

function libraryAt(version: number): string {
  const dir = mkdtempSync(join(tmpdir(), `unclip-migrate-v${version}-`));
  dirs.push(dir);
  const db = new Database(join(dir, DB_FILE));
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  for (const m of MIGRATIONS.slice(0, version)) db.exec(m.sql);
  db.pragma(`user_version = ${version}`);
  const seed = SEEDS[version];
  assert.ok(seed, `no seed data for schema version ${version}: add one to SEEDS`);
  seed(db);
  db.close();
  return dir;
}

for (let version = 1; version < SCHEMA_VERSION; version++) {
  test(`a version-${version} library with data migrates to ${SCHEMA_VERSION} and keeps it all`, async () => {
    const dir = libraryAt(version);
    const lib = Library.open(dir);
    try {
      assert.equal(lib.opened.fromVersion, version);
      assert.ok(lib.opened.backup && existsSync(lib.opened.backup));
      const old = new Database(lib.opened.backup, { readonly: true });
      assert.equal(old.pragma('user_version', { simple: true }), version);
      assert.equal((old.prepare('SELECT count(*) AS n FROM images').get() as { n: number }).n, PROMPTS.length);
      old.close();
      assert.equal(lib.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      assert.equal(lib.db.pragma('integrity_check', { simple: true }), 'ok');

      // Every row, newest (last added) first, trash apart; pages of 2 visit each once.
      assert.deepEqual(
        lib.list().items.map((i) => i.id),
        [4, 3, 2, 1],
      );
      assert.deepEqual(
        lib.list({ trashed: true }).items.map((i) => i.id),
        [5],
      );
      const seen: number[] = [];
      for (let cursor: string | undefined; ; ) {
        const page = lib.list({ limit: 2, sort: 'oldest', ...(cursor ? { cursor } : {}) });
        seen.push(...page.items.map((i) => i.id));
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      assert.deepEqual(seen, [1, 2, 3, 4]);

      // Full-text search over the migrated rows, one- and two-letter prefixes included.
      const found = (text: string): number[] => lib.list({ text }).items.map((i) => i.id);
      assert.deepEqual(found('photo'), [4, 1]);
      assert.deepEqual(found('a'), [4, 3, 2, 1]);
      assert.deepEqual(found('ow'), [2]);
      assert.deepEqual(found('at ni'), [2]);
      assert.equal(lib.count({ starred: true }), 1);
      assert.deepEqual(
        lib.list({ starred: true }).items.map((i) => i.id),
        [4],
      );
      assert.deepEqual(
        lib.list({ kinds: ['variation'] }).items.map((i) => i.id),
        [2],
      );
      assert.deepEqual(
        lib.list({ from: 1000 }).items.map((i) => i.id),
        [4, 2, 1],
      );

      // Latents, lineage, boards and jobs as they were.
      const l = lib.latents(1);
      assert.deepEqual([...l.zi], [1, 0, 0, 0]);
      assert.deepEqual([...l.inversion!.xT], [0.5, -0.5]);
      assert.equal(l.inversion!.psnr, 31.5);
      assert.deepEqual(lib.lineage(2).parents, [{ id: 1, role: 'source', op: 'vary', params: { eta: 1 } }]);
      assert.deepEqual(
        lib.listBoards().map((b) => [b.name, b.count]),
        [['Owls', 2]],
      );
      assert.equal(lib.jobs.get(2).status, 'queued');
      const near = lib.similar(new Float32Array([1, 3, 0, 0]), PACK, 2);
      assert.deepEqual(
        near.map((i) => i.id),
        [4, 3],
      );

      // New rows continue after the old ones, and are found.
      const bytes = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } })
        .png()
        .toBuffer();
      const [id] = await lib.save([
        {
          kind: 'generated',
          prompt: 'a photo of an owl',
          settings: {},
          pack: { name: 'emoji-tiny', sha256: PACK },
          width: 8,
          height: 8,
          bytes,
        },
      ]);
      assert.equal(id, 6);
      assert.deepEqual(found('photo ow'), [6]);
    } finally {
      lib.close();
    }
    // Opening again migrates nothing and makes no second backup.
    const again = Library.open(dir);
    assert.equal(again.opened.fromVersion, SCHEMA_VERSION);
    assert.equal(again.opened.backup, undefined);
    again.close();
  });
}

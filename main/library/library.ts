// One library folder: library.sqlite (rows) + files/ (content-addressed images) + thumbs/ + tmp/.
// Every image is saved file first (atomic, journaled), rows after, in one transaction; the journal
// lets the next open undo what a killed process left half done. No Electron here: the desktop app,
// web mode, the CLI and the tests all use this class. Synchronous (better-sqlite3) except where
// sharp makes thumbnails.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { DB_FILE, openDatabase, type DB } from './db.ts';
import { EmbeddingIndex, type Hit } from './embedding-index.ts';
import { goneMessage, LibraryError, sqliteMessage } from './errors.ts';
import { checkFolderPath, FolderError } from './folders.ts';
import { FileStore, holdOwner, newOwnerId, ownerAlive, releaseOwner, sha256Hex } from './files.ts';
import { JobQueue } from './jobs.ts';

import {
  IMAGE_KINDS,
  MAX_PAGE,
  MAX_PROMPT_CHARS,
  type Board,
  type CheckReport,
  type ImageKind,
  type ImageMime,
  type ImageRecord,
  type LineageEdge,
  type PackRef,
  type Page,
} from './kinds.ts';

export { IMAGE_KINDS, MAX_PAGE, MAX_PROMPT_CHARS };
export type { Board, CheckReport, ImageKind, ImageMime, ImageRecord, LineageEdge, PackRef, Page };
export const MIME_EXT: Record<ImageMime, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

export const THUMB_SIZE = 256;
const ORPHAN_GRACE_MS = 60_000;

export interface ParentRef {
  id: number;
  /** 'source', or 'a' / 'b' for an interpolation's two ends. */
  role?: string;
  op: string;
  params?: Record<string, unknown>;
}

export interface InversionData {
  /** The CLIP image embedding the inversion used (with xT: the image's bipartite latent). */
  zi: Float32Array;
  xT: Float32Array;
  shape: number[];
  settings: Record<string, unknown>;
  psnr: number | null;
}

export interface NewImage {
  kind: ImageKind;
  prompt: string;
  settings: Record<string, unknown>;
  seed?: number | null;
  pack: PackRef;
  width: number;
  height: number;
  /** The encoded file, metadata already embedded. */
  bytes: Uint8Array;
  mime?: ImageMime;
  embedding?: { zi: Float32Array; zt?: Float32Array | null };
  inversion?: InversionData;
  parents?: ParentRef[];
}

export interface ListQuery {
  text?: string;
  kinds?: ImageKind[];
  starred?: boolean;
  boardId?: number;
  /** created_at bounds, ms since the epoch, inclusive. */
  from?: number;
  to?: number;
  /** Pack manifest sha256, or pack name. */
  pack?: string;
  /** The trash instead of the gallery. */
  trashed?: boolean;
  sort?: 'newest' | 'oldest';
  limit?: number;
  cursor?: string | null;
}

export interface Latents {
  pack: PackRef;
  dim: number;
  zi: Float32Array;
  zt: Float32Array | null;
  inversion: InversionData | null;
}

export interface OpenReport {
  fromVersion: number;
  backup?: string;
  tempFilesRemoved: number;
  journalResolved: number;
  jobsRequeued: number[];
  jobsFailed: number[];
}

// ---------------------------------------------------------------------------------------------

const f32 = (v: Float32Array): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
function toF32(b: Buffer | null): Float32Array | null {
  if (!b) return null;
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}
const json = (text: string | null): Record<string, unknown> =>
  text ? (JSON.parse(text) as Record<string, unknown>) : {};

interface ImageRow {
  id: number;
  kind: ImageKind;
  prompt: string;
  settings: string;
  seed: number | null;
  pack_name: string;
  pack_sha256: string;
  width: number;
  height: number;
  file_sha256: string;
  file_bytes: number;
  mime: ImageMime;
  created_at: number;
  starred: number;
  trashed_at: number | null;
  job_id: number | null;
  has_embedding: number;
  inverted: number;
  psnr: number | null;
}

const IMAGE_COLUMNS = `i.id, i.kind, i.prompt, i.settings, i.seed, i.pack_name, i.pack_sha256, i.width, i.height,
  i.file_sha256, i.file_bytes, i.mime, i.created_at, i.starred, i.trashed_at, i.job_id,
  EXISTS (SELECT 1 FROM embeddings e WHERE e.image_id = i.id) AS has_embedding,
  EXISTS (SELECT 1 FROM inversions v WHERE v.image_id = i.id) AS inverted,
  (SELECT psnr FROM inversions v WHERE v.image_id = i.id) AS psnr`;

function toRecord(r: ImageRow): ImageRecord {
  return {
    id: r.id,
    kind: r.kind,
    prompt: r.prompt,
    settings: json(r.settings),
    seed: r.seed,
    pack: { name: r.pack_name, sha256: r.pack_sha256 },
    width: r.width,
    height: r.height,
    sha256: r.file_sha256,
    bytes: r.file_bytes,
    mime: r.mime,
    createdAt: r.created_at,
    starred: r.starred === 1,
    trashedAt: r.trashed_at,
    jobId: r.job_id,
    hasEmbedding: r.has_embedding === 1,
    inverted: r.inverted === 1,
    psnr: r.psnr,
  };
}

// A cursor is the last id of a page (ids are insertion order), opaque to callers.
function encodeCursor(id: number): string {
  return Buffer.from(JSON.stringify({ after: id })).toString('base64url');
}
function decodeCursor(cursor: string): number {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (Number.isSafeInteger(v?.after)) return v.after as number;
  } catch {
    // fall through
  }
  throw new LibraryError('invalid', 'cursor: not a cursor this library returned');
}

/** FTS5 query from free text: each word a quoted prefix term, all required. null: no word characters. */
export function ftsQuery(text: string): string | null {
  const words = text.normalize('NFKC').match(/[\p{L}\p{N}]+/gu);
  if (!words) return null;
  return words.map((w) => `"${w}"*`).join(' ');
}

export function checkPrompt(prompt: string, field = 'prompt'): string {
  if (typeof prompt !== 'string') throw new LibraryError('invalid', `${field}: must be text`);
  if (prompt.length > MAX_PROMPT_CHARS)
    throw new LibraryError(
      'invalid',
      `${field}: ${prompt.length} characters is too long (at most ${MAX_PROMPT_CHARS})`,
    );
  if (prompt.includes('\0')) throw new LibraryError('invalid', `${field}: must not contain NUL characters`);
  return prompt;
}

// ---------------------------------------------------------------------------------------------

export class Library {
  readonly dir: string;
  readonly db: DB;
  readonly files: FileStore;
  readonly jobs: JobQueue;
  readonly owner: string;
  readonly opened: OpenReport;
  private readonly indexes = new Map<string, { index: EmbeddingIndex; seen: number }>();
  private readonly now: () => number;
  private closed = false;
  /** The database file as opened (device and inode): present() tells whether it is still there. */
  private readonly fileId: { dev: number; ino: number } | null;

  private constructor(
    dir: string,
    db: DB,
    owner: string,
    fromVersion: number,
    backup: string | undefined,
    now: () => number,
  ) {
    this.dir = dir;
    this.db = db;
    this.owner = owner;
    this.now = now;
    holdOwner(owner);
    this.fileId = fileIdOf(join(dir, DB_FILE));
    this.files = new FileStore(dir, owner);
    this.jobs = new JobQueue(db, owner, now);
    this.files.ensureFolders();
    const journalResolved = this.resolveJournal();
    const tempFilesRemoved = this.files.sweepTemps();
    const { requeued, failed } = this.jobs.recover();
    this.opened = {
      fromVersion,
      ...(backup ? { backup } : {}),
      tempFilesRemoved,
      journalResolved,
      jobsRequeued: requeued,
      jobsFailed: failed,
    };
  }

  /** Opens (or creates) the library in `dir`. Refuses, untouched: a file in its place, a non-SQLite or damaged database, a newer schema. */
  static open(dir: string, options: { now?: () => number; owner?: string } = {}): Library {
    const abs = resolve(dir);
    checkLibraryFolder(abs, true);
    const { db, fromVersion, backup } = openDatabase(abs);
    const owner = options.owner ?? newOwnerId();
    try {
      return new Library(abs, db, owner, fromVersion, backup, options.now ?? Date.now);
    } catch (err) {
      db.close();
      releaseOwner(owner);
      if (err instanceof LibraryError) throw err;
      throw new LibraryError('io', `cannot open the library ${abs}: ${sqliteMessage(err)}`);
    }
  }

  /**
   * Whether the library is still in its folder: the database file it opened is still at its path
   * (not deleted with the folder, moved away, or gone with a disk that was unplugged). An open file
   * outlives its name, so SQLite alone would go on writing into a file nobody will see again.
   */
  present(): boolean {
    const now = fileIdOf(join(this.dir, DB_FILE));
    if (!now || !this.fileId) return now !== null;
    return now.dev === this.fileId.dev && (this.fileId.ino === 0 || now.ino === this.fileId.ino);
  }

  /** Throws the one-line "the library folder … is gone" unless present(). */
  assertPresent(): void {
    if (!this.present()) throw new LibraryError('io', goneMessage(this.dir));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.indexes.clear();
    this.db.close();
    releaseOwner(this.owner);
  }

  // -- saving ---------------------------------------------------------------------------------

  /**
   * Saves images (files, thumbnails, rows, latents, lineage). With a job id, item k is the job's
   * output k: saving it again returns the existing row (a re-run cannot duplicate images).
   */
  async save(items: NewImage[], options: { jobId?: number } = {}): Promise<number[]> {
    const { jobId } = options;
    for (const [k, item] of items.entries()) this.checkNew(item, k);
    const existing = jobId === undefined ? [] : this.jobImageIds(jobId);
    const todo = items.map((item, k) => ({ item, k })).filter(({ k }) => existing[k] === undefined);
    if (todo.length === 0) return items.map((_, k) => existing[k]!);
    const shas = todo.map(({ item }) => sha256Hex(item.bytes));
    const journal = this.db.prepare(
      'INSERT OR IGNORE INTO file_journal (sha256, op, owner, created_at) VALUES (?, ?, ?, ?)',
    );
    this.write(() => this.db.transaction(() => shas.forEach((s) => journal.run(s, 'write', this.owner, this.now())))());
    try {
      return await this.saveJournalled(items, todo, shas, existing, jobId);
    } catch (err) {
      // Nothing was inserted: undo what the journal covers now, as the next open would.
      this.undoWrites(shas);
      throw err;
    }
  }

  private async saveJournalled(
    items: NewImage[],
    todo: { item: NewImage; k: number }[],
    shas: string[],
    existing: number[],
    jobId: number | undefined,
  ): Promise<number[]> {
    const thumbs = await Promise.all(todo.map(({ item }) => makeThumb(item.bytes)));
    for (const [j, { item }] of todo.entries()) {
      this.files.writeAtomic(this.files.pathOf(shas[j]!, MIME_EXT[item.mime ?? 'image/png']), item.bytes);
      this.files.writeAtomic(this.files.thumbPathOf(shas[j]!), thumbs[j]!);
    }
    // SQLite would give a deleted top id to the next row; an id is never reused (web caches media by
    // id, and the embedding index loads rows above the last id it saw), so it continues from the
    // highest id ever deleted.
    const insert = this.db.prepare(`INSERT INTO images (id, kind, prompt, settings, seed, pack_name, pack_sha256, width,
      height, file_sha256, file_bytes, mime, created_at, job_id, job_index)
      VALUES ((SELECT max(coalesce(max(id), 0), coalesce((SELECT CAST(value AS INTEGER) FROM meta
        WHERE key = 'images_deleted_max'), 0)) + 1 FROM images),
      @kind, @prompt, @settings, @seed, @packName, @packSha, @width, @height, @sha, @bytes, @mime, @createdAt,
      @jobId, @jobIndex)`);
    const emb = this.db.prepare('INSERT INTO embeddings (image_id, pack_sha256, dim, z_i, z_t) VALUES (?, ?, ?, ?, ?)');
    const edge = this.db.prepare(
      'INSERT OR IGNORE INTO lineage (child_id, parent_id, role, op, params) VALUES (?, ?, ?, ?, ?)',
    );
    const unjournal = this.db.prepare("DELETE FROM file_journal WHERE sha256 = ? AND op = 'write' AND owner = ?");
    const ids = this.write(() =>
      this.db.transaction(() => {
        const out: number[] = [];
        for (const [j, { item, k }] of todo.entries()) {
          const created = this.now();
          const id = Number(
            insert.run({
              kind: item.kind,
              prompt: item.prompt,
              settings: JSON.stringify(item.settings),
              seed: item.seed ?? null,
              packName: item.pack.name,
              packSha: item.pack.sha256,
              width: item.width,
              height: item.height,
              sha: shas[j],
              bytes: item.bytes.byteLength,
              mime: item.mime ?? 'image/png',
              createdAt: created,
              jobId: jobId ?? null,
              jobIndex: jobId === undefined ? null : k,
            }).lastInsertRowid,
          );
          if (item.embedding) {
            const { zi, zt } = item.embedding;
            emb.run(id, item.pack.sha256, zi.length, f32(zi), zt ? f32(zt) : null);
          }
          if (item.inversion) this.insertInversion(id, item.inversion);
          for (const p of item.parents ?? [])
            edge.run(id, p.id, p.role ?? 'source', p.op, JSON.stringify(p.params ?? {}));
          unjournal.run(shas[j], this.owner);
          out.push(id);
        }
        return out;
      })(),
    );
    const byIndex = new Map(todo.map(({ k }, j) => [k, ids[j]!]));
    return items.map((_, k) => existing[k] ?? byIndex.get(k)!);
  }

  private checkNew(item: NewImage, k: number): void {
    const at = `image ${k}`;
    if (!(IMAGE_KINDS as readonly string[]).includes(item.kind))
      throw new LibraryError('invalid', `${at}: unknown kind ${item.kind}`);
    checkPrompt(item.prompt);
    if (!(item.bytes instanceof Uint8Array) || item.bytes.byteLength === 0)
      throw new LibraryError('invalid', `${at}: no image bytes`);
    for (const p of item.parents ?? []) this.get(p.id);
    const zi = item.embedding?.zi;
    if (zi && (zi.length === 0 || (item.embedding?.zt && item.embedding.zt.length !== zi.length)))
      throw new LibraryError('invalid', `${at}: z_i and z_t must have the same width`);
  }

  private insertInversion(id: number, inv: InversionData): void {
    const count = inv.shape.reduce((a, b) => a * b, 1);
    if (count !== inv.xT.length)
      throw new LibraryError(
        'invalid',
        `x_T: shape ${JSON.stringify(inv.shape)} does not match its ${inv.xT.length} values`,
      );
    this.db
      .prepare(
        `INSERT INTO inversions (image_id, z_i, shape, x_t, settings, psnr, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (image_id) DO UPDATE SET z_i = excluded.z_i, shape = excluded.shape, x_t = excluded.x_t,
         settings = excluded.settings, psnr = excluded.psnr, created_at = excluded.created_at`,
      )
      .run(id, f32(inv.zi), JSON.stringify(inv.shape), f32(inv.xT), JSON.stringify(inv.settings), inv.psnr, this.now());
  }

  /** Stores what inverting image `id` found (x_T), and its CLIP embedding when it had none (imports). */
  setInversion(
    id: number,
    inv: InversionData,
    embedding?: { pack: PackRef; zi: Float32Array; zt?: Float32Array | null },
  ): void {
    this.get(id);
    this.write(() =>
      this.db.transaction(() => {
        this.insertInversion(id, inv);
        if (embedding)
          this.db
            .prepare(
              `INSERT INTO embeddings (image_id, pack_sha256, dim, z_i, z_t) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (image_id) DO NOTHING`,
            )
            .run(
              id,
              embedding.pack.sha256,
              embedding.zi.length,
              f32(embedding.zi),
              embedding.zt ? f32(embedding.zt) : null,
            );
      })(),
    );
  }

  /** After a failed save: the files no row uses are removed and this writer's journal entries go. */
  private undoWrites(shas: string[]): void {
    try {
      this.db
        .transaction(() => {
          for (const s of shas) {
            if (!this.shaUsed(s) && !this.pendingWrite(s, true)) this.removeFiles(s);
            this.db
              .prepare("DELETE FROM file_journal WHERE sha256 = ? AND op = 'write' AND owner = ?")
              .run(s, this.owner);
          }
        })
        .immediate();
    } catch {
      // The journal stays; the next open resolves it.
    }
  }

  /** Whether a save of file `sha` is between its file and its rows (another writer's only: `others`). */
  private pendingWrite(sha: string, others = false): boolean {
    return (
      this.db
        .prepare(
          `SELECT 1 FROM file_journal WHERE sha256 = ? AND op = 'write' ${others ? 'AND owner <> ?' : ''} LIMIT 1`,
        )
        .get(...(others ? [sha, this.owner] : [sha])) !== undefined
    );
  }

  /** Runs a write, turning SQLite's errors (read-only, full disk, busy) into one line. */
  private write<T>(fn: () => T): T {
    this.assertPresent();
    try {
      return fn();
    } catch (err) {
      if (err instanceof LibraryError) throw err;
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY')
        throw new LibraryError('not_found', 'no such image (it was deleted meanwhile)');
      throw new LibraryError('io', `library ${this.dir}: ${sqliteMessage(err)}`);
    }
  }

  private jobImageIds(jobId: number): number[] {
    const out: number[] = [];
    for (const r of this.db.prepare('SELECT id, job_index FROM images WHERE job_id = ?').all(jobId) as {
      id: number;
      job_index: number;
    }[])
      out[r.job_index] = r.id;
    return out;
  }

  // -- reading --------------------------------------------------------------------------------

  get(id: number): ImageRecord {
    const row = this.db.prepare(`SELECT ${IMAGE_COLUMNS} FROM images i WHERE i.id = ?`).get(id) as ImageRow | undefined;
    if (!row) throw new LibraryError('not_found', `no such image: ${id}`);
    return toRecord(row);
  }

  /** Several images by id, in the order asked; unknown ids are left out. */
  getMany(ids: number[]): ImageRecord[] {
    if (ids.length === 0) return [];
    const rows = this.db
      .prepare(`SELECT ${IMAGE_COLUMNS} FROM images i WHERE i.id IN (SELECT value FROM json_each(?))`)
      .all(JSON.stringify(ids)) as ImageRow[];
    const byId = new Map(rows.map((r) => [r.id, toRecord(r)]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  filePath(image: Pick<ImageRecord, 'sha256' | 'mime'>): string {
    return this.files.pathOf(image.sha256, MIME_EXT[image.mime]);
  }

  readFile(id: number): Uint8Array {
    const image = this.get(id);
    try {
      return readFileSync(this.filePath(image));
    } catch (err) {
      throw new LibraryError(
        'io',
        `image ${id}: its file is missing or unreadable (${sqliteMessage(err)}); run \`unclip gallery check\``,
      );
    }
  }

  /** The thumbnail's path, remade from the image when it is missing. */
  async thumbPath(id: number): Promise<string> {
    const image = this.get(id);
    const path = this.files.thumbPathOf(image.sha256);
    if (!existsSync(path)) this.files.writeAtomic(path, await makeThumb(this.readFile(id)));
    return path;
  }

  private filterSql(q: ListQuery): { where: string[]; params: Record<string, unknown> } {
    const where: string[] = [q.trashed ? 'i.trashed_at IS NOT NULL' : 'i.trashed_at IS NULL'];
    const params: Record<string, unknown> = {};
    if (q.kinds?.length) {
      for (const k of q.kinds)
        if (!(IMAGE_KINDS as readonly string[]).includes(k))
          throw new LibraryError('invalid', `kind: unknown kind ${k}`);
      where.push('i.kind IN (SELECT value FROM json_each(@kinds))');
      params.kinds = JSON.stringify(q.kinds);
    }
    if (q.starred !== undefined) where.push(q.starred ? 'i.starred = 1' : 'i.starred = 0');
    if (q.boardId !== undefined) {
      where.push('i.id IN (SELECT image_id FROM board_images WHERE board_id = @boardId)');
      params.boardId = q.boardId;
    }
    if (q.from !== undefined) {
      where.push('i.created_at >= @from');
      params.from = q.from;
    }
    if (q.to !== undefined) {
      where.push('i.created_at <= @to');
      params.to = q.to;
    }
    if (q.pack !== undefined) {
      where.push(/^[0-9a-f]{64}$/.test(q.pack) ? 'i.pack_sha256 = @pack' : 'i.pack_name = @pack');
      params.pack = q.pack;
    }
    return { where, params };
  }

  /** A page of the gallery (or the trash): filters, full-text search, newest or oldest first, keyset-paged. */
  list(q: ListQuery = {}): Page<ImageRecord> {
    const limit = Math.min(Math.max(q.limit ?? 100, 1), MAX_PAGE);
    const { where, params } = this.filterSql(q);
    const desc = (q.sort ?? 'newest') === 'newest';
    if (q.cursor) {
      where.push(desc ? 'i.id < @after' : 'i.id > @after');
      params.after = decodeCursor(q.cursor);
    }
    const { from, order } = this.textSql(q.text, where, params);
    const dir = desc ? 'DESC' : 'ASC';
    const rows = this.db
      .prepare(
        `SELECT ${IMAGE_COLUMNS} FROM ${from} WHERE ${where.join(' AND ')}
         ORDER BY ${order} ${dir} LIMIT ${limit + 1}`,
      )
      .all(params) as ImageRow[];
    const more = rows.length > limit;
    const items = rows.slice(0, limit).map(toRecord);
    const last = items.at(-1);
    return { items, nextCursor: more && last ? encodeCursor(last.id) : null };
  }

  /** How many images pass the filters (and the search words, when given). */
  count(q: Omit<ListQuery, 'cursor' | 'limit' | 'sort'> = {}): number {
    const { where, params } = this.filterSql(q);
    const { from } = this.textSql(q.text, where, params);
    return (
      this.db.prepare(`SELECT count(*) AS n FROM ${from} WHERE ${where.join(' AND ')}`).get(params) as { n: number }
    ).n;
  }

  /** The search words' part of a listing: the FTS join (ordered by its rowids) or, for symbols only, a substring test. */
  private textSql(
    raw: string | undefined,
    where: string[],
    params: Record<string, unknown>,
  ): { from: string; order: string } {
    const text = raw?.trim();
    if (!text) return { from: 'images i', order: 'i.id' };
    checkPrompt(text, 'search');
    const match = ftsQuery(text);
    if (!match) {
      // Only symbols (emoji, punctuation): the tokenizer drops them, so match the text as it is.
      where.push('instr(i.prompt, @needle) > 0');
      params.needle = text;
      return { from: 'images i', order: 'i.id' };
    }
    where.push('images_fts MATCH @match');
    params.match = match;
    // FTS5 yields its matches in rowid order: a page is its first rows, no sort.
    return { from: 'images_fts f JOIN images i ON i.id = f.rowid', order: 'f.rowid' };
  }

  /** The packs (embedding spaces) images were made with, most used first. */
  packs(): { name: string; sha256: string; count: number }[] {
    return this.db
      .prepare(
        `SELECT pack_name AS name, pack_sha256 AS sha256, count(*) AS count FROM images WHERE trashed_at IS NULL
         GROUP BY pack_sha256, pack_name ORDER BY count DESC`,
      )
      .all() as { name: string; sha256: string; count: number }[];
  }

  latents(id: number): Latents {
    this.get(id);
    const e = this.db.prepare('SELECT pack_sha256, dim, z_i, z_t FROM embeddings WHERE image_id = ?').get(id) as
      { pack_sha256: string; dim: number; z_i: Buffer; z_t: Buffer | null } | undefined;
    if (!e)
      throw new LibraryError(
        'not_found',
        `image ${id} has no CLIP embedding yet (it is being encoded, or its import failed)`,
      );
    const v = this.db.prepare('SELECT z_i, shape, x_t, settings, psnr FROM inversions WHERE image_id = ?').get(id) as
      { z_i: Buffer; shape: string; x_t: Buffer; settings: string; psnr: number | null } | undefined;
    const image = this.get(id);
    return {
      pack: { name: image.pack.name, sha256: e.pack_sha256 },
      dim: e.dim,
      zi: toF32(e.z_i)!,
      zt: toF32(e.z_t),
      inversion: v
        ? {
            zi: toF32(v.z_i)!,
            xT: toF32(v.x_t)!,
            shape: JSON.parse(v.shape) as number[],
            settings: json(v.settings),
            psnr: v.psnr,
          }
        : null,
    };
  }

  lineage(id: number): { parents: LineageEdge[]; children: LineageEdge[] } {
    this.get(id);
    const edges = (sql: string): LineageEdge[] =>
      (this.db.prepare(sql).all(id) as { id: number; role: string; op: string; params: string }[]).map((r) => ({
        id: r.id,
        role: r.role,
        op: r.op,
        params: json(r.params),
      }));
    return {
      parents: edges(
        'SELECT parent_id AS id, role, op, params FROM lineage WHERE child_id = ? ORDER BY role, parent_id',
      ),
      children: edges('SELECT child_id AS id, role, op, params FROM lineage WHERE parent_id = ? ORDER BY child_id'),
    };
  }

  boardsOf(id: number): { id: number; name: string }[] {
    return this.db
      .prepare(
        'SELECT b.id, b.name FROM board_images bi JOIN boards b ON b.id = bi.board_id WHERE bi.image_id = ? ORDER BY b.name',
      )
      .all(id) as { id: number; name: string }[];
  }

  // -- semantic search ------------------------------------------------------------------------

  /** The embedding index of one pack's space, brought up to date with rows other processes added. */
  private index(packSha: string, dim: number): EmbeddingIndex {
    let entry = this.indexes.get(packSha);
    if (entry && entry.index.dim !== dim)
      throw new LibraryError('invalid', `embedding width ${dim} does not match the pack's ${entry.index.dim}`);
    if (!entry) {
      entry = { index: new EmbeddingIndex(dim), seen: 0 };
      this.indexes.set(packSha, entry);
    }
    // Raw rows straight into the index: no per-row object or Float32Array copy (half the load time
    // and memory of the row objects at 100k × 1,024 floats).
    const rows = this.db
      .prepare(
        'SELECT image_id, z_i FROM embeddings WHERE pack_sha256 = ? AND image_id > ? AND dim = ? ORDER BY image_id',
      )
      .raw()
      .iterate(packSha, entry.seen, dim) as IterableIterator<[number, Buffer]>;
    for (const [id, zi] of rows) {
      entry.index.upsertBytes(id, zi);
      entry.seen = id;
    }
    return entry.index;
  }

  /**
   * Images nearest `vector` (cosine) among those made with pack `packSha` that pass the filters
   * (trash excluded unless asked); `exclude` leaves out e.g. the query image itself.
   */
  similar(
    vector: Float32Array,
    packSha: string,
    k: number,
    q: ListQuery = {},
    exclude?: number,
  ): (ImageRecord & { score: number })[] {
    const index = this.index(packSha, vector.length);
    const { where, params } = this.filterSql(q);
    const wanted = Math.min(Math.max(k, 1), MAX_PAGE);
    const rowsOf = (hits: Hit[]): Map<number, ImageRow> => {
      const rows = this.db
        .prepare(
          `SELECT ${IMAGE_COLUMNS} FROM images i WHERE i.id IN (SELECT value FROM json_each(@ids)) AND ${where.join(' AND ')}`,
        )
        .all({ ...params, ids: JSON.stringify(hits.map((h) => h.id)) }) as ImageRow[];
      return new Map(rows.map((r) => [r.id, r]));
    };
    const records = (hits: Hit[], byId: Map<number, ImageRow>): (ImageRecord & { score: number })[] =>
      hits.flatMap((h) => {
        const r = byId.get(h.id);
        return r ? [{ ...toRecord(r), score: h.score }] : [];
      });
    // The index holds every embedding of the space; filters are SQL's. Most queries pass most rows,
    // so one round over a few times k nearest usually suffices; when it does not (a board, starred
    // imports), the ids that pass are read once and the scan skips the rest.
    const first = index.search(vector, Math.min(wanted * 4 + 16, index.size)).filter((h) => h.id !== exclude);
    const byId = rowsOf(first);
    for (const h of first) if (!byId.has(h.id) && !this.exists(h.id)) index.delete(h.id);
    const out = records(first, byId);
    if (out.length >= wanted || first.length >= index.size) return out.slice(0, wanted);
    const pass = new Set(
      (
        this.db
          .prepare(`SELECT i.id FROM images i WHERE ${where.join(' AND ')}`)
          .raw()
          .all(params) as [number][]
      ).map(([id]) => id),
    );
    pass.delete(exclude ?? -1);
    const hits = index.search(vector, wanted, (id) => pass.has(id));
    return records(hits, rowsOf(hits));
  }

  /** Whether image `id` is in the library (gallery or trash). */
  exists(id: number): boolean {
    return this.db.prepare('SELECT 1 FROM images WHERE id = ?').get(id) !== undefined;
  }

  // -- stars, trash, boards -------------------------------------------------------------------

  private existing(ids: number[]): void {
    const found = new Set(
      (
        this.db
          .prepare('SELECT id FROM images WHERE id IN (SELECT value FROM json_each(?))')
          .all(JSON.stringify(ids)) as { id: number }[]
      ).map((r) => r.id),
    );
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length) throw new LibraryError('not_found', `no such image: ${missing.slice(0, 5).join(', ')}`);
  }

  star(ids: number[], starred: boolean): number {
    this.existing(ids);
    return this.write(
      () =>
        this.db
          .prepare('UPDATE images SET starred = ? WHERE id IN (SELECT value FROM json_each(?))')
          .run(starred ? 1 : 0, JSON.stringify(ids)).changes,
    );
  }

  trash(ids: number[]): number {
    this.existing(ids);
    return this.write(
      () =>
        this.db
          .prepare(
            'UPDATE images SET trashed_at = ? WHERE trashed_at IS NULL AND id IN (SELECT value FROM json_each(?))',
          )
          .run(this.now(), JSON.stringify(ids)).changes,
    );
  }

  restore(ids: number[]): number {
    this.existing(ids);
    return this.write(
      () =>
        this.db
          .prepare(
            'UPDATE images SET trashed_at = NULL WHERE trashed_at IS NOT NULL AND id IN (SELECT value FROM json_each(?))',
          )
          .run(JSON.stringify(ids)).changes,
    );
  }

  /**
   * Deletes the trashed images for good: rows first (one transaction, with a journal entry per file
   * no other row uses), then those files, then the journal. A kill in between leaves journal entries
   * the next open finishes.
   */
  emptyTrash(only?: number[]): { deleted: number; filesRemoved: number; ids: number[] } {
    if (only) this.existing(only);
    const { ids, shas } = this.write(() =>
      this.db
        .transaction(() => {
          // The whole trash, or only those of `only` that are in it (live images are never deleted).
          const rows = this.db
            .prepare(
              `SELECT id, file_sha256 FROM images WHERE trashed_at IS NOT NULL
               ${only ? 'AND id IN (SELECT value FROM json_each(?))' : ''} ORDER BY id`,
            )
            .all(...(only ? [JSON.stringify(only)] : [])) as { id: number; file_sha256: string }[];
          if (rows.length === 0) return { ids: [] as number[], shas: [] as string[] };
          const ids = rows.map((r) => r.id);
          this.db
            .prepare(
              `INSERT INTO meta (key, value) VALUES ('images_deleted_max', CAST(? AS TEXT))
               ON CONFLICT (key) DO UPDATE SET value = CAST(max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)`,
            )
            .run(ids.reduce((a, b) => Math.max(a, b)));
          this.db.prepare('DELETE FROM images WHERE id IN (SELECT value FROM json_each(?))').run(JSON.stringify(ids));
          const shas = [...new Set(rows.map((r) => r.file_sha256))].filter((s) => !this.shaUsed(s));
          const journal = this.db.prepare(
            "INSERT OR IGNORE INTO file_journal (sha256, op, owner, created_at) VALUES (?, 'delete', ?, ?)",
          );
          for (const s of shas) journal.run(s, this.owner, this.now());
          return { ids, shas };
        })
        .immediate(),
    );
    // Each file is decided and unlinked holding the write lock: a save of the same picture either
    // journalled first (the file stays for it) or starts after the unlink and writes it afresh.
    const unjournal = this.db.prepare("DELETE FROM file_journal WHERE sha256 = ? AND op = 'delete' AND owner = ?");
    let filesRemoved = 0;
    for (const s of shas)
      this.write(() =>
        this.db
          .transaction(() => {
            if (!this.shaUsed(s) && !this.pendingWrite(s)) {
              this.removeFiles(s);
              filesRemoved++;
            }
            unjournal.run(s, this.owner);
          })
          .immediate(),
      );
    for (const { index } of this.indexes.values()) for (const id of ids) index.delete(id);
    return { deleted: ids.length, filesRemoved, ids };
  }

  private shaUsed(sha: string): boolean {
    return this.db.prepare('SELECT 1 FROM images WHERE file_sha256 = ? LIMIT 1').get(sha) !== undefined;
  }

  private removeFiles(sha: string): void {
    for (const ext of Object.values(MIME_EXT)) this.files.remove(this.files.pathOf(sha, ext));
    this.files.remove(this.files.thumbPathOf(sha));
  }

  listBoards(): Board[] {
    return this.db
      .prepare(
        `SELECT b.id, b.name, b.created_at AS createdAt,
            (SELECT count(*) FROM board_images bi JOIN images i ON i.id = bi.image_id
              WHERE bi.board_id = b.id AND i.trashed_at IS NULL) AS count,
            (SELECT bi.image_id FROM board_images bi JOIN images i ON i.id = bi.image_id
              WHERE bi.board_id = b.id AND i.trashed_at IS NULL ORDER BY bi.added_at DESC LIMIT 1) AS coverId
           FROM boards b ORDER BY b.name COLLATE NOCASE`,
      )
      .all() as Board[];
  }

  private boardName(name: string): string {
    const n = name.trim();
    if (n.length === 0 || n.length > 100) throw new LibraryError('invalid', 'board name: must be 1–100 characters');
    if (/\p{Cc}/u.test(n)) throw new LibraryError('invalid', 'board name: must not contain control characters');
    return n;
  }

  private board(id: number): Board {
    const b = this.listBoards().find((x) => x.id === id);
    if (!b) throw new LibraryError('not_found', `no such board: ${id}`);
    return b;
  }

  createBoard(name: string): Board {
    const n = this.boardName(name);
    try {
      const id = Number(
        this.db.prepare('INSERT INTO boards (name, created_at) VALUES (?, ?)').run(n, this.now()).lastInsertRowid,
      );
      return this.board(id);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw new LibraryError('conflict', `a board named "${n}" exists already`);
      throw new LibraryError('io', `library ${this.dir}: ${sqliteMessage(err)}`);
    }
  }

  renameBoard(id: number, name: string): Board {
    this.board(id);
    const n = this.boardName(name);
    try {
      this.db.prepare('UPDATE boards SET name = ? WHERE id = ?').run(n, id);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw new LibraryError('conflict', `a board named "${n}" exists already`);
      throw new LibraryError('io', `library ${this.dir}: ${sqliteMessage(err)}`);
    }
    return this.board(id);
  }

  /** Deletes the board, not its images. */
  deleteBoard(id: number): void {
    this.board(id);
    this.write(() => this.db.prepare('DELETE FROM boards WHERE id = ?').run(id));
  }

  addToBoard(boardId: number, ids: number[]): number {
    this.board(boardId);
    this.existing(ids);
    const add = this.db.prepare('INSERT OR IGNORE INTO board_images (board_id, image_id, added_at) VALUES (?, ?, ?)');
    return this.write(() =>
      this.db.transaction(() => ids.reduce((n, id) => n + add.run(boardId, id, this.now()).changes, 0))(),
    );
  }

  removeFromBoard(boardId: number, ids: number[]): number {
    this.board(boardId);
    return this.write(
      () =>
        this.db
          .prepare('DELETE FROM board_images WHERE board_id = ? AND image_id IN (SELECT value FROM json_each(?))')
          .run(boardId, JSON.stringify(ids)).changes,
    );
  }

  /** The sha256s of every image file, for merging imports without duplicates. */
  hasFile(sha: string): number | null {
    const r = this.db.prepare('SELECT id FROM images WHERE file_sha256 = ? ORDER BY id LIMIT 1').get(sha) as
      { id: number } | undefined;
    return r?.id ?? null;
  }

  // -- consistency ----------------------------------------------------------------------------

  /** Finishes or undoes file operations of writers that died: unreferenced files are removed. */
  private resolveJournal(): number {
    const rows = this.db.prepare('SELECT sha256, op, owner FROM file_journal').all() as {
      sha256: string;
      op: string;
      owner: string;
    }[];
    const writers = this.db.prepare("SELECT owner FROM file_journal WHERE sha256 = ? AND op = 'write'").pluck();
    let n = 0;
    for (const r of rows) {
      if (ownerAlive(r.owner, this.owner)) continue; // a live writer (this process included) is mid-save
      // Under the write lock, as in emptyTrash: a live save of the same picture keeps its file.
      this.db
        .transaction(() => {
          const liveSave = (writers.all(r.sha256) as string[]).some((o) => ownerAlive(o, this.owner));
          if (!this.shaUsed(r.sha256) && !liveSave) this.removeFiles(r.sha256);
          this.db
            .prepare('DELETE FROM file_journal WHERE sha256 = ? AND op = ? AND owner = ?')
            .run(r.sha256, r.op, r.owner);
        })
        .immediate();
      n++;
    }
    return n;
  }

  /**
   * `unclip gallery check`: SQLite's integrity check, rows whose file is missing or damaged, files no
   * row uses, leftover temp files and interrupted jobs. With repair: orphan files are deleted, rows
   * whose file is gone move to the trash (never deleted), missing thumbnails are remade.
   */
  async check(options: { repair?: boolean; verifyHashes?: boolean } = {}): Promise<CheckReport> {
    const integrity = (this.db.pragma('integrity_check') as { integrity_check: string }[])
      .map((r) => r.integrity_check)
      .join('; ');
    const journalResolved = this.resolveJournal();
    const tempFilesRemoved = this.files.sweepTemps();
    const { requeued, failed } = this.jobs.recover();
    const rows = this.db.prepare('SELECT id, file_sha256 AS sha, mime FROM images').all() as {
      id: number;
      sha: string;
      mime: ImageMime;
    }[];
    const used = new Set(rows.map((r) => r.sha));
    const pending = new Set(
      (this.db.prepare('SELECT sha256 FROM file_journal').all() as { sha256: string }[]).map((r) => r.sha256),
    );
    const missingFiles: CheckReport['missingFiles'] = [];
    const damagedFiles: string[] = [];
    let missingThumbs = 0;
    for (const r of rows) {
      const path = this.files.pathOf(r.sha, MIME_EXT[r.mime]);
      if (!existsSync(path)) {
        missingFiles.push({ id: r.id, sha256: r.sha });
        continue;
      }
      if (options.verifyHashes && sha256Hex(readFileSync(path)) !== r.sha) damagedFiles.push(path);
      if (!existsSync(this.files.thumbPathOf(r.sha))) missingThumbs++;
    }
    const orphanFiles: string[] = [];
    for (const dir of [this.files.filesDir, this.files.thumbsDir])
      for (const f of this.files.walk(dir))
        // A file younger than a minute may belong to a save in flight whose rows are not committed yet.
        if (!used.has(f.sha) && !pending.has(f.sha) && this.now() - (mtimeMs(f.path) ?? this.now()) > ORPHAN_GRACE_MS)
          orphanFiles.push(f.path);
    if (options.repair) {
      for (const p of orphanFiles) this.files.remove(p);
      const broken = [
        ...missingFiles.map((m) => m.id),
        ...rows.filter((r) => damagedFiles.includes(this.files.pathOf(r.sha, MIME_EXT[r.mime]))).map((r) => r.id),
      ];
      if (broken.length) this.trash(broken);
      for (const r of rows)
        if (existsSync(this.files.pathOf(r.sha, MIME_EXT[r.mime])) && !existsSync(this.files.thumbPathOf(r.sha)))
          await this.thumbPath(r.id).catch(() => undefined);
    }
    return {
      integrity,
      missingFiles,
      orphanFiles,
      damagedFiles,
      missingThumbs,
      tempFilesRemoved,
      journalResolved,
      jobsRequeued: requeued,
      jobsFailed: failed,
      repaired: options.repair === true,
    };
  }
}

/** A library folder must be a folder we can create or write, and never one under /proc or /sys. */
export function checkLibraryFolder(dir: string, create = false): void {
  try {
    checkFolderPath(dir, { create });
  } catch (err) {
    if (err instanceof FolderError)
      throw new LibraryError('io', `cannot hold a library: ${err.message} (--library picks the folder)`);
    throw err;
  }
}

/** A file's device and inode; null when it is not there. */
function fileIdOf(path: string): { dev: number; ino: number } | null {
  try {
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** null: the file went away meanwhile. */
function mtimeMs(path: string): number | null {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return null;
  }
}

async function makeThumb(bytes: Uint8Array): Promise<Buffer> {
  try {
    return await sharp(bytes, { limitInputPixels: 40_000_000 })
      .resize(THUMB_SIZE, THUMB_SIZE, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 82 })
      .toBuffer();
  } catch (err) {
    throw new LibraryError('invalid', `not a picture sharp can read (${sqliteMessage(err)})`);
  }
}

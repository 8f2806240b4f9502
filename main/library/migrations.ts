// The library's schema, as an ordered list of migrations. PRAGMA user_version is the number of
// migrations applied; each runs in one transaction (db.ts), after a backup of the file.
// Never edit a shipped migration: add the next one (and a test that migrates to it from every
// earlier version with data in it, test/unit/library/migrations.test.ts).

export interface Migration {
  /** What this version adds, for the backup's name and error messages. */
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    name: 'initial',
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

      -- Every generate / vary / interpolate / textdiff / invert / import request, in order.
      CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('generate', 'vary', 'interpolate', 'textdiff', 'invert', 'import')),
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
        args TEXT NOT NULL CHECK (json_valid(args)),
        position REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 3,
        lease_owner TEXT,
        lease_until INTEGER,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        progress TEXT,
        error TEXT,
        result TEXT,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER
      ) STRICT;
      CREATE INDEX jobs_by_status ON jobs (status, position, id);

      CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL
          CHECK (kind IN ('generated', 'variation', 'interpolation', 'textdiff', 'reconstruction', 'import')),
        prompt TEXT NOT NULL DEFAULT '',
        settings TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),
        seed INTEGER,
        pack_name TEXT NOT NULL,
        pack_sha256 TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        file_sha256 TEXT NOT NULL,
        file_bytes INTEGER NOT NULL,
        mime TEXT NOT NULL DEFAULT 'image/png',
        created_at INTEGER NOT NULL,
        starred INTEGER NOT NULL DEFAULT 0,
        trashed_at INTEGER,
        job_id INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
        job_index INTEGER,
        UNIQUE (job_id, job_index)
      ) STRICT;
      -- Keyset pages: (created_at, id) in either direction, per common filter; trashed rows apart.
      CREATE INDEX images_live ON images (created_at, id) WHERE trashed_at IS NULL;
      CREATE INDEX images_trash ON images (trashed_at, id) WHERE trashed_at IS NOT NULL;
      CREATE INDEX images_kind ON images (kind, created_at, id) WHERE trashed_at IS NULL;
      CREATE INDEX images_starred ON images (created_at, id) WHERE starred = 1 AND trashed_at IS NULL;
      CREATE INDEX images_pack ON images (pack_sha256, created_at, id);
      CREATE INDEX images_file ON images (file_sha256);

      -- Full-text search over prompts and captions (external content: the text lives once, in images).
      CREATE VIRTUAL TABLE images_fts USING fts5 (
        prompt, content = 'images', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
      );
      CREATE TRIGGER images_fts_insert AFTER INSERT ON images BEGIN
        INSERT INTO images_fts (rowid, prompt) VALUES (new.id, new.prompt);
      END;
      CREATE TRIGGER images_fts_delete AFTER DELETE ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
      END;
      CREATE TRIGGER images_fts_update AFTER UPDATE OF prompt ON images BEGIN
        INSERT INTO images_fts (images_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
        INSERT INTO images_fts (rowid, prompt) VALUES (new.id, new.prompt);
      END;

      -- The CLIP embeddings an image was made from / encodes to (float32 little-endian), apart from
      -- images so that page scans never read them.
      CREATE TABLE embeddings (
        image_id INTEGER PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
        pack_sha256 TEXT NOT NULL,
        dim INTEGER NOT NULL,
        z_i BLOB NOT NULL CHECK (length(z_i) = 4 * dim),
        z_t BLOB CHECK (z_t IS NULL OR length(z_t) = 4 * dim)
      ) STRICT;
      CREATE INDEX embeddings_pack ON embeddings (pack_sha256, image_id);

      -- DDIM inversion of an image: the CLIP image embedding it was inverted with (a generated image's
      -- prior z_i differs from CLIP's encoding of the final picture) and the decoder noise x_T
      -- (float32 [3, D, D]) it found. Blobs, not files: 12-48 KB reads faster from SQLite than from
      -- files (sqlite.org/intern-v-extern-blob.html), and rows and tensors then commit together.
      CREATE TABLE inversions (
        image_id INTEGER PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
        z_i BLOB NOT NULL,
        shape TEXT NOT NULL CHECK (json_valid(shape)),
        x_t BLOB NOT NULL,
        settings TEXT NOT NULL CHECK (json_valid(settings)),
        psnr REAL,
        created_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE lineage (
        child_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
        parent_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
        role TEXT NOT NULL DEFAULT 'source',
        op TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
        PRIMARY KEY (child_id, parent_id, role)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX lineage_parent ON lineage (parent_id, child_id);

      CREATE TABLE boards (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        created_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE board_images (
        board_id INTEGER NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
        image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (board_id, image_id)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX board_images_image ON board_images (image_id);

      -- Files being written or deleted, so that a process killed between the file and its rows
      -- leaves a note the next open acts on (no orphan files, no rows without files).
      CREATE TABLE file_journal (
        sha256 TEXT NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('write', 'delete')),
        owner TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (sha256, op, owner)
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    name: 'insertion-order',
    sql: `
      -- The gallery pages in insertion order (id), which full-text search can follow straight down
      -- its rowids and stop after a page; ordering by created_at made it sort every match.
      DROP INDEX images_live;
      DROP INDEX images_kind;
      DROP INDEX images_starred;
      DROP INDEX images_pack;
      CREATE INDEX images_created ON images (created_at) WHERE trashed_at IS NULL;
      CREATE INDEX images_kind ON images (kind, id) WHERE trashed_at IS NULL;
      CREATE INDEX images_starred ON images (id) WHERE starred = 1 AND trashed_at IS NULL;
      CREATE INDEX images_pack ON images (pack_sha256, id);

      -- Prefix indexes for one- and two-letter prefixes: the search box matches each word as a
      -- prefix, and "a" alone otherwise merges the lists of every word that starts with it.
      DROP TABLE images_fts;
      CREATE VIRTUAL TABLE images_fts USING fts5 (
        prompt, content = 'images', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2',
        prefix = '1 2'
      );
      INSERT INTO images_fts (images_fts) VALUES ('rebuild');
    `,
  },
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

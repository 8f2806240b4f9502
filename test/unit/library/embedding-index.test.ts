import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EmbeddingIndex, type Hit } from '../../../main/library/embedding-index.ts';
import { mulberry32 } from '../../../main/engine/rng.ts';

function gaussian(rng: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

function randomVector(rng: () => number, dim: number, scale = 1): Float32Array {
  const v = new Float32Array(dim);
  for (let j = 0; j < dim; j++) v[j] = scale * gaussian(rng);
  return v;
}

/** Random cluster centres plus noise (within-cluster cosine about 0.8), unnormalised, like CLIP z_i. */
function clustered(rng: () => number, n: number, dim: number, clusters: number): Float32Array[] {
  const centres = Array.from({ length: clusters }, () => randomVector(rng, dim, 1 / Math.sqrt(dim)));
  return Array.from({ length: n }, () => {
    const c = centres[Math.floor(rng() * clusters)]!;
    const norm = 0.5 + 2 * rng();
    return c.map((x) => norm * (x + (0.5 / Math.sqrt(dim)) * gaussian(rng)));
  });
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let j = 0; j < a.length; j++) {
    ab += a[j]! * b[j]!;
    aa += a[j]! * a[j]!;
    bb += b[j]! * b[j]!;
  }
  return ab / Math.sqrt(aa * bb);
}

function naive(rows: Map<number, Float32Array>, q: Float32Array, k: number, allow?: (id: number) => boolean): Hit[] {
  const all = [...rows]
    .filter(([id]) => !allow || allow(id))
    .map(([id, v]) => ({ id, score: cosine(v, q) }))
    .sort((a, b) => b.score - a.score || a.id - b.id);
  return all.slice(0, Math.max(0, k));
}

function assertSame(got: Hit[], want: Hit[], what: string): void {
  assert.deepEqual(
    got.map((h) => h.id),
    want.map((h) => h.id),
    `${what}: ids`,
  );
  for (let i = 0; i < got.length; i++)
    assert.ok(
      Math.abs(got[i]!.score - want[i]!.score) <= 1e-5,
      `${what}: score ${i} ${got[i]!.score} vs ${want[i]!.score}`,
    );
}

function build(dim: number, vectors: Float32Array[], firstId = 1, initialCapacity?: number) {
  const index = new EmbeddingIndex(dim, initialCapacity ? { initialCapacity } : {});
  const rows = new Map<number, Float32Array>();
  vectors.forEach((v, i) => {
    index.upsert(firstId + i, v);
    rows.set(firstId + i, v);
  });
  return { index, rows };
}

for (const dim of [128, 1024, 77]) {
  test(`search equals a naive exact computation on random data (width ${dim})`, () => {
    const rng = mulberry32(dim);
    const { index, rows } = build(
      dim,
      Array.from({ length: 1500 }, () => randomVector(rng, dim)),
    );
    assert.equal(index.size, 1500);
    for (let t = 0; t < 5; t++) {
      const q = randomVector(rng, dim, 3);
      assertSame(index.search(q, 50), naive(rows, q, 50), `query ${t}`);
    }
  });

  test(`search equals a naive exact computation on clustered data (width ${dim})`, () => {
    const rng = mulberry32(1000 + dim);
    const vectors = clustered(rng, 3000, dim, 12);
    const { index, rows } = build(dim, vectors, 10);
    for (let t = 0; t < 5; t++) {
      // queries near stored rows: many close scores inside one cluster
      const near = vectors[Math.floor(rng() * vectors.length)]!;
      const q = near.map((x) => x + (0.1 / Math.sqrt(dim)) * gaussian(rng));
      assertSame(index.search(q, 50), naive(rows, q, 50), `query ${t}`);
      assertSame(index.search(q, 7), naive(rows, q, 7), `query ${t}, k 7`);
    }
  });
}

test('ties (duplicates and scaled copies) are broken by the smaller id', () => {
  const rng = mulberry32(5);
  const dim = 128;
  const v = randomVector(rng, dim);
  const index = new EmbeddingIndex(dim);
  index.upsert(40, v);
  index.upsert(
    7,
    v.map((x) => 2 * x),
  );
  index.upsert(
    23,
    v.map((x) => 0.5 * x),
  );
  index.upsert(3, randomVector(rng, dim));
  index.upsert(11, v);
  const hits = index.search(v, 4);
  assert.deepEqual(
    hits.slice(0, 4).map((h) => h.id),
    [7, 11, 23, 40],
  );
  for (const h of hits) assert.ok(Math.abs(h.score - 1) < 1e-6);
  assert.ok(hits.every((h) => h.score <= 1));
  // the opposite direction: all four are at -1, tied, after the unrelated row
  const opposite = index.search(
    v.map((x) => -x),
    5,
  );
  assert.equal(opposite[0]!.id, 3);
  assert.deepEqual(
    opposite.slice(1).map((h) => h.id),
    [7, 11, 23, 40],
  );
});

test('k larger than the size returns every row, sorted; k 0 and an empty index return nothing', () => {
  const rng = mulberry32(9);
  const { index, rows } = build(
    64,
    Array.from({ length: 20 }, () => randomVector(rng, 64)),
  );
  const q = randomVector(rng, 64);
  const hits = index.search(q, 1000);
  assert.equal(hits.length, 20);
  assertSame(hits, naive(rows, q, 20), 'all rows');
  assert.deepEqual(index.search(q, 0), []);
  assert.equal(index.search(q, Infinity).length, 20);
  assert.deepEqual(new EmbeddingIndex(64).search(q, 10), []);
});

test('allow filters ids, is asked at most once per id, and may leave fewer than k', () => {
  const rng = mulberry32(11);
  const vectors = clustered(rng, 2000, 128, 8);
  const { index, rows } = build(128, vectors);
  const q = vectors[17]!;
  const asked = new Map<number, number>();
  const allow = (id: number) => {
    asked.set(id, (asked.get(id) ?? 0) + 1);
    return id % 3 === 0;
  };
  const got = index.search(q, 40, allow);
  assert.ok(asked.size > 0 && [...asked.values()].every((c) => c === 1));
  assert.ok(asked.size < 2000, 'allow is asked only about rows that score high enough');
  assertSame(
    got,
    naive(rows, q, 40, (id) => id % 3 === 0),
    'every third id',
  );
  const few = (id: number) => id === 5 || id === 1999 || id === 700;
  const hits = index.search(q, 50, few);
  assert.deepEqual(
    hits.map((h) => h.id).sort((a, b) => a - b),
    [5, 700, 1999],
  );
  assertSame(hits, naive(rows, q, 50, few), 'three allowed');
  assert.deepEqual(
    index.search(q, 10, () => false),
    [],
  );
});

test('upsert replaces the row of an id', () => {
  const rng = mulberry32(13);
  const a = randomVector(rng, 128);
  const b = randomVector(rng, 128);
  const index = new EmbeddingIndex(128);
  index.upsert(1, a);
  index.upsert(2, randomVector(rng, 128));
  index.upsert(1, b);
  assert.equal(index.size, 2);
  assert.ok(index.has(1));
  const hits = index.search(b, 1);
  assert.equal(hits[0]!.id, 1);
  assert.ok(Math.abs(hits[0]!.score - 1) < 1e-6);
  assert.ok(index.search(a, 2).every((h) => h.id !== 1 || Math.abs(h.score - cosine(a, b)) < 1e-5));
});

test('delete moves the last row in, and searches stay exact', () => {
  const rng = mulberry32(17);
  const { index, rows } = build(
    128,
    Array.from({ length: 500 }, () => randomVector(rng, 128)),
  );
  for (const id of [1, 250, 500, 499, 77]) {
    assert.equal(index.delete(id), true);
    rows.delete(id);
    assert.equal(index.has(id), false);
  }
  assert.equal(index.delete(250), false);
  assert.equal(index.delete(12345), false);
  assert.equal(index.size, 495);
  for (let t = 0; t < 3; t++) {
    const q = randomVector(rng, 128);
    assertSame(index.search(q, 30), naive(rows, q, 30), `after delete ${t}`);
  }
  // a deleted id can come back
  const v = randomVector(rng, 128);
  index.upsert(250, v);
  rows.set(250, v);
  assert.equal(index.search(v, 1)[0]!.id, 250);
  assertSame(index.search(v, 30), naive(rows, v, 30), 're-added');
  for (const id of [...rows.keys()]) index.delete(id);
  assert.equal(index.size, 0);
  assert.deepEqual(index.search(v, 5), []);
});

test('a query of the wrong width is refused with a one-line message naming both widths', () => {
  const index = new EmbeddingIndex(128);
  index.upsert(1, new Float32Array(128).fill(1));
  assert.throws(
    () => index.search(new Float32Array(1024).fill(1), 5),
    (err: Error) => /1024/.test(err.message) && /128/.test(err.message) && !err.message.includes('\n'),
  );
  assert.throws(() => index.upsert(2, new Float32Array(64).fill(1)), /64.*128/);
});

test('zero and non-finite vectors are refused', () => {
  const index = new EmbeddingIndex(16);
  assert.throws(() => index.upsert(1, new Float32Array(16)), /zero or not finite/);
  const nan = new Float32Array(16).fill(1);
  nan[3] = NaN;
  assert.throws(() => index.upsert(1, nan), /zero or not finite/);
  const inf = new Float32Array(16).fill(1);
  inf[0] = Infinity;
  assert.throws(() => index.upsert(1, inf), /zero or not finite/);
  assert.equal(index.size, 0);
  assert.equal(index.has(1), false);
  index.upsert(1, new Float32Array(16).fill(1));
  assert.throws(() => index.search(new Float32Array(16), 5), /zero or not finite/);
  // tiny but non-zero vectors have a direction
  index.upsert(2, new Float32Array(16).fill(1e-30));
  assert.equal(index.search(new Float32Array(16).fill(1), 2).length, 2);
});

test('the index grows past its initial capacity without losing rows', () => {
  const rng = mulberry32(19);
  const vectors = Array.from({ length: 1000 }, () => randomVector(rng, 96));
  const { index, rows } = build(96, vectors, 1, 4);
  assert.equal(index.size, 1000);
  for (let t = 0; t < 3; t++) {
    const q = vectors[Math.floor(rng() * vectors.length)]!;
    assertSame(index.search(q, 25), naive(rows, q, 25), `grown ${t}`);
  }
  for (let i = 0; i < 1000; i += 7) assert.equal(index.search(vectors[i]!, 1)[0]!.id, i + 1);
});

test("widths around the kernel's 16-float step (padding stays zero through deletes and re-adds)", () => {
  for (const dim of [1, 2, 15, 16, 17, 31, 33, 65]) {
    const rng = mulberry32(100 + dim);
    const { index, rows } = build(
      dim,
      Array.from({ length: 300 }, () => randomVector(rng, dim)),
      1,
      8,
    );
    for (let id = 1; id <= 300; id += 3) {
      index.delete(id);
      rows.delete(id);
    }
    for (let id = 1000; id < 1050; id++) {
      const v = randomVector(rng, dim);
      index.upsert(id, v);
      rows.set(id, v);
    }
    for (let t = 0; t < 3; t++) {
      const q = randomVector(rng, dim);
      assertSame(index.search(q, 20), naive(rows, q, 20), `width ${dim}, query ${t}`);
    }
  }
});

test('upsertBytes stores a blob (at any byte offset) exactly as upsert stores the vector', () => {
  const rng = mulberry32(23);
  const dim = 96;
  const vectors = clustered(rng, 700, dim, 6);
  const byVector = new EmbeddingIndex(dim, { initialCapacity: 4 });
  const byBytes = new EmbeddingIndex(dim, { initialCapacity: 4 });
  vectors.forEach((v, i) => {
    byVector.upsert(i + 1, v);
    // A blob as SQLite hands it over: little-endian float32 bytes, not necessarily 4-byte aligned.
    const offset = i % 4;
    const blob = new Uint8Array(offset + 4 * dim);
    blob.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), offset);
    assert.equal(byBytes.upsertBytes(i + 1, blob.subarray(offset)), true);
  });
  assert.equal(byBytes.size, 700);
  for (let t = 0; t < 4; t++) {
    const q = vectors[Math.floor(rng() * vectors.length)]!;
    assert.deepEqual(byBytes.search(q, 30), byVector.search(q, 30), `query ${t}`);
  }
});

test('upsertBytes skips a vector with no direction and refuses a blob of the wrong length', () => {
  const index = new EmbeddingIndex(8);
  const one = new Float32Array(8).fill(1);
  assert.equal(index.upsertBytes(1, new Uint8Array(one.buffer)), true);
  assert.equal(index.upsertBytes(2, new Uint8Array(32)), false, 'zeros: a placeholder, not stored');
  const nan = new Float32Array(8).fill(1);
  nan[5] = NaN;
  assert.equal(index.upsertBytes(1, new Uint8Array(nan.buffer)), false);
  assert.equal(index.size, 1);
  assert.equal(index.has(2), false);
  assert.ok(Math.abs(index.search(one, 1)[0]!.score - 1) < 1e-6, 'the earlier row of id 1 stays');
  assert.throws(
    () => index.upsertBytes(3, new Uint8Array(31)),
    (err: Error) => /31 bytes/.test(err.message) && /8 float32/.test(err.message),
  );
  assert.throws(() => index.upsertBytes(1.5, new Uint8Array(32)), /integer/);
});

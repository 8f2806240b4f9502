import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeLatent,
  encodeLatent,
  isLatentPath,
  latentPathFor,
  loadLatent,
  saveLatent,
  type BipartiteLatent,
} from '../../../main/engine/manipulations/latent.ts';
import { readSafetensors } from '../../../main/engine/safetensors.ts';

const D = 4;
const E = 8;
const latent = (): BipartiteLatent => ({
  zi: Float32Array.from({ length: E }, (_, i) => i / 3),
  xT: Float32Array.from({ length: 3 * D * D }, (_, i) => Math.sin(i)),
  zt: Float32Array.from({ length: E }, (_, i) => -i),
  caption: 'a red rocket',
  inversion: { steps: 50, guidance: 1 },
  psnr: 31.5,
  decoderSize: D,
  embeddingDim: E,
  pack: { name: 'p', fingerprint: 'ab'.repeat(32) },
  source: 'rocket.png',
});

test('latent file: round trip, readable as plain safetensors, 8-byte aligned data', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latent-'));
  const file = join(dir, 'rocket.latent.safetensors');
  await saveLatent(file, latent());
  const back = await loadLatent(file);
  assert.deepEqual(back, latent());
  const tensors = await readSafetensors(file);
  assert.deepEqual(tensors.get('x_T')!.shape, [3, D, D]);
  assert.deepEqual(tensors.get('z_i')!.data, latent().zi);
  const bytes = encodeLatent(latent());
  assert.equal((8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))) % 8, 0);
  const { zt: _zt, ...noCaption } = latent();
  assert.equal(decodeLatent(encodeLatent({ ...noCaption, caption: '' })).zt, undefined);
});

test('latent file: other files fail with one line that says how to make one', async () => {
  assert.throws(
    () => decodeLatent(new Uint8Array(3), 'x'),
    /^InputError: x: not an unCLIP latent file \(too short\); make one with `unclip invert IMAGE`$/,
  );
  const dir = mkdtempSync(join(tmpdir(), 'latent-'));
  const file = join(dir, 'a.latent.safetensors');
  writeFileSync(file, Buffer.from('{"hello":1}'));
  await assert.rejects(loadLatent(file), /not an unCLIP latent file/);
  await assert.rejects(loadLatent(join(dir, 'missing.latent.safetensors')), /cannot read \(ENOENT\)/);
  const future = encodeLatent(latent());
  const text = Buffer.from(future).toString('latin1').replace('"version":"1"', '"version":"9"');
  assert.throws(() => decodeLatent(Buffer.from(text, 'latin1'), 'f'), /latent format version 9 is not supported/);
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- free-form edits of a JSON header
type Json = Record<string, any>;

/** The file's header and data, to be edited and put back together (header padded like the original). */
function split(bytes: Uint8Array): { header: Json; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString()), data: bytes.subarray(8 + n) };
}
function join8(header: unknown, data: Uint8Array): Uint8Array {
  const head = Buffer.from(JSON.stringify(header));
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}
/** A latent whose header (or its "latent" metadata, as an object) was edited by `edit`. */
function hostile(edit: (header: Json, meta: Json) => void): Uint8Array {
  const { header, data } = split(encodeLatent(latent()));
  const meta = JSON.parse(header.__metadata__.latent);
  edit(header, meta);
  if (header.__metadata__?.latent !== undefined) header.__metadata__.latent = JSON.stringify(meta);
  return join8(header, data);
}

test('latent file: a damaged or hostile header fails with one line naming the file and field', () => {
  const cases: [(h: Json, m: Json) => void, RegExp][] = [
    [(h) => (h.__metadata__ = null), /__metadata__: must be an object of strings/],
    [(h) => (h.__metadata__.version = 1), /__metadata__ version: .*expected string/],
    [(_, m) => delete m.pack, /metadata latent\.pack: .*expected object/],
    [(_, m) => (m.pack.fingerprint = 7), /metadata latent\.pack\.fingerprint: .*expected string/],
    [(_, m) => (m.caption = { text: 'a cat' }), /metadata latent\.caption: .*expected string, received object/],
    [(_, m) => (m.decoderSize = 4.5), /metadata latent\.decoderSize: .*expected int/],
    [(h) => delete h.z_i.data_offsets, /tensor "z_i" data_offsets: must be \[begin, end\]/],
    [(h) => (h.z_i.data_offsets = [-64, -32]), /tensor "z_i" data_offsets\[0\]: must be a non-negative integer/],
    [(h) => (h.z_i.data_offsets = [0.5, 32.5]), /tensor "z_i" data_offsets\[0\]: must be a non-negative integer/],
    [(h) => (h.z_i.data_offsets = [32, 0]), /tensor "z_i" data_offsets: begin 32 is after end 0/],
    [(h) => (h.z_t.data_offsets = [224, 10_000]), /tensor "z_t" data_offsets: end 10000 is past the 256 bytes of data/],
    [(h) => (h.z_i.data_offsets = [0, 28]), /tensor "z_i" data_offsets: 28 bytes, but F32 \[8\] takes 32/],
    [(h) => (h.x_T.data_offsets = [16, 208]), /tensor "x_T" data_offsets: overlaps tensor "z_i"/],
    [(h) => (h.z_i.dtype = 'F33'), /tensor "z_i" dtype: must be one of BOOL, /],
    [(h) => (h.z_i.shape = [2, -4]), /tensor "z_i" shape\[1\]: must be a non-negative integer/],
    [(h) => (h.z_i.shape = [4, 2]), /tensor "z_i" is F32 \[4, 2\], expected F32 \[8\]/],
    [(h) => (h.z_i = 'zeros'), /tensor "z_i": must be an object \{dtype, shape, data_offsets\}/],
    [(h) => delete h.x_T, /z_i or x_T missing/],
  ];
  for (const [edit, message] of cases) {
    const bytes = hostile(edit);
    assert.throws(
      () => decodeLatent(bytes, 'f.latent.safetensors'),
      (e: Error) => {
        assert.equal(e.name, 'InputError');
        assert.match(e.message, /^f\.latent\.safetensors: not an unCLIP latent file \(/);
        assert.match(e.message, message);
        assert.equal(e.message.split('\n').length, 1);
        return true;
      },
      String(edit),
    );
  }
  // a header that is JSON but not an object
  assert.throws(() => decodeLatent(join8(null, new Uint8Array(0)), 'f'), /\(header: must be a JSON object\)/);
  // an exact reconstruction's PSNR (Infinity, written as null) reads back as Infinity
  assert.equal(decodeLatent(encodeLatent({ ...latent(), psnr: Infinity })).psnr, Infinity);
});

test('plain safetensors: offsets are checked before any byte is read', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latent-'));
  const file = join(dir, 'neg.safetensors');
  const { header, data } = split(encodeLatent(latent()));
  header.z_i.data_offsets = [-8, 24];
  writeFileSync(file, join8(header, data));
  await assert.rejects(readSafetensors(file), {
    name: 'InputError',
    message: `${file}: not a safetensors file (tensor "z_i" data_offsets[0]: must be a non-negative integer)`,
  });
});

test('latent paths', () => {
  assert.equal(latentPathFor('/a/b/cat.png'), '/a/b/cat.latent.safetensors');
  assert.ok(isLatentPath('X.LATENT.safetensors'));
  assert.ok(!isLatentPath('x.safetensors'));
});

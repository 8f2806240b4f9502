// The safetensors format (8-byte little-endian header length, JSON header, raw little-endian data), read
// as untrusted input: the header is checked against the spec (dtypes, shapes, offsets inside the data,
// sizes matching dtype × shape, no overlaps) before any tensor byte is touched, and each problem is one
// line naming the tensor and field.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { InputError } from './settings.ts';

/** Bytes per element of each dtype the spec defines. */
const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
} as const;
export type Dtype = keyof typeof DTYPE_BYTES;

const index = z
  .int({ error: 'must be a non-negative integer' })
  .nonnegative({ error: 'must be a non-negative integer' });
const dtypes = Object.keys(DTYPE_BYTES) as Dtype[];

const TensorSchema = z.object(
  {
    dtype: z.enum(dtypes, { error: `must be one of ${dtypes.join(', ')}` }),
    shape: z.array(index, { error: 'must be an array of sizes' }),
    data_offsets: z.tuple([index, index], { error: 'must be [begin, end]' }),
  },
  { error: 'must be an object {dtype, shape, data_offsets}' },
);

const HeaderSchema = z
  .object(
    { __metadata__: z.record(z.string(), z.string(), { error: 'must be an object of strings' }).optional() },
    { error: 'must be a JSON object' },
  )
  .catchall(TensorSchema);

/** One tensor: its dtype, shape and raw bytes (a view into the file). */
export interface RawTensor {
  dtype: Dtype;
  shape: number[];
  bytes: Uint8Array;
}

export interface Safetensors {
  metadata: Record<string, string> | undefined;
  tensors: Map<string, RawTensor>;
}

/** "z_i", "data_offsets", 0 → `tensor "z_i" data_offsets[0]`. */
function field(path: PropertyKey[]): string {
  if (path.length === 0) return 'header';
  const [key, ...rest] = path;
  const head = key === '__metadata__' ? '__metadata__' : `tensor "${String(key)}"`;
  return head + rest.map((p) => (typeof p === 'number' ? `[${p}]` : ` ${String(p)}`)).join('');
}

/** Parses and checks a whole safetensors file; `bad(why)` makes the error to throw. */
export function parseSafetensors(bytes: Uint8Array, bad: (why: string) => Error): Safetensors {
  if (bytes.byteLength < 8) throw bad('too short');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.byteLength - 8) throw bad(`header length ${headerLen} is past the end of the file`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLen)).toString('utf8'));
  } catch {
    throw bad('header is not JSON');
  }
  const parsed = HeaderSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw bad(`${field(issue.path)}: ${issue.message}`);
  }
  const { __metadata__: metadata, ...entries } = parsed.data;
  // offsets count from the end of the header, so non-negative ones can never reach back into it
  const data = bytes.subarray(8 + headerLen);
  const byStart = Object.entries(entries).sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0]);
  const tensors = new Map<string, RawTensor>();
  let previous: [string, number] | undefined;
  for (const [name, t] of byStart) {
    const [begin, end] = t.data_offsets;
    const where = `tensor "${name}" data_offsets`;
    if (begin > end) throw bad(`${where}: begin ${begin} is after end ${end}`);
    if (end > data.byteLength) throw bad(`${where}: end ${end} is past the ${data.byteLength} bytes of data`);
    const size = DTYPE_BYTES[t.dtype] * t.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== size)
      throw bad(`${where}: ${end - begin} bytes, but ${t.dtype} [${t.shape.join(', ')}] takes ${size}`);
    if (previous && begin < previous[1]) throw bad(`${where}: overlaps tensor "${previous[0]}"`);
    previous = [name, end];
    tensors.set(name, { dtype: t.dtype, shape: t.shape, bytes: data.subarray(begin, end) });
  }
  return { metadata, tensors };
}

export interface StoredTensor {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

/** The float32 tensors of a file (the parity fixtures). */
export async function readSafetensors(file: string): Promise<Map<string, StoredTensor>> {
  const buf = await readFile(file).catch((e: NodeJS.ErrnoException) => {
    throw new InputError(`${file}: cannot read (${e.code ?? e.message})`);
  });
  const { tensors } = parseSafetensors(buf, (why) => new InputError(`${file}: not a safetensors file (${why})`));
  const out = new Map<string, StoredTensor>();
  for (const [name, t] of tensors) {
    if (t.dtype !== 'F32') throw new InputError(`${file}: tensor "${name}" is ${t.dtype}, expected F32`);
    // copy: the file buffer's offset need not be 4-byte aligned
    const data = new Float32Array(t.bytes.byteLength / 4);
    new Uint8Array(data.buffer).set(t.bytes);
    out.set(name, { dtype: t.dtype, shape: t.shape, data });
  }
  return out;
}

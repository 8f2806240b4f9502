// Minimal reader for the safetensors format (8-byte little-endian header length, JSON header,
// raw little-endian data): enough for the float32 parity fixtures.
import { readFile } from 'node:fs/promises';

export interface StoredTensor {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

export async function readSafetensors(file: string): Promise<Map<string, StoredTensor>> {
  const buf = await readFile(file).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`${file}: cannot read (${e.code ?? e.message})`);
  });
  if (buf.length < 8) throw new Error(`${file}: too short to be a safetensors file`);
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (headerLen > buf.length - 8) throw new Error(`${file}: header length ${headerLen} is past the end of the file`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  } catch {
    throw new Error(`${file}: header is not valid JSON`);
  }
  const base = 8 + headerLen;
  const out = new Map<string, StoredTensor>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(`${file}: tensor ${name} is ${t.dtype}, expected F32`);
    const [start, end] = t.data_offsets;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (end - start !== count * 4 || base + end > buf.length)
      throw new Error(`${file}: tensor ${name} has bad offsets`);
    // copy: the file buffer's offset need not be 4-byte aligned
    const bytes = buf.subarray(base + start, base + end);
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(bytes);
    out.set(name, { dtype: t.dtype, shape: t.shape, data });
  }
  return out;
}

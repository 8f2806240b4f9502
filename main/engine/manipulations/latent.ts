// The bipartite latent (z_i, x_T) of a picture (Ramesh et al. 2022, §3.1 / fig. 3): its CLIP image embedding
// and the decoder noise that DDIM inversion found for it, plus what is needed to reuse them — the caption the
// decoder was conditioned on, the inversion settings, the reconstruction PSNR and the pack it belongs to.
// An image is inverted once; every manipulation accepts the saved latent.
//
// File format (`<name>.latent.safetensors`, readable by any safetensors library):
//   tensors (F32, little-endian): "z_i" [E], "x_T" [3, D, D], and "z_t" [E] when a caption was given
//   __metadata__: { "format": "unclip-latent", "version": "1", "latent": JSON of LatentMeta }
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Pack } from '../pack.ts';
import { parseSafetensors } from '../safetensors.ts';
import { InputError } from '../settings.ts';

export const LATENT_SUFFIX = '.latent.safetensors';
export const LATENT_FORMAT = 'unclip-latent';
export const LATENT_VERSION = 1;

export interface InversionSettings {
  /** DDIM steps of the inversion (and of the η = 0 reconstruction). */
  steps: number;
  /** Decoder guidance scale used for ε during inversion (≤ 1: none). */
  guidance: number;
  /** Fixed-point refinements per step of the inversion's noisiest fifth (absent in older latents: 0). */
  refine?: number;
}

export interface LatentMeta {
  caption: string;
  inversion: InversionSettings;
  /** PSNR (dB) of the η = 0 reconstruction against the source at decoder resolution. */
  psnr: number;
  decoderSize: number;
  embeddingDim: number;
  pack: { name: string; fingerprint: string };
  /** File name the picture came from (informative). */
  source?: string;
}

export interface BipartiteLatent extends LatentMeta {
  /** CLIP image embedding [E]. */
  zi: Float32Array;
  /** DDIM-inverted decoder noise [3, D, D]. */
  xT: Float32Array;
  /** CLIP text embedding of the caption (when there is one). */
  zt?: Float32Array;
}

const fingerprints = new WeakMap<Pack, Promise<string>>();

/** sha256 of the pack's manifest.json bytes (the manifest pins every network's sha256). */
export function packFingerprint(pack: Pack): Promise<string> {
  let p = fingerprints.get(pack);
  if (!p) {
    p = readFile(join(pack.dir, 'manifest.json')).then((b) => createHash('sha256').update(b).digest('hex'));
    fingerprints.set(pack, p);
  }
  return p;
}

export function isLatentPath(path: string): boolean {
  return path.toLowerCase().endsWith(LATENT_SUFFIX);
}

/** `photo.png` → `photo.latent.safetensors` (same folder). */
export function latentPathFor(imagePath: string): string {
  return imagePath.replace(/\.[^./\\]*$/, '') + LATENT_SUFFIX;
}

export function encodeLatent(latent: BipartiteLatent): Uint8Array {
  const { zi, xT, zt, ...meta } = latent;
  const D = latent.decoderSize;
  const tensors: [string, Float32Array, number[]][] = [
    ['z_i', zi, [zi.length]],
    ['x_T', xT, [3, D, D]],
  ];
  if (zt) tensors.push(['z_t', zt, [zt.length]]);
  const header: Record<string, unknown> = {
    __metadata__: { format: LATENT_FORMAT, version: String(LATENT_VERSION), latent: JSON.stringify(meta) },
  };
  let offset = 0;
  for (const [name, data, shape] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // data 8-byte aligned
  const head = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const [, data] of tensors) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

// Everything in a latent file is checked before use: a damaged or hand-made one fails with one line naming
// the file and the field, never with a TypeError or with garbage read as the embedding.
const LatentMetaSchema = z.object({
  caption: z.string(),
  inversion: z.object({
    steps: z.int().min(1),
    guidance: z.number(),
    refine: z.int().min(0).optional(),
  }),
  // JSON writes an exact reconstruction's Infinity as null
  psnr: z
    .number()
    .nullable()
    .transform((v) => v ?? Infinity),
  decoderSize: z.int().min(1),
  embeddingDim: z.int().min(1),
  pack: z.object({ name: z.string(), fingerprint: z.string() }),
  source: z.string().optional(),
}) satisfies z.ZodType<LatentMeta, unknown>;

export function decodeLatent(bytes: Uint8Array, name = 'latent'): BipartiteLatent {
  const bad = (why: string): InputError =>
    new InputError(`${name}: not an unCLIP latent file (${why}); make one with \`unclip invert IMAGE\``);
  const { metadata: md, tensors } = parseSafetensors(bytes, bad);
  if (md?.format !== LATENT_FORMAT) throw bad('no unclip-latent metadata');
  if (md.version !== String(LATENT_VERSION))
    throw new InputError(
      `${name}: latent format version ${md.version} is not supported (this app reads ${LATENT_VERSION})`,
    );
  let json: unknown;
  try {
    json = JSON.parse(md.latent ?? '');
  } catch {
    throw bad('metadata "latent" is not JSON');
  }
  const parsed = LatentMetaSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw bad(`metadata latent.${issue.path.join('.')}: ${issue.message}`);
  }
  const meta = parsed.data;
  const tensor = (key: string, shape: number[]): Float32Array | undefined => {
    const t = tensors.get(key);
    if (!t) return undefined;
    if (t.dtype !== 'F32' || t.shape.join() !== shape.join())
      throw bad(`tensor "${key}" is ${t.dtype} [${t.shape.join(', ')}], expected F32 [${shape.join(', ')}]`);
    // copy: the tensor's offset in the file need not be 4-byte aligned
    const out = new Float32Array(t.bytes.byteLength / 4);
    new Uint8Array(out.buffer).set(t.bytes);
    return out;
  };
  const E = meta.embeddingDim;
  const D = meta.decoderSize;
  const zi = tensor('z_i', [E]);
  const xT = tensor('x_T', [3, D, D]);
  if (!zi || !xT) throw bad('z_i or x_T missing');
  const zt = tensor('z_t', [E]);
  return { ...meta, zi, xT, ...(zt ? { zt } : {}) };
}

export async function saveLatent(file: string, latent: BipartiteLatent): Promise<void> {
  await writeFile(file, encodeLatent(latent));
}

export async function loadLatent(file: string): Promise<BipartiteLatent> {
  const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => {
    throw new InputError(`${file}: cannot read (${e.code ?? e.message})`);
  });
  return decodeLatent(bytes, file);
}

/** Refuses a latent saved by another pack (its z_i and x_T mean nothing to this decoder). */
export async function checkLatentPack(pack: Pack, latent: BipartiteLatent, name = 'latent'): Promise<void> {
  const fp = await packFingerprint(pack);
  if (latent.pack.fingerprint !== fp) {
    throw new InputError(
      `${name}: saved by pack "${latent.pack.name}" (manifest ${latent.pack.fingerprint.slice(0, 12)}), not the loaded pack "${pack.manifest.name}" (${fp.slice(0, 12)}); invert the picture again with this pack`,
    );
  }
  if (latent.zi.length !== pack.manifest.embedding_dim || latent.decoderSize !== pack.manifest.resolution.decoder)
    throw new InputError(`${name}: sizes do not match the pack "${pack.manifest.name}"`);
}

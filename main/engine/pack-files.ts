// A pack folder's manifest and file digests, without onnxruntime: the engine loads packs with these,
// and the studio's Models view lists, verifies and imports packs with the same checks (in Electron's
// main process, which must not load onnxruntime).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PackError } from './errors.ts';
import { describeZodError, ManifestSchema, type Manifest } from './manifest.ts';

/** The sha256 hex digest of a file, streamed. */
export async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The folder's manifest.json, validated (a PackError naming the file and the first problem otherwise). */
export async function readManifest(dir: string): Promise<Manifest> {
  const file = join(dir, 'manifest.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PackError(file, code === 'ENOENT' ? 'not found (is this a model pack folder?)' : `unreadable (${code})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PackError(file, `not valid JSON (${(e as Error).message})`);
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) throw new PackError(file, describeZodError(parsed.error));
  return parsed.data;
}

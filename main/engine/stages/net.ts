// Running one of the pack's networks: tensor constructors and the one wrapper every stage calls, which checks
// for cancellation before the call and turns onnxruntime's multi-line failures into one line naming the file.
import * as ort from 'onnxruntime-node';
import { PackError, throwIfAborted } from '../errors.ts';
import type { Net } from '../pack.ts';

export const f32t = (data: Float32Array, dims: number[]): ort.Tensor => new ort.Tensor('float32', data, dims);
export const i64t = (data: BigInt64Array, dims: number[]): ort.Tensor => new ort.Tensor('int64', data, dims);
export const boolt = (data: Uint8Array, dims: number[]): ort.Tensor => new ort.Tensor('bool', data, dims);

export type Feeds = Record<string, ort.Tensor>;

/** One network call; `fetches` binds preallocated outputs (written in place, every step). */
export async function runNet(
  net: Net,
  feeds: Feeds,
  fetches?: Feeds,
  signal?: AbortSignal,
): Promise<Record<string, ort.Tensor>> {
  throwIfAborted(signal);
  try {
    return (await net.session.run(feeds, fetches ?? {})) as Record<string, ort.Tensor>;
  } catch (e) {
    // A session opened on this first run that could not be (a broken graph) already says so in one line.
    if (e instanceof PackError) throw e;
    throw new Error(`${net.spec.file}: inference failed (${String((e as Error).message).split('\n')[0]})`, {
      cause: e,
    });
  }
}

/** [start, end) ranges of `size` over `count` items. */
export function chunks(count: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < count; s += size) out.push([s, Math.min(s + size, count)]);
  return out;
}

/** Stage hooks: `onStep` after each network step (1-based, of `total` in this call), `capture` of tensors (parity). */
export interface StageHooks {
  signal?: AbortSignal | undefined;
  onStep?: ((step: number, total: number) => void) | undefined;
  /** Receives an intermediate tensor of this call's images, rows in order (parity). */
  capture?: ((role: string, data: Float32Array) => void) | undefined;
}

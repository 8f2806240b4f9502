// What each kind of job does: the engine call, then the library save with lineage. Every edit starts
// from an image's stored bipartite latent (z_i, x_T); an image not yet inverted is inverted first
// (and its x_T kept), so the same picture is never inverted twice.

import type { EngineClient, ManipulationResult, PackInfo, ProgressEvent } from '../engine/api.ts';
import { decodeLatent, encodeLatent, type BipartiteLatent } from '../engine/manipulations/latent.ts';
import type { Job } from '../library/jobs.ts';
import type { ImageRecord, Library, NewImage, PackRef, ParentRef } from '../library/library.ts';
import { StudioError, type LibraryChange } from '../../preload/contract.ts';
import { inversionData, storedLatent } from './latents.ts';
import { withRecipe } from './recipe.ts';

export interface WorkContext {
  jobId: number;
  signal: AbortSignal;
  onProgress: (event: ProgressEvent) => void;
}

/** What a finished job records as its result (its images are found by job id). */
export type JobOutcome = Record<string, unknown>;

export interface WorkDeps {
  library: Library;
  engine: EngineClient;
  /** The engine's pack (its name and manifest sha256 are the embedding space of what it makes). */
  pack: () => Promise<PackInfo & { fingerprint: string }>;
  changed: (change: Partial<LibraryChange>) => void;
  /** Queues a job unless the same one is already waiting or running. */
  enqueue: (kind: 'invert', args: { id: number }) => void;
}

const packRef = (p: { name: string; fingerprint: string }): PackRef => ({ name: p.name, sha256: p.fingerprint });

function manipulate(deps: WorkDeps): NonNullable<EngineClient['manipulate']> {
  const m = deps.engine.manipulate?.bind(deps.engine);
  if (!m) throw new StudioError('engine', 'this engine cannot edit images');
  return m;
}

/** Refuses an image made in another pack's embedding space: its latents mean nothing to this decoder. */
async function checkPack(deps: WorkDeps, image: ImageRecord): Promise<PackRef> {
  const pack = await deps.pack();
  if (image.pack.sha256 !== pack.fingerprint)
    throw new StudioError(
      'invalid_argument',
      `image ${image.id} was made with pack "${image.pack.name}" (${image.pack.sha256.slice(0, 12)}), ` +
        `but the engine runs "${pack.name}" (${pack.fingerprint.slice(0, 12)}); switch packs to edit it`,
    );
  return packRef(pack);
}

/** DDIM-inverts image `id` (CLIP-encoding it first when it has no z_i yet) and stores x_T. */
async function invertImage(
  deps: WorkDeps,
  id: number,
  ctx: WorkContext,
  opts: { steps?: number; refine?: number } = {},
): Promise<BipartiteLatent> {
  const image = deps.library.get(id);
  const pack = await checkPack(deps, image);
  const result = await manipulate(deps)(
    { op: 'invert', image: deps.library.readFile(id), caption: image.prompt, ...opts },
    { signal: ctx.signal, onProgress: ctx.onProgress },
  );
  const latent = decodeLatent(result.sources[0]!.latent, `image ${id}`);
  deps.library.setInversion(
    id,
    inversionData(latent),
    image.hasEmbedding ? undefined : { pack, zi: latent.zi, zt: latent.zt ?? null },
  );
  deps.changed({ changed: [id] });
  return latent;
}

/** The image's stored (z_i, x_T) as a latent file the engine reads, inverting it first if need be. */
async function latentOf(
  deps: WorkDeps,
  id: number,
  ctx: WorkContext,
): Promise<{ bytes: Uint8Array; latent: BipartiteLatent }> {
  const image = deps.library.get(id);
  await checkPack(deps, image);
  const latent = storedLatent(deps.library, image) ?? (await invertImage(deps, id, ctx));
  return { bytes: encodeLatent(latent), latent };
}

/** One picture the engine made, with what the library keeps of it. */
interface Picture {
  png: Uint8Array;
  width: number;
  height: number;
  seed: number;
  kind: NewImage['kind'];
  prompt: string;
  settings: Record<string, unknown>;
  parents: ParentRef[];
  /** The z_i the decoder was conditioned on, when known. */
  zi?: Float32Array;
  zt?: Float32Array | null;
}

/** Saves pictures as job outputs, each file carrying its recipe (parents named by sha256 too). */
async function savePictures(deps: WorkDeps, ctx: WorkContext, pictures: Picture[]): Promise<number[]> {
  const pack = packRef(await deps.pack());
  const items: NewImage[] = pictures.map(({ png, zi, zt, ...p }) => {
    const parents = p.parents.map((q) => ({ ...q, sha256: deps.library.get(q.id).sha256 }));
    return {
      ...p,
      pack,
      bytes: withRecipe(png, { ...p, pack, parents }),
      ...(zi ? { embedding: { zi, zt: zt ?? null } } : {}),
    };
  });
  const ids = await deps.library.save(items, { jobId: ctx.jobId });
  deps.changed({ added: ids });
  return ids;
}

/** A manipulation's frames as pictures, `each` giving a frame's kind, prompt, settings and parents. */
function saveFrames(
  deps: WorkDeps,
  ctx: WorkContext,
  result: ManipulationResult,
  each: (frame: ManipulationResult['frames'][number], k: number) => Omit<Picture, 'png' | 'width' | 'height' | 'seed'>,
): Promise<number[]> {
  return savePictures(
    deps,
    ctx,
    result.frames.map((frame, k) => ({
      png: frame.png,
      width: frame.width,
      height: frame.height,
      seed: frame.seed,
      ...each(frame, k),
    })),
  );
}

type Args = Record<string, unknown>;
const opt = <T>(v: T | undefined, key: string): Record<string, T> => (v === undefined ? {} : { [key]: v });
const common = (a: Args) => ({
  ...opt(a.steps as number | undefined, 'steps'),
  ...opt(a.guidance as number | undefined, 'guidance'),
  ...opt(a.seed as number | undefined, 'seed'),
  ...opt(a.superRes as boolean | undefined, 'superRes'),
});

export async function runJob(deps: WorkDeps, job: Job, ctx: WorkContext): Promise<JobOutcome> {
  const a = (job.args ?? {}) as Args;
  const { signal, onProgress } = ctx;
  switch (job.kind) {
    case 'generate': {
      const result = await deps.engine.generate(
        { prompt: a.prompt as string, settings: (a.settings ?? {}) as Record<string, unknown> },
        { signal, onProgress },
      );
      const ids = await savePictures(
        deps,
        ctx,
        result.images.map((img) => ({
          png: img.png,
          width: img.width,
          height: img.height,
          seed: img.seed,
          kind: 'generated',
          prompt: result.prompt,
          // Each image's own settings remake it alone: n = 1 at its own seed.
          settings: {
            ...result.settings,
            n: 1,
            seed: img.seed,
            ...(img.score !== undefined ? { score: img.score } : {}),
            ...(result.truncated ? { truncated: true } : {}),
          },
          parents: [],
          zi: img.imageEmbedding,
          zt: result.textEmbedding,
        })),
      );
      // x_T in the background, so an edit can start from stored latents.
      for (const id of ids) deps.enqueue('invert', { id });
      return { timings: result.timings, truncated: result.truncated };
    }

    case 'invert':
    case 'import': {
      const id = a.id as number;
      const latent = await invertImage(deps, id, ctx, {
        ...opt(a.steps as number | undefined, 'steps'),
        ...opt(a.refine as number | undefined, 'refine'),
      });
      return { id, psnr: latent.psnr };
    }

    case 'vary': {
      const id = a.id as number;
      const source = await latentOf(deps, id, ctx);
      const eta = a.eta as number;
      const result = await manipulate(deps)(
        {
          op: 'vary',
          source: source.bytes,
          n: a.n as number,
          eta,
          ...opt(a.fresh as boolean | undefined, 'fresh'),
          ...common(a),
        },
        { signal, onProgress },
      );
      const prompt = deps.library.get(id).prompt;
      await saveFrames(deps, ctx, result, (frame, k) => {
        const params = { eta, index: k, seed: frame.seed, ...(a.fresh ? { fresh: true } : {}) };
        return {
          kind: 'variation',
          prompt,
          settings: { ...common(a), ...params },
          parents: [{ id, op: 'vary', params }],
          // A variation keeps the source's z_i: it is what the decoder was conditioned on.
          zi: source.latent.zi,
          zt: source.latent.zt ?? null,
        };
      });
      return { timings: result.timings };
    }

    case 'interpolate': {
      const [ida, idb] = [a.a as number, a.b as number];
      const la = await latentOf(deps, ida, ctx);
      const lb = await latentOf(deps, idb, ctx);
      const frames = a.frames as number;
      const noise = a.noise as 'slerp' | 'a' | 'b' | 'random';
      const result = await manipulate(deps)(
        { op: 'interpolate', a: la.bytes, b: lb.bytes, frames, noise, ...common(a) },
        { signal, onProgress },
      );
      const [pa, pb] = [deps.library.get(ida).prompt, deps.library.get(idb).prompt];
      await saveFrames(deps, ctx, result, (frame, k) => {
        const t = frame.t ?? k / (frames - 1);
        const params = { t, index: k, frames, noise };
        return {
          kind: 'interpolation',
          prompt: t < 0.5 ? pa : pb,
          settings: { ...common(a), ...params, seed: frame.seed },
          parents: [
            { id: ida, role: 'a', op: 'interpolate', params },
            { id: idb, role: 'b', op: 'interpolate', params },
          ],
          // The frame's z_i is the slerp the decoder was conditioned on.
          zi: frame.zi,
        };
      });
      return { timings: result.timings };
    }

    case 'textdiff': {
      const id = a.id as number;
      const source = await latentOf(deps, id, ctx);
      const image = deps.library.get(id);
      const from = (a.from as string | undefined) ?? image.prompt;
      const to = a.to as string;
      const result = await manipulate(deps)(
        { op: 'textdiff', source: source.bytes, from, to, thetas: a.thetas as number[], ...common(a) },
        { signal, onProgress },
      );
      await saveFrames(deps, ctx, result, (frame, k) => {
        const params = { theta: frame.theta ?? (a.thetas as number[])[k], from, to, index: k };
        return {
          kind: 'textdiff',
          prompt: to,
          settings: { ...common(a), ...params, seed: frame.seed },
          parents: [{ id, op: 'textdiff', params }],
          // z_i turned towards the text diff: what the decoder was conditioned on.
          zi: frame.zi,
        };
      });
      return { timings: result.timings };
    }
  }
}

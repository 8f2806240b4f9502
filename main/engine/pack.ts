// A model pack on disk → validated manifest, tokenizer and one onnxruntime session per network,
// created once (at load, or on first use for the networks a default generation never runs) and reused
// for every request.
import { realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Backend, PackInfo } from './api.ts';
import { availableBackends, defaultThreadCount, sessionOptions } from './backends.ts';
import { PackError } from './errors.ts';
import {
  describePlan,
  LazySession,
  planMemory,
  RESIDENT_FACTOR,
  SessionPool,
  type MemoryMode,
  type MemoryStats,
  type SessionLike,
} from './lowmem.ts';
import type { ComponentRole, ComponentSpec, Manifest } from './manifest.ts';
import { readManifest, sha256 } from './pack-files.ts';
import { ClipTokenizer } from './tokenizer.ts';

export interface LoadPackOptions {
  /** Preferred execution provider; networks whose session cannot be created there fall back to CPU. */
  backend?: Backend;
  /** intraOpNumThreads (default: physical cores). */
  threads?: number;
  /** Check every file's sha256 against the manifest (default true). */
  verify?: boolean;
  /** Called with a one-line note when a network falls back to CPU, and when low-memory mode is chosen. */
  warn?: (message: string) => void;
  /**
   * 'all': every network's session created at load and kept; 'low': sessions opened when their network runs
   * and closed when another needs the room (lowmem.ts); 'auto' (default, or UNCLIP_MEMORY_MODE): 'low' when the
   * pack's networks together need more than half the machine's memory.
   */
  memory?: MemoryMode | 'auto';
  /** The machine's memory in bytes (default os.totalmem(); tests). */
  machineBytes?: number;
}

/** One network: its session and where it runs. */
export interface Net {
  role: ComponentRole;
  file: string;
  spec: ComponentSpec;
  /** An onnxruntime session, or one opened on its first run (ON_FIRST_USE; in low-memory mode, LazySession). */
  session: SessionLike;
  backend: Backend;
  /** Graph + external data on disk, bytes. */
  bytes: number;
}

const ROLES: ComponentRole[] = [
  'text_encoder',
  'image_encoder',
  'prior',
  'text_proj',
  'decoder',
  'super_res_first',
  'super_res_last',
  'ar_prior',
  'ar_prior_start',
  'ar_prior_step',
];

/** Networks called at every diffusion step keep a memory arena (see backends.ts). */
const PER_STEP = new Set<ComponentRole>(['prior', 'decoder', 'super_res_first']);

/**
 * Networks a default generation never runs (reranking, inversion, the AR prior): their sessions are created on
 * their first run, not at load, which takes ≈ 150 ms off every cold start (`unclip generate`, web mode's first
 * image). A graph that cannot be loaded is then reported by the first request that needs it.
 */
const ON_FIRST_USE = new Set<ComponentRole>(['image_encoder', 'ar_prior', 'ar_prior_start', 'ar_prior_step']);

/** A session created on its first run (shared by concurrent first runs; a failed creation is retried next time). */
class SessionOnFirstUse implements SessionLike {
  #opening: Promise<SessionLike> | null = null;

  constructor(
    private readonly open: () => Promise<SessionLike>,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {}

  async run(
    feeds: ort.InferenceSession.FeedsType,
    fetches?: ort.InferenceSession.FetchesType,
  ): Promise<ort.InferenceSession.ReturnType> {
    const opening = (this.#opening ??= this.open());
    opening.catch(() => {
      if (this.#opening === opening) this.#opening = null;
    });
    const session = await opening;
    return fetches ? session.run(feeds, fetches) : session.run(feeds);
  }

  async release(): Promise<void> {
    const opening = this.#opening;
    this.#opening = null;
    await (await opening?.catch(() => null))?.release();
  }
}

export class Pack {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly tokenizer: ClipTokenizer;
  readonly nets: Partial<Record<ComponentRole, Net>>;
  readonly threads: number;
  readonly requestedBackend: Backend;
  private readonly pool: SessionPool | null;
  private readonly allStats: MemoryStats | null;

  private constructor(
    dir: string,
    manifest: Manifest,
    tokenizer: ClipTokenizer,
    nets: Partial<Record<ComponentRole, Net>>,
    threads: number,
    backend: Backend,
    memory: SessionPool | MemoryStats,
  ) {
    this.dir = dir;
    this.manifest = manifest;
    this.tokenizer = tokenizer;
    this.nets = nets;
    this.threads = threads;
    this.requestedBackend = backend;
    this.pool = memory instanceof SessionPool ? memory : null;
    this.allStats = memory instanceof SessionPool ? null : memory;
  }

  /** 'all' or 'low' (low-memory mode), the budget, and what opening/closing sessions has cost so far. */
  memoryStats(): MemoryStats {
    return { ...(this.pool ? this.pool.stats : this.allStats!) };
  }

  static async load(dirArg: string, options: LoadPackOptions = {}): Promise<Pack> {
    const dir = resolve(dirArg);
    const manifest = await readManifest(dir);
    const threads = options.threads ?? defaultThreadCount();
    const backend = options.backend ?? 'cpu';
    const available = availableBackends();
    if (!available.includes(backend)) {
      throw new PackError('backend', `${backend} is not available here (available: ${available.join(', ')})`);
    }
    // Every listed file must exist inside the folder (a link may not lead out of it) and match its sha256.
    const realDir = await realpath(dir);
    const sizes = new Map<string, number>();
    for (const [name, digest] of Object.entries(manifest.files)) {
      const file = join(dir, name);
      const st = await stat(file).catch(() => null);
      if (!st?.isFile()) throw new PackError(file, 'missing (listed in manifest.json files)');
      const real = await realpath(file);
      if (!real.startsWith(realDir + sep)) {
        throw new PackError(file, `points outside the pack folder (to ${real})`);
      }
      sizes.set(name, st.size);
      if (options.verify !== false && (await sha256(file)) !== digest) {
        throw new PackError(file, 'sha256 does not match manifest.json (corrupt, truncated or modified file)');
      }
    }
    const bytesOf = (spec: ComponentSpec) =>
      [spec.file, ...(spec.external_data ?? [])].reduce((a, f) => a + (sizes.get(f) ?? 0), 0);
    const roles = ROLES.filter((r) => manifest.components[r]);
    const envMode = process.env.UNCLIP_MEMORY_MODE as MemoryMode | 'auto' | undefined;
    const plan = planMemory(
      roles.map((r) => bytesOf(manifest.components[r]!)),
      {
        mode: options.memory ?? envMode ?? 'auto',
        ...(options.machineBytes !== undefined ? { machineBytes: options.machineBytes } : {}),
      },
    );
    if ('error' in plan) throw new PackError(dir, plan.error);
    const tokenizer = await ClipTokenizer.load(join(dir, manifest.tokenizer.file), manifest.tokenizer);
    const nets: Partial<Record<ComponentRole, Net>> = {};
    if (plan.mode === 'low') {
      // Nothing is opened now: each network's session is created on its first run (I/O names checked then).
      options.warn?.(describePlan(plan));
      const pool = new SessionPool(plan.budgetBytes, plan.packBytes);
      for (const role of roles) {
        const spec = manifest.components[role]!;
        const net: Net = { role, file: join(dir, spec.file), spec, backend, bytes: bytesOf(spec), session: null! };
        net.session = new LazySession(
          pool,
          async () => {
            const opened = await createNet(dir, role, spec, backend, threads, (why) =>
              options.warn?.(`${backend} unavailable for ${spec.file} (${why}); it runs on cpu`),
            );
            net.backend = opened.backend;
            return opened.session as ort.InferenceSession;
          },
          net.bytes * RESIDENT_FACTOR,
          spec.inputs.map((t) => t.name),
          spec.outputs.map((t) => t.name),
        );
        nets[role] = net;
      }
      return new Pack(dir, manifest, tokenizer, nets, threads, backend, pool);
    }
    try {
      let preferred = backend;
      for (const role of ROLES) {
        const spec = manifest.components[role];
        if (!spec) continue;
        if (ON_FIRST_USE.has(role)) continue;
        const net = await createNet(dir, role, spec, preferred, threads, (why) =>
          options.warn?.(`${backend} unavailable for ${spec.file} (${why}); networks from here on use cpu`),
        );
        // An execution provider that fails once (no adapter, missing driver) is not retried for every network.
        if (net.backend !== preferred) preferred = 'cpu';
        nets[role] = { ...net, bytes: bytesOf(spec) };
      }
      for (const role of roles.filter((r) => ON_FIRST_USE.has(r))) {
        const spec = manifest.components[role]!;
        const net: Net = {
          role,
          file: join(dir, spec.file),
          spec,
          backend: preferred,
          bytes: bytesOf(spec),
          session: null!,
        };
        const firstBackend = preferred;
        net.session = new SessionOnFirstUse(
          async () => {
            const opened = await createNet(dir, role, spec, firstBackend, threads, (why) =>
              options.warn?.(`${firstBackend} unavailable for ${spec.file} (${why}); it runs on cpu`),
            );
            net.backend = opened.backend;
            return opened.session;
          },
          spec.inputs.map((t) => t.name),
          spec.outputs.map((t) => t.name),
        );
        nets[role] = net;
      }
    } catch (e) {
      await Promise.all(Object.values(nets).map((n) => n.session.release().catch(() => undefined)));
      throw e;
    }
    const packBytes = plan.packBytes;
    const stats: MemoryStats = {
      mode: 'all',
      budgetBytes: packBytes,
      packBytes,
      opens: Object.values(nets).filter((n) => !(n.session instanceof SessionOnFirstUse)).length,
      closes: 0,
      openMs: 0,
      closeMs: 0,
      openBytes: packBytes,
    };
    return new Pack(dir, manifest, tokenizer, nets, threads, backend, stats);
  }

  net(role: ComponentRole): Net {
    const n = this.nets[role];
    if (!n) throw new PackError(join(this.dir, 'manifest.json'), `components.${role} is missing`);
    return n;
  }

  get hasSuperRes(): boolean {
    return Boolean(this.nets.super_res_first && this.nets.super_res_last);
  }

  sessionBackends(): Record<string, Backend> {
    return Object.fromEntries(Object.values(this.nets).map((n) => [n.role, n.backend]));
  }

  info(): PackInfo {
    const m = this.manifest;
    return {
      dir: this.dir,
      name: m.name,
      title: m.title,
      ...(m.description ? { description: m.description } : {}),
      outputSize: m.resolution.output,
      defaults: {
        stepsPrior: m.defaults.prior_steps,
        stepsDecoder: m.defaults.decoder_steps,
        stepsSuperRes: m.defaults.super_res_steps,
        guidancePrior: m.defaults.prior_guidance,
        guidanceDecoder: m.defaults.decoder_guidance,
      },
      license: m.license,
      attribution: m.attribution,
      decoderSize: m.resolution.decoder,
      embeddingDim: m.embedding_dim,
      capabilities: {
        superRes: this.hasSuperRes,
        imageEncoder: Boolean(this.nets.image_encoder),
        arPrior: Boolean(this.nets.ar_prior),
      },
    };
  }

  async release(): Promise<void> {
    if (this.pool) return this.pool.releaseAll();
    await Promise.all(Object.values(this.nets).map((n) => n.session.release().catch(() => undefined)));
  }
}

/** The gist of an onnxruntime error: its last clause, without source paths. */
function shortReason(e: unknown): string {
  const line = String((e as Error)?.message ?? e).split('\n')[0]!;
  const tail = line.split(/ was false\. |\] /).pop() ?? line;
  return tail.length > 160 ? `${tail.slice(0, 157)}...` : tail;
}

async function createNet(
  dir: string,
  role: ComponentRole,
  spec: ComponentSpec,
  backend: Backend,
  threads: number,
  warn?: (message: string) => void,
): Promise<Omit<Net, 'bytes'> & { session: ort.InferenceSession }> {
  const file = join(dir, spec.file);
  let session: ort.InferenceSession | null = null;
  let used: Backend = backend;
  let firstError: unknown = null;
  for (const b of backend === 'cpu' ? (['cpu'] as Backend[]) : [backend, 'cpu' as Backend]) {
    try {
      session = await ort.InferenceSession.create(file, sessionOptions(b, threads, PER_STEP.has(role)));
      used = b;
      break;
    } catch (e) {
      firstError ??= e;
      if (b !== 'cpu') warn?.(shortReason(e));
    }
  }
  if (!session) {
    const why = String((firstError as Error)?.message ?? firstError).split('\n')[0]!;
    const data = spec.external_data ?? [];
    // External data: name the data file that is short, or say that the graph reaches outside the folder.
    if (data.length && /out of bounds|can not be read in full|failed to read|No such file/i.test(why)) {
      throw new PackError(
        join(dir, data[0]!),
        `truncated or unreadable: ${spec.file} needs more of it (${shortReason(why)})`,
      );
    }
    if (/escapes model directory/i.test(why)) {
      const where = /External data path: "([^"]*)"/.exec(why)?.[1] ?? '?';
      throw new PackError(file, `its external data points outside the pack folder ("${where}")`);
    }
    throw new PackError(file, `onnxruntime cannot load this graph (${why})`);
  }
  for (const input of spec.inputs) {
    if (!session.inputNames.includes(input.name)) {
      await session.release();
      throw new PackError(file, `graph has no input "${input.name}" (manifest components.${role})`);
    }
  }
  for (const output of spec.outputs) {
    if (!session.outputNames.includes(output.name)) {
      await session.release();
      throw new PackError(file, `graph has no output "${output.name}" (manifest components.${role})`);
    }
  }
  return { role, file, spec, session, backend: used };
}

// Which onnxruntime execution providers this machine offers, and the session options we use.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import * as ort from 'onnxruntime-node';
import type { Backend, BackendSupport } from './api.ts';

const require = createRequire(import.meta.url);

/** onnxruntime-node's EP name for each backend. */
const EP_NAME: Record<Backend, string> = { cpu: 'cpu', webgpu: 'webgpu', cuda: 'cuda', dml: 'dml', coreml: 'coreml' };

/** Shared provider libraries that a "not bundled" EP needs next to the binding (linux/x64 CUDA 12). */
const PROVIDER_LIB: Partial<Record<Backend, string>> = { cuda: 'libonnxruntime_providers_cuda.so' };

function bindingDir(): string | null {
  try {
    const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
    return join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return null;
  }
}

/**
 * Backends onnxruntime-node was built with on this platform, in order of preference for auto-selection
 * (CPU last). EPs that are compiled in but need separately installed libraries (CUDA's provider .so,
 * fetched by onnxruntime-node's install script) count only when those libraries are present.
 */
export function availableBackends(): Backend[] {
  const listed = ort.listSupportedBackends() as { name: string; bundled: boolean }[];
  const dir = bindingDir();
  const out: Backend[] = [];
  for (const { name, bundled } of listed) {
    const b = (Object.keys(EP_NAME) as Backend[]).find((k) => EP_NAME[k] === name);
    if (!b) continue;
    if (!bundled) {
      const lib = PROVIDER_LIB[b];
      if (!lib || !dir || !existsSync(join(dir, lib))) continue;
    }
    out.push(b);
  }
  if (!out.includes('cpu')) out.push('cpu');
  return out;
}

/** Every backend the engine knows, with whether it runs here and, when it does not, why. */
export function backendSupport(): BackendSupport[] {
  const listed = new Map((ort.listSupportedBackends() as { name: string; bundled: boolean }[]).map((b) => [b.name, b]));
  const available = new Set(availableBackends());
  return (Object.keys(EP_NAME) as Backend[]).map((backend) => {
    if (available.has(backend)) return { backend, available: true };
    const lib = PROVIDER_LIB[backend];
    const reason = !listed.has(EP_NAME[backend])
      ? `not built into onnxruntime-node for ${process.platform}/${process.arch}`
      : lib
        ? `${lib} is not installed (ONNXRUNTIME_NODE_INSTALL=cuda12 npm install, with CUDA 12 and cuDNN 9)`
        : 'its provider libraries are not installed';
    return { backend, available: false, reason };
  });
}

/** Physical cores usable by this process: min(physical cores, cgroup/affinity-aware parallelism). */
export function defaultThreadCount(): number {
  const logical = availableParallelism();
  let physical = logical;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const cores = new Set<string>();
    let phys = '0';
    for (const line of info.split('\n')) {
      const [k, v] = line.split(':').map((s) => s.trim());
      if (k === 'physical id') phys = v ?? '0';
      else if (k === 'core id') cores.add(`${phys}:${v}`);
    }
    if (cores.size > 0) physical = cores.size;
  } catch {
    // not Linux: os.availableParallelism() is the best portable figure
  }
  return Math.max(1, Math.min(physical, logical));
}

/**
 * Memory. The CPU arena keeps a session's high-water mark for the life of the process; without it large
 * activations are mmapped and unmapped on every run (the tiny pack's super-resolution UNet ran 70 % slower).
 * So: arena on for the networks called at every diffusion step (prior, decoder, super_res_first), off for
 * those called once per image or request (text encoder, text_proj, super_res_last, image encoder), whose
 * peaks would otherwise stay resident. Memory pattern off: with it on, each arena keeps one power-of-two
 * block for all of a run's intermediates (tiny pack: 580 MB RSS instead of ≈ 320, same speed within noise).
 * UNCLIP_ORT_MEM_PATTERN=1 turns the pattern back on.
 */
const MEM_PATTERN = process.env.UNCLIP_ORT_MEM_PATTERN === '1';

export function sessionOptions(backend: Backend, threads: number, arena = true): InferenceSession.SessionOptions {
  return {
    executionProviders: backend === 'cpu' ? ['cpu'] : [EP_NAME[backend], 'cpu'],
    // An explicit count avoids ORT's host-wide default (oversubscription in containers) and affinity errors.
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    enableCpuMemArena: arena,
    enableMemPattern: MEM_PATTERN,
    logSeverityLevel: 3,
    // No busy-waiting between ops: the engine shares the CPU with the UI, the web server and other programs,
    // and spinning intra-op threads then steal the cores the next op needs. Measured on the 2-vCPU dev box
    // under load: a 25/25/7 tiny-pack image 4.3 s with spinning, 2.6 s without. UNCLIP_ORT_SPIN=1 restores it.
    extra: { session: { 'intra_op.allow_spinning': process.env.UNCLIP_ORT_SPIN === '1' ? '1' : '0' } },
  };
}

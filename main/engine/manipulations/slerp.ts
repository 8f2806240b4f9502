// Spherical interpolation of whole vectors (Shoemake 1985), with the norms handled separately: the
// directions are slerped and the length is interpolated linearly, so an embedding halfway between two
// CLIP embeddings has a plausible length. Falls back to a normalised lerp of the directions when they are
// nearly parallel (sin ω → 0). Not the element-wise `acos(a_n * b_n)` of diffusers' community pipelines.
// t = 0 and t = 1 return exact copies of the ends, so the ends of a sweep reproduce their sources bit for bit.

const PARALLEL = 1e-6; // 1 − cos ω below this: lerp

function norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

export function slerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  if (a.length !== b.length) throw new RangeError(`slerp: lengths differ (${a.length} vs ${b.length})`);
  if (!(t >= 0 && t <= 1)) throw new RangeError(`slerp: t must be in [0, 1], got ${t}`);
  if (t === 0) return a.slice();
  if (t === 1) return b.slice();
  const na = norm(a);
  const nb = norm(b);
  if (na === 0 || nb === 0) throw new RangeError('slerp: a zero vector has no direction');
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += (a[i]! / na) * (b[i]! / nb);
  dot = Math.min(1, Math.max(-1, dot));
  const length = (1 - t) * na + t * nb;
  const out = new Float32Array(a.length);
  let wa: number;
  let wb: number;
  if (1 - Math.abs(dot) < PARALLEL) {
    if (dot < 0) throw new RangeError('slerp: the vectors point in opposite directions (no unique great circle)');
    wa = 1 - t;
    wb = t;
  } else {
    const omega = Math.acos(dot);
    const s = Math.sin(omega);
    wa = Math.sin((1 - t) * omega) / s;
    wb = Math.sin(t * omega) / s;
  }
  const dir = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) dir[i] = (wa * a[i]!) / na + (wb * b[i]!) / nb;
  let nd = 0;
  for (let i = 0; i < a.length; i++) nd += dir[i]! * dir[i]!;
  nd = Math.sqrt(nd);
  for (let i = 0; i < a.length; i++) out[i] = (dir[i]! / nd) * length;
  return out;
}

/** Unit vector along a − b (null when a = b: no direction). */
export function normalisedDifference(a: Float32Array, b: Float32Array): Float32Array | null {
  const d = new Float64Array(a.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d[i] = a[i]! - b[i]!;
    n += d[i]! * d[i]!;
  }
  n = Math.sqrt(n);
  if (!(n > 1e-6)) return null;
  return Float32Array.from(d, (v) => v / n);
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return dot / (norm(a) * norm(b) || 1);
}

export { norm };

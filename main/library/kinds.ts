// The library's enumerations and the plain shapes of what it returns, in a module with no imports,
// so the contract (and with it the renderer's bundle) uses them without pulling in SQLite or sharp.

export const IMAGE_KINDS = ['generated', 'variation', 'interpolation', 'textdiff', 'reconstruction', 'import'] as const;
export type ImageKind = (typeof IMAGE_KINDS)[number];

export type ImageMime = 'image/png' | 'image/jpeg' | 'image/webp';

export const JOB_KINDS = ['generate', 'vary', 'interpolate', 'textdiff', 'invert', 'import'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export const JOB_STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Longest prompt or caption stored (the CLIP tokenizer reads 77 tokens; this keeps rows bounded). */
export const MAX_PROMPT_CHARS = 10_000;
/** Most rows one page or one similarity query returns. */
export const MAX_PAGE = 500;

export interface PackRef {
  name: string;
  /** sha256 of the pack's manifest.json: the embedding space an image's latents live in. */
  sha256: string;
}

export interface ImageRecord {
  id: number;
  kind: ImageKind;
  prompt: string;
  settings: Record<string, unknown>;
  seed: number | null;
  pack: PackRef;
  width: number;
  height: number;
  sha256: string;
  bytes: number;
  mime: ImageMime;
  createdAt: number;
  starred: boolean;
  trashedAt: number | null;
  jobId: number | null;
  hasEmbedding: boolean;
  inverted: boolean;
  psnr: number | null;
}

export interface Page<T> {
  items: T[];
  /** Pass back as `cursor` for the next page; null at the end. */
  nextCursor: string | null;
}

export interface Board {
  id: number;
  name: string;
  count: number;
  createdAt: number;
  coverId: number | null;
}

export interface LineageEdge {
  id: number;
  role: string;
  op: string;
  params: Record<string, unknown>;
}

export interface CheckReport {
  integrity: string;
  /** Rows whose file is missing (never dropped silently; --repair moves them to the trash). */
  missingFiles: { id: number; sha256: string }[];
  /** Files no row uses (repair deletes them). */
  orphanFiles: string[];
  /** Files whose bytes do not hash to their name (repair: their rows move to the trash). */
  damagedFiles: string[];
  missingThumbs: number;
  tempFilesRemoved: number;
  journalResolved: number;
  jobsRequeued: number[];
  jobsFailed: number[];
  repaired: boolean;
}

export interface JobProgress {
  stage: string;
  step: number;
  total: number;
  etaMs?: number;
}

export interface Job {
  id: number;
  kind: JobKind;
  status: JobStatus;
  args: unknown;
  position: number;
  attempts: number;
  maxAttempts: number;
  progress: JobProgress | null;
  error: string | null;
  result: unknown;
  imageIds: number[];
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  cancelRequested: boolean;
  leaseOwner: string | null;
}

// The library's enumerations as plain values, in a module with no imports, so the contract (and
// with it the renderer's bundle) can use them without pulling in SQLite or sharp.

export const IMAGE_KINDS = ['generated', 'variation', 'interpolation', 'textdiff', 'reconstruction', 'import'] as const;
export type ImageKind = (typeof IMAGE_KINDS)[number];

export const JOB_KINDS = ['generate', 'vary', 'interpolate', 'textdiff', 'invert', 'import'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export const JOB_STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Longest prompt or caption stored (the CLIP tokenizer reads 77 tokens; this keeps rows bounded). */
export const MAX_PROMPT_CHARS = 10_000;
/** Most rows one page or one similarity query returns. */
export const MAX_PAGE = 500;

// Pack manifest v1 and v2 (models/pack.schema.json) as a zod schema: the engine refuses a pack whose
// manifest does not parse, naming the field. v2 = v1 plus the optional autoregressive prior (components.ar_prior
// and the ar_prior section); a v1 manifest stays valid.
import { z } from 'zod';

const finite = z.number().finite();
const posInt = z.number().int().min(1);
const nonNegInt = z.number().int().min(0);
/** A file name inside the pack folder (no paths), never manifest.json itself. */
const fileName = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'must be a plain file name in the pack folder')
  .refine((f) => f !== 'manifest.json', { message: 'must not be manifest.json' });
const rgb = z.array(finite).length(3);

export const TensorSpecSchema = z.strictObject({
  name: z.string().min(1),
  dtype: z.enum(['float32', 'int64', 'bool']),
  shape: z.array(z.union([posInt, z.literal('batch')])).min(1),
});

export const ComponentSchema = z.strictObject({
  file: fileName,
  inputs: z.array(TensorSpecSchema).min(1),
  outputs: z.array(TensorSpecSchema).min(1),
  /** MatMul + Gemm + Conv FLOPs per call at batch 1 (the exporter's count). */
  flops: nonNegInt,
  external_data: z.array(fileName).min(1).optional(),
});

export const SchedulerConfigSchema = z.strictObject({
  num_train_timesteps: posInt,
  beta_schedule: z.literal('squaredcos_cap_v2'),
  variance_type: z.enum(['fixed_small_log', 'learned_range']),
  prediction_type: z.enum(['epsilon', 'sample']),
  clip_sample: z.boolean(),
  clip_sample_range: finite.positive(),
});

/** The autoregressive prior's codes and sampling defaults (schema v2); tables = safetensors with pca_mean [E],
 * pca_components [K,E], bucket_values [K,buckets]. */
export const ArPriorSchema = z.strictObject({
  tables: fileName,
  sequence_length: posInt,
  buckets: posInt,
  vocabulary: posInt,
  dot_buckets: posInt,
  null_dot_token: nonNegInt,
  variance_kept: finite.gt(0).max(1),
  sampling: z.strictObject({
    guidance: finite.min(0),
    temperature: finite.gt(0),
    top_k: nonNegInt,
    top_p: finite.gt(0).max(1),
    samples: posInt,
  }),
});

/** Mirrors models/pack.schema.json (pack v1/v2): same required keys, same bounds, no unknown keys. */
export const ManifestSchema = z
  .strictObject({
    schema_version: z.union([z.literal(1), z.literal(2)]),
    name: z
      .string()
      .regex(/^[a-z0-9-]+$/, 'lower-case letters, digits and "-" only')
      .max(64),
    title: z.string().min(1),
    description: z.string(),
    license: z.string().min(1),
    attribution: z.string().min(1),
    source: z.strictObject({
      kind: z.literal('diffusers'),
      pipeline: z.string().min(1),
      exporter_version: z.string().min(1),
      image_variation_pipeline: z.string().optional(),
      precision: z.enum(['fp32', 'fp16']).optional(),
    }),
    embedding_dim: posInt,
    text: z.strictObject({ max_length: posInt, hidden_size: posInt }),
    tokenizer: z.strictObject({
      file: fileName,
      max_length: posInt,
      pad_token_id: nonNegInt,
      bos_token_id: nonNegInt,
      eos_token_id: nonNegInt,
    }),
    image_preprocess: z.strictObject({
      size: posInt,
      crop_size: posInt,
      resample: z.enum(['bicubic', 'bilinear', 'nearest', 'lanczos']),
      rescale_factor: finite.positive(),
      mean: rgb,
      std: rgb,
    }),
    prior_stats: z.strictObject({ clip_mean: z.array(finite).min(1), clip_std: z.array(finite).min(1) }),
    resolution: z.strictObject({ decoder: posInt, output: posInt }),
    schedulers: z.strictObject({
      prior: SchedulerConfigSchema,
      decoder: SchedulerConfigSchema,
      super_res: SchedulerConfigSchema,
    }),
    defaults: z.strictObject({
      prior_steps: z.number().int().min(2),
      decoder_steps: z.number().int().min(2),
      super_res_steps: z.number().int().min(2),
      prior_guidance: finite.min(0),
      decoder_guidance: finite.min(0),
    }),
    components: z.strictObject({
      text_encoder: ComponentSchema,
      image_encoder: ComponentSchema.optional(),
      prior: ComponentSchema,
      text_proj: ComponentSchema,
      decoder: ComponentSchema,
      super_res_first: ComponentSchema.optional(),
      super_res_last: ComponentSchema.optional(),
      ar_prior: ComponentSchema.optional(),
      /** Optional KV-cache pair of the AR prior (both or neither). */
      ar_prior_start: ComponentSchema.optional(),
      ar_prior_step: ComponentSchema.optional(),
    }),
    ar_prior: ArPriorSchema.optional(),
    files: z
      .record(fileName, z.string().regex(/^[0-9a-f]{64}$/, 'must be a lower-case sha256 hex digest'))
      .refine((f) => Object.keys(f).length >= 1, { message: 'must list at least one file' }),
  })
  .superRefine((m, ctx) => {
    // Beyond the JSON Schema: consistency the engine relies on.
    const E = m.embedding_dim;
    for (const key of ['clip_mean', 'clip_std'] as const) {
      if (m.prior_stats[key].length !== E) {
        ctx.addIssue({ code: 'custom', path: ['prior_stats', key], message: `must have embedding_dim = ${E} values` });
      }
    }
    if (m.image_preprocess.resample !== 'bicubic') {
      ctx.addIssue({
        code: 'custom',
        path: ['image_preprocess', 'resample'],
        message: 'only bicubic is implemented by the engine',
      });
    }
    const sr = [m.components.super_res_first, m.components.super_res_last].filter(Boolean).length;
    if (sr === 1)
      ctx.addIssue({
        code: 'custom',
        path: ['components'],
        message: 'super_res_first and super_res_last come together',
      });
    if (sr === 0 && m.resolution.output !== m.resolution.decoder) {
      ctx.addIssue({
        code: 'custom',
        path: ['resolution', 'output'],
        message: 'must equal resolution.decoder without super-resolution',
      });
    }
    for (const [role, c] of Object.entries(m.components)) {
      if (!c) continue;
      for (const f of [c.file, ...(c.external_data ?? [])]) {
        if (!(f in m.files))
          ctx.addIssue({ code: 'custom', path: ['files'], message: `has no sha256 for ${f} (components.${role})` });
      }
    }
    const ar = m.ar_prior;
    if (!ar !== !m.components.ar_prior) {
      ctx.addIssue({ code: 'custom', path: ['ar_prior'], message: 'ar_prior and components.ar_prior come together' });
    }
    const cached = [m.components.ar_prior_start, m.components.ar_prior_step].filter(Boolean).length;
    if (cached === 1 || (cached === 2 && !ar))
      ctx.addIssue({
        code: 'custom',
        path: ['components'],
        message: 'ar_prior_start and ar_prior_step come together, with ar_prior',
      });
    if (ar) {
      if (m.schema_version !== 2)
        ctx.addIssue({ code: 'custom', path: ['schema_version'], message: 'must be 2 with an ar_prior' });
      if (ar.vocabulary !== ar.buckets)
        ctx.addIssue({ code: 'custom', path: ['ar_prior', 'vocabulary'], message: 'must equal ar_prior.buckets' });
      if (ar.null_dot_token !== ar.dot_buckets)
        ctx.addIssue({ code: 'custom', path: ['ar_prior', 'null_dot_token'], message: 'must equal dot_buckets' });
      if (!(ar.tables in m.files))
        ctx.addIssue({ code: 'custom', path: ['files'], message: `has no sha256 for ${ar.tables} (ar_prior.tables)` });
      const c = m.components.ar_prior;
      const K = ar.sequence_length;
      const want: Record<string, (number | 'batch')[]> = { codes: ['batch', K], logits: ['batch', K, ar.vocabulary] };
      for (const t of c ? [...c.inputs, ...c.outputs] : []) {
        const w = want[t.name];
        if (w && JSON.stringify(w) !== JSON.stringify(t.shape))
          ctx.addIssue({
            code: 'custom',
            path: ['components', 'ar_prior', t.name],
            message: `has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(w)}`,
          });
      }
    }
    if (!(m.tokenizer.file in m.files)) {
      ctx.addIssue({ code: 'custom', path: ['files'], message: `has no sha256 for ${m.tokenizer.file} (tokenizer)` });
    }
  });

export type Manifest = z.infer<typeof ManifestSchema>;
export type ComponentSpec = z.infer<typeof ComponentSchema>;
export type ComponentRole = keyof Manifest['components'];

/** The first problem zod found, as "components.prior.file: Invalid input: expected string". */
export function describeZodError(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const path = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') return `${path}: unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return `${path}: ${issue.message}`;
}

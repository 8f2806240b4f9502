// Pack manifest v1 (models/pack.schema.json) as a zod schema: the engine refuses a pack whose
// manifest does not parse, naming the field.
import { z } from 'zod';

const finite = z.number().finite();
const posInt = z.number().int().positive();

export const TensorSpecSchema = z.object({
  name: z.string().min(1),
  dtype: z.enum(['float32', 'float16', 'int64', 'int32', 'bool']),
  shape: z.array(z.union([z.number().int().nonnegative(), z.string().min(1)])),
});

export const ComponentSchema = z.object({
  file: z.string().min(1),
  inputs: z.array(TensorSpecSchema).min(1),
  outputs: z.array(TensorSpecSchema).min(1),
  flops: z.number().nonnegative(),
  external_data: z.array(z.string().min(1)).optional(),
});

export const SchedulerConfigSchema = z.object({
  num_train_timesteps: posInt,
  beta_schedule: z.literal('squaredcos_cap_v2'),
  variance_type: z.enum(['fixed_small_log', 'learned_range']),
  prediction_type: z.enum(['epsilon', 'sample']),
  clip_sample: z.boolean(),
  clip_sample_range: finite.positive(),
});

const floats = z.array(finite);

export const ManifestSchema = z
  .object({
    schema_version: z.literal(1),
    name: z.string().regex(/^[a-z0-9-]+$/, 'lower-case letters, digits and "-" only'),
    title: z.string().min(1),
    description: z.string(),
    license: z.string().min(1),
    attribution: z.string(),
    source: z.object({
      kind: z.string().min(1),
      pipeline: z.string().min(1),
      exporter_version: z.string(),
    }),
    embedding_dim: posInt,
    text: z.object({ max_length: posInt, hidden_size: posInt }),
    tokenizer: z.object({
      file: z.string().min(1),
      max_length: posInt,
      pad_token_id: z.number().int().nonnegative(),
      bos_token_id: z.number().int().nonnegative(),
      eos_token_id: z.number().int().nonnegative(),
    }),
    image_preprocess: z.object({
      size: posInt,
      crop_size: posInt,
      resample: z.literal('bicubic'),
      rescale_factor: finite.positive(),
      mean: z.array(finite).length(3),
      std: z.array(finite.positive()).length(3),
    }),
    prior_stats: z.object({ clip_mean: floats, clip_std: floats }),
    resolution: z.object({ decoder: posInt, output: posInt }),
    schedulers: z.object({
      prior: SchedulerConfigSchema,
      decoder: SchedulerConfigSchema,
      super_res: SchedulerConfigSchema.optional(),
    }),
    defaults: z.object({
      prior_steps: posInt,
      decoder_steps: posInt,
      super_res_steps: posInt,
      prior_guidance: finite,
      decoder_guidance: finite,
    }),
    components: z.object({
      text_encoder: ComponentSchema,
      image_encoder: ComponentSchema.optional(),
      prior: ComponentSchema,
      text_proj: ComponentSchema,
      decoder: ComponentSchema,
      super_res_first: ComponentSchema.optional(),
      super_res_last: ComponentSchema.optional(),
    }),
    files: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/, 'sha256 hex')),
  })
  .superRefine((m, ctx) => {
    const E = m.embedding_dim;
    if (m.prior_stats.clip_mean.length !== E) {
      ctx.addIssue({
        code: 'custom',
        path: ['prior_stats', 'clip_mean'],
        message: `must have embedding_dim=${E} values`,
      });
    }
    if (m.prior_stats.clip_std.length !== E) {
      ctx.addIssue({
        code: 'custom',
        path: ['prior_stats', 'clip_std'],
        message: `must have embedding_dim=${E} values`,
      });
    }
    const sr = [m.components.super_res_first, m.components.super_res_last].filter(Boolean).length;
    if (sr === 1)
      ctx.addIssue({
        code: 'custom',
        path: ['components'],
        message: 'super_res_first and super_res_last come together',
      });
    if (sr === 2 && !m.schedulers.super_res) {
      ctx.addIssue({
        code: 'custom',
        path: ['schedulers', 'super_res'],
        message: 'required when the pack has super-resolution',
      });
    }
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
          ctx.addIssue({ code: 'custom', path: ['files'], message: `has no sha256 for ${f} (${role})` });
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
  const path = issue.path.length ? issue.path.map(String).join('.') : '(root)';
  return `${path}: ${issue.message}`;
}

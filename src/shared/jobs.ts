// The contract of jobs: each kind's request and result, a job's state and progress.
import { z } from 'zod'
import { formationThreshold } from './dynamics'
import { GeometryJobRequestSchema } from './geometry'
import { SaeImportRequestSchema } from './saes'
import { backendName, id, none } from './schema'

export const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'] as const
export const JobStateSchema = z.enum(JOB_STATES)
export type JobState = z.infer<typeof JobStateSchema>

const checkpointIds = z.array(z.number().int()).max(100_000).default([])

export const VerifyJobRequestSchema = z.object({
  kind: z.literal('verify-checkpoints'),
  /** Empty: every registered checkpoint. */
  checkpointIds
})

export const HarvestJobRequestSchema = z.object({
  kind: z.literal('harvest'),
  /** Empty: every registered checkpoint, in step order. */
  checkpointIds,
  corpus: z.string().min(1).max(4096),
  /** Language tag for a plain-text corpus. */
  lang: z.string().max(32).optional(),
  layer: z.number().int().nonnegative().max(10_000),
  context: z.number().int().positive().max(1_000_000).default(64),
  maxTokens: z.number().int().positive().optional(),
  dtype: z.enum(['f16', 'f32']).default('f16'),
  seed: z.number().int().default(0),
  dropShort: z.boolean().default(false),
  backend: backendName.optional()
})

export const FeatureStatsJobRequestSchema = z.object({
  kind: z.literal('feature-stats'),
  /** Empty: every SAE of the layer. */
  checkpointIds,
  layer: z.number().int().nonnegative(),
  examples: z.number().int().positive().max(1000).default(50),
  topN: z.number().int().positive().max(1000).default(20),
  maxRows: z.number().int().positive().optional(),
  language: z
    .union([
      z.object({ rule: z.literal('paper') }),
      z.object({ rule: z.literal('script'), scripts: z.record(z.string().max(32), z.array(z.string().regex(/^[A-Z][a-z_]+$/)).min(1)) }),
      z.object({ rule: z.literal('tags') })
    ])
    .optional(),
  languageThreshold: z.number().gt(0.5).lt(1).optional(),
  backend: backendName.optional()
})

export const DynamicsJobRequestSchema = z.object({
  kind: z.literal('dynamics'),
  layer: z.number().int().nonnegative(),
  /** M above which a feature counts as formed (METHODS §2). */
  threshold: formationThreshold.default(0.5),
  backend: backendName.optional()
})

export const TrainSeriesJobRequestSchema = z.object({
  kind: z.literal('train-series'),
  /** Empty: every checkpoint with activations at this layer, in step order. */
  checkpointIds,
  layer: z.number().int().nonnegative(),
  preset: z.enum(['inaba2025', 'sae-track', 'gao2024']).default('sae-track'),
  n: z
    .number()
    .int()
    .positive()
    .max(1 << 22)
    .optional(),
  k: z.number().int().positive().optional(),
  /** Tokens for the first SAE; warm-started ones take the preset's fraction of it. */
  tokens: z.number().int().positive().optional(),
  batchSize: z.number().int().positive().optional(),
  lr: z.number().positive().optional(),
  /** Warm-up steps of the first SAE (the preset's when absent). */
  warmupSteps: z.number().int().nonnegative().optional(),
  /** Tokens of each warm-started SAE as a fraction of the first's (sae-track: 0.05). */
  warmTokenFraction: z.number().gt(0).max(1).optional(),
  /** Learning rate of each warm-started SAE as a fraction of the first's (sae-track: 0.1). */
  warmLrFactor: z.number().gt(0).max(1).optional(),
  /** How each input row is scaled before encoding (the preset's when absent). */
  inputScaling: z.enum(['none', 'unit_norm', 'layer_norm', 'constant']).optional(),
  /** AuxK's number of dead latents revived per step (the preset's when absent). */
  auxK: z.number().int().nonnegative().optional(),
  /** Held-out rows read for the final evaluation (8,192 when absent). */
  evalRows: z.number().int().positive().optional(),
  /** Steps between logged metrics (10 when absent). */
  logEvery: z.number().int().positive().optional(),
  /** Steps between saved training states (500 when absent). */
  checkpointEvery: z.number().int().positive().optional(),
  /**
   * Train new SAEs where the checkpoints already have one at this layer. The new ones become current; the old SAEs,
   * their feature sets and labels are kept (superseded). Without it, existing SAEs are kept and skipped.
   */
  retrain: z.boolean().default(false),
  seed: z.number().int().default(0),
  backend: backendName.optional(),
  /** The model's name written into each SAE's cfg.json (SAELens' model_name); default: from the checkpoint folder. */
  modelName: z.string().trim().min(1).max(200).optional()
})

/**
 * Evaluates every SAE of a layer by splicing (featuretrace evaluate): loss recovered, KL, FVU per checkpoint. The
 * windows are those a harvest with these settings stores; each setting left out is taken from the checkpoint's
 * activation store at this layer (the harvest its SAE was trained on).
 */
export const EvaluateSaesJobRequestSchema = z.object({
  kind: z.literal('evaluate-saes'),
  /** Empty: every checkpoint with weights and a current SAE at this layer, in step order. */
  checkpointIds,
  layer: z.number().int().nonnegative().max(10_000),
  corpus: z.string().min(1).max(4096).optional(),
  lang: z.string().max(32).optional(),
  context: z.number().int().positive().max(1_000_000).optional(),
  maxTokens: z.number().int().positive().optional(),
  seed: z.number().int().optional(),
  dropShort: z.boolean().optional(),
  backend: backendName.optional()
})

/** Imports SAEs made elsewhere (as saes.import), in the worker: reading and converting each one with progress. */
export const SaeImportJobRequestSchema = SaeImportRequestSchema.extend({ kind: z.literal('sae-import') })

/** Parameters of each job kind; the discriminant is `kind`. */
export const JobRequestSchema = z.discriminatedUnion('kind', [
  VerifyJobRequestSchema,
  HarvestJobRequestSchema,
  FeatureStatsJobRequestSchema,
  DynamicsJobRequestSchema,
  TrainSeriesJobRequestSchema,
  GeometryJobRequestSchema,
  SaeImportJobRequestSchema,
  EvaluateSaesJobRequestSchema
])
export type JobRequest = z.infer<typeof JobRequestSchema>
export type JobKind = JobRequest['kind']
/** A job's request of one kind, as stored (defaults filled). */
export type JobRequestOf<K extends JobKind> = Extract<JobRequest, { kind: K }>

/** What each kind's job keeps as its result (shown in the jobs panel as "key: value"). */
export const jobResultSchemas = {
  'verify-checkpoints': z.object({
    checked: z.number().int(),
    'with problems': z.number().int(),
    /** Checked steps whose tensors all equal another verified step's (absent in jobs run before content hashes). */
    'same weights as another step': z.number().int().optional()
  }),
  harvest: z.object({ checkpoints: z.number().int(), tokens: z.number().int(), backend: z.string(), 'special tokens': z.string() }),
  'feature-stats': z.object({ sets: z.number().int(), features: z.number().int(), rows: z.string(), backend: z.string().optional() }),
  dynamics: z.object({
    layer: z.number().int(),
    features: z.number().int(),
    formed: z.number().int(),
    threshold: z.number(),
    matchMethod: z.string().nullable()
  }),
  'train-series': z.object({ saes: z.number().int(), backend: z.string(), kept: z.string().optional() }),
  geometry: z.object({ results: z.array(z.number().int()), backend: z.string() }),
  'sae-import': z.object({ imported: z.number().int(), steps: z.array(z.number().int()), saeIds: z.array(z.number().int()) }),
  'evaluate-saes': z.object({ evaluated: z.number().int(), layer: z.number().int(), backend: z.string() })
} as const satisfies Record<JobKind, z.ZodType>
export type JobResultOf<K extends JobKind> = z.output<(typeof jobResultSchemas)[K]>

const jobFields = {
  id: z.number().int(),
  state: JobStateSchema,
  fraction: z.number().min(0).max(1),
  rate: z.number().nullable(),
  rateUnit: z.string().nullable(),
  etaSeconds: z.number().nullable(),
  message: z.string().nullable(),
  error: z.string().nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable()
}

/** A job of one kind: its request (null when it was stored by a version whose request no longer reads) and result. */
function jobOf<K extends JobKind, P extends z.ZodType, R extends z.ZodType>(kind: K, params: P, result: R) {
  return z.object({ ...jobFields, kind: z.literal(kind), params: params.nullable(), result: result.nullable() })
}

export const JobSchema = z.discriminatedUnion('kind', [
  jobOf('verify-checkpoints', VerifyJobRequestSchema, jobResultSchemas['verify-checkpoints']),
  jobOf('harvest', HarvestJobRequestSchema, jobResultSchemas.harvest),
  jobOf('feature-stats', FeatureStatsJobRequestSchema, jobResultSchemas['feature-stats']),
  jobOf('dynamics', DynamicsJobRequestSchema, jobResultSchemas.dynamics),
  jobOf('train-series', TrainSeriesJobRequestSchema, jobResultSchemas['train-series']),
  jobOf('geometry', GeometryJobRequestSchema, jobResultSchemas.geometry),
  jobOf('sae-import', SaeImportJobRequestSchema, jobResultSchemas['sae-import']),
  jobOf('evaluate-saes', EvaluateSaesJobRequestSchema, jobResultSchemas['evaluate-saes'])
])
export type Job = z.infer<typeof JobSchema>

export const jobCalls = {
  'jobs.list': { input: none, output: z.array(JobSchema) },
  'jobs.start': { input: JobRequestSchema, output: JobSchema },
  /** What a job would replace, in words, and how many labels stay (they always do): the UI asks before starting it. */
  'jobs.replaces': { input: JobRequestSchema, output: z.object({ replaces: z.array(z.string()), labelsKept: z.number().int() }) },
  'jobs.cancel': { input: id, output: JobSchema }
} as const

// The contract of SAEs: trained here or imported, their training metrics, the import's scan.
import { z } from 'zod'
import { SkippedFolderSchema } from './checkpoints'

export const SaeInfoSchema = z.object({
  id: z.number().int(),
  checkpointId: z.number().int(),
  step: z.number().int(),
  layer: z.number().int(),
  path: z.string(),
  preset: z.string(),
  d: z.number().int(),
  n: z.number().int(),
  k: z.number().int(),
  warmStarted: z.boolean(),
  tokens: z.number().int(),
  steps: z.number().int(),
  fvu: z.number().nullable(),
  explainedVariance: z.number().nullable(),
  cosine: z.number().nullable(),
  l0: z.number().nullable(),
  deadFraction: z.number().nullable(),
  backend: z.string().nullable(),
  /** The hook the SAE reads in its source's naming (SAELens hook_name, sparsify hookpoint, Gemma Scope's by release); null for SAEs trained here. */
  hook: z.string().nullable(),
  createdAt: z.string(),
  /** The SAE that replaced this one as the checkpoint's current SAE at this layer (retrained or re-imported); null while current. */
  supersededBy: z.number().int().nullable(),
  supersededAt: z.string().nullable()
})
export type SaeInfo = z.infer<typeof SaeInfoSchema>

export const SaeMetricSchema = z.object({
  checkpointId: z.number().int(),
  layer: z.number().int(),
  step: z.number().int(),
  tokens: z.number().int(),
  loss: z.number(),
  auxLoss: z.number(),
  l0: z.number(),
  deadFraction: z.number(),
  lr: z.number(),
  tokensPerSecond: z.number().nullable()
})
export type SaeMetric = z.infer<typeof SaeMetricSchema>

/** A latent firing on more than this fraction of the statistic rows is dense (as SAELens and Neuronpedia flag it). */
export const DENSE_DENSITY = 0.1

/** An SAE's latents by firing frequency, from its feature statistics: dead, dense, and the log10 density histogram. */
export const SaeQualitySchema = z.object({
  saeId: z.number().int(),
  checkpointId: z.number().int(),
  step: z.number().int(),
  layer: z.number().int(),
  setId: z.number().int(),
  /** Latents with statistics (d_sae). */
  latents: z.number().int().nonnegative(),
  /** Latents that never fired (active in the top-k with a positive value) on any statistic row. */
  dead: z.number().int().nonnegative(),
  /** Latents firing on more than `denseThreshold` of the statistic rows. */
  dense: z.number().int().nonnegative(),
  denseThreshold: z.number(),
  /** Rows (tokens) the statistics were computed over; null when not recorded (statistics older than the record). */
  rows: z.number().int().nonnegative().nullable(),
  /** True: the held-out context windows only; false: every row (the store held too few windows); null: not recorded. */
  heldOutOnly: z.boolean().nullable(),
  /**
   * Live latents by log10(firing frequency): bin i covers [lo + i·width, lo + (i+1)·width), the last bin ends at 0
   * (a latent firing on every row). The same edges for every SAE of one answer, so they compare.
   */
  histogram: z.object({ lo: z.number(), width: z.number().positive(), counts: z.array(z.number().int().nonnegative()) })
})
export type SaeQuality = z.infer<typeof SaeQualitySchema>

/** An SAE evaluated by splicing (the evaluate-saes job, `featuretrace evaluate`): METHODS' loss recovered, KL and FVU. */
export const SaeEvaluationSchema = z.object({
  saeId: z.number().int(),
  checkpointId: z.number().int(),
  step: z.number().int(),
  layer: z.number().int(),
  /** Mean next-token cross-entropy (nats): clean, with the SAE's reconstruction spliced in after block L, with zeros there. */
  ceClean: z.number(),
  ceSpliced: z.number(),
  ceZero: z.number(),
  /** (ceZero − ceSpliced) / (ceZero − ceClean); null when zeroing does not change the loss. */
  lossRecovered: z.number().nullable(),
  /** KL(clean ‖ spliced), nats, averaged over the predictions. */
  kl: z.number(),
  fvu: z.number(),
  explainedVariance: z.number(),
  l0: z.number(),
  /** Predictions (tokens scored), stored positions and windows. */
  tokens: z.number().int(),
  positions: z.number().int(),
  windows: z.number().int(),
  corpus: z.string(),
  context: z.number().int(),
  maxTokens: z.number().int().nullable(),
  seed: z.number().int(),
  backend: z.string(),
  createdAt: z.string()
})
export type SaeEvaluation = z.infer<typeof SaeEvaluationSchema>

export const SaeImportItemSchema = z.object({
  /** The SAE's folder or file. */
  path: z.string(),
  format: z.enum(['saelens', 'sparsify', 'gemma-scope', 'llm-jp-sae']),
  architecture: z.enum(['topk', 'jumprelu', 'standard']),
  dIn: z.number().int(),
  dSae: z.number().int(),
  k: z.number().int().nullable(),
  /** JumpReLU's per-latent threshold: smallest, median, largest. */
  threshold: z.object({ min: z.number(), median: z.number(), max: z.number() }).nullable(),
  applyBDecToInput: z.boolean(),
  inputScaling: z.string(),
  dtype: z.string(),
  /** The hook the SAE reads, in its source's naming. */
  hook: z.string().nullable(),
  /** What that hook is: residual, mlp_out, attn_out, attn_heads, transcoder, … (only the residual stream is imported). */
  stream: z.string(),
  step: z.number().int().nullable(),
  checkpointId: z.number().int().nullable(),
  /** The step has no registered checkpoint: the import makes an SAE-only one (no weights). */
  newCheckpoint: z.boolean(),
  layer: z.number().int().nullable(),
  notes: z.array(z.string())
})
export type SaeImportItem = z.infer<typeof SaeImportItemSchema>
export const SaeImportScanSchema = z.object({ path: z.string(), found: z.array(SaeImportItemSchema), problems: z.array(SkippedFolderSchema) })
export type SaeImportScan = z.infer<typeof SaeImportScanSchema>
export const SaeImportRequestSchema = z
  .object({
    path: z.string().min(1).max(4096),
    /** Checkpoint step for a single SAE whose name and config carry none. */
    step: z.number().int().nonnegative().optional(),
    /** Residual-stream layer (after block L) when the source does not say. */
    layer: z.number().int().nonnegative().max(10_000).optional(),
    /** Which hookpoint subfolder to take where a step folder holds several (sparsify). */
    hookpoint: z.string().max(200).optional(),
    /** Replace SAEs already attached at the same checkpoint and layer. */
    replace: z.boolean().optional(),
    /**
     * Record steps without a registered checkpoint folder as SAE-only checkpoints (no weights). Implied when the
     * project has no checkpoint with weights.
     */
    saeOnly: z.boolean().optional()
  })
  .strict()
export type SaeImportRequest = z.infer<typeof SaeImportRequestSchema>

export const saeCalls = {
  'saes.list': {
    input: z.object({ includeSuperseded: z.boolean().optional() }).strict().optional(),
    output: z.array(SaeInfoSchema)
  },
  'saes.metrics': {
    input: z.object({ checkpointId: z.number().int().nonnegative(), layer: z.number().int().nonnegative() }).strict(),
    output: z.array(SaeMetricSchema)
  },
  /** Dead and dense latents and the density histogram of each current SAE at a layer that has feature statistics, by step. */
  'saes.quality': {
    input: z.object({ layer: z.number().int().nonnegative() }).strict(),
    output: z.array(SaeQualitySchema)
  },
  /** The stored splice evaluations of the current SAEs (of one layer when given), in layer and step order. */
  'saes.evaluations': {
    input: z.object({ layer: z.number().int().nonnegative().optional() }).strict().optional(),
    output: z.array(SaeEvaluationSchema)
  },
  /** What an import would find and attach, and what it could not read and why (headers only: quick). */
  'saes.scanImport': { input: SaeImportRequestSchema, output: SaeImportScanSchema },
  /**
   * Imports as the sae-import job does (in the worker, with progress and cancel) and answers when it has ended:
   * the SAEs imported; a cancelled import fails with code 'cancelled' and leaves nothing behind.
   */
  'saes.import': { input: SaeImportRequestSchema, output: z.array(SaeInfoSchema) }
} as const

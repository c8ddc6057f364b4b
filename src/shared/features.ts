// The contract of feature sets and their features (statistics, examples, neighbours).
import { z } from 'zod'
import { LabelSchema } from './labels'
import { none, pathString } from './schema'

export const FeatureSetInfoSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  source: z.enum(['sae', 'import']),
  saeId: z.number().int().nullable(),
  checkpointId: z.number().int().nullable(),
  /** The checkpoint as an imported file named it. */
  checkpointLabel: z.string().nullable(),
  step: z.number().int().nullable(),
  layer: z.number().int().nullable(),
  nFeatures: z.number().int(),
  createdAt: z.string(),
  /** When statistics were last recomputed in place (labels kept); null if never. */
  updatedAt: z.string().nullable(),
  /** The set's SAE was superseded by a retrained or re-imported one: its features and labels are kept here. */
  superseded: z.boolean(),
  /** Labels anywhere in the set (all annotators). */
  labelCount: z.number().int()
})
export type FeatureSetInfo = z.infer<typeof FeatureSetInfoSchema>

/** A feature's headline statistics, in the list and on its dashboard alike. */
const featureStats = {
  feature: z.number().int(),
  density: z.number().nullable(),
  maxAct: z.number().nullable(),
  meanAct: z.number().nullable(),
  dead: z.boolean(),
  langClass: z.string().nullable()
}

export const FeatureSummarySchema = z.object({
  ...featureStats,
  topTokens: z.string(),
  /** The requesting annotator's category, if any. */
  label: z.string().nullable(),
  /** From the layer's dynamics run, when one was computed: formation step (SAE variant) and total drift. */
  formationStep: z.number().int().nullable(),
  totalDrift: z.number().nullable()
})
export type FeatureSummary = z.infer<typeof FeatureSummarySchema>

export const FeatureListQuerySchema = z
  .object({
    setId: z.number().int().nonnegative(),
    offset: z.number().int().nonnegative().optional(),
    limit: z.number().int().positive().max(5000).optional(),
    sort: z.enum(['feature', 'density', 'maxAct', 'meanAct', 'lang', 'formation', 'drift']).optional(),
    descending: z.boolean().optional(),
    lang: z.string().max(32).optional(),
    /** A category, or 'unlabelled'. */
    label: z.string().max(200).optional(),
    annotator: z.string().max(100).optional(),
    search: z.string().max(200).optional(),
    /** Text in a label's category or note, any annotator's (case-insensitive for ASCII). */
    text: z.string().max(200).optional(),
    minDensity: z.number().optional(),
    maxDensity: z.number().optional(),
    dead: z.boolean().optional()
  })
  .strict()
export type FeatureListQuery = z.infer<typeof FeatureListQuerySchema>

/** The interval sampler splits (0, max activation] into this many equal intervals and keeps examples whose peak falls in each. */
export const EXAMPLE_INTERVALS = 5

export const FeatureExampleViewSchema = z.object({
  sampler: z.enum(['paper', 'top', 'interval', 'imported']),
  tokens: z.array(z.string()),
  acts: z.array(z.number()),
  /** For the interval sampler: which interval (0-based) the example's peak falls in, and its activation range [lo, hi). */
  interval: z.object({ index: z.number().int().nonnegative(), lo: z.number(), hi: z.number() }).optional()
})
export type FeatureExampleView = z.infer<typeof FeatureExampleViewSchema>

/** A token a feature promotes or suppresses: vocabulary id, its text, the effect in logits per unit of activation. */
export const LogitTokenSchema = z.object({ token: z.number().int().nonnegative(), text: z.string(), value: z.number() })
export type LogitToken = z.infer<typeof LogitTokenSchema>

/**
 * A feature's logit effects, W_dec[i] ⊙ γ_final · W_Uᵀ (SAEDashboard's and Neuronpedia's convention: the final
 * norm's scale only, no centring or normalisation), W_dec[i] in the model's residual units.
 */
export const LogitEffectsSchema = z.object({
  /** The 10 most promoted tokens, largest first. */
  positive: z.array(LogitTokenSchema),
  /** The 10 most suppressed tokens, most negative first. */
  negative: z.array(LogitTokenSchema),
  /** Every vocabulary token's effect, in equal-width bins from lo to hi. */
  histogram: z.object({ lo: z.number(), hi: z.number(), counts: z.array(z.number()) })
})
export type LogitEffects = z.infer<typeof LogitEffectsSchema>

export const FeatureDetailSchema = z.object({
  setId: z.number().int(),
  ...featureStats,
  langCounts: z.record(z.string(), z.number()).nullable(),
  histogram: z.object({ lo: z.number(), hi: z.number(), counts: z.array(z.number()) }).nullable(),
  neighbours: z.array(z.object({ feature: z.number().int(), cosine: z.number() })),
  examples: z.array(FeatureExampleViewSchema),
  labels: z.array(LabelSchema),
  logitEffects: LogitEffectsSchema.nullable(),
  /** How the logit effects were computed (tensors read, scale to residual units), or why there are none. */
  logitEffectsNote: z.string().nullable(),
  /** Latents by Pearson correlation of activations (zeros included) over the rows the statistics read; null: not computed. */
  correlations: z.array(z.object({ feature: z.number().int(), r: z.number() })).nullable(),
  /** The rows the statistics read and whether they were only the held-out windows; null: not recorded. */
  statsRows: z.object({ rows: z.number().int(), heldOut: z.boolean() }).nullable()
})
export type FeatureDetail = z.infer<typeof FeatureDetailSchema>

export const NeuronpediaExportSchema = z.object({
  modelId: z.string(),
  sources: z.array(
    z.object({
      id: z.string(),
      step: z.number().int().nullable(),
      layer: z.number().int().nullable(),
      features: z.number().int(),
      activations: z.number().int(),
      explanations: z.number().int()
    })
  ),
  dir: z.string()
})
export type NeuronpediaExport = z.infer<typeof NeuronpediaExportSchema>

export const featureCalls = {
  'features.sets': { input: none, output: z.array(FeatureSetInfoSchema) },
  'features.list': { input: FeatureListQuerySchema, output: z.object({ total: z.number().int(), rows: z.array(FeatureSummarySchema) }) },
  /** Where a feature stands in the list a query gives (null: the filters leave it out). */
  'features.indexOf': {
    input: FeatureListQuerySchema.omit({ offset: true, limit: true }).extend({ feature: z.number().int().nonnegative() }).strict(),
    output: z.object({ index: z.number().int().nullable() })
  },
  'features.get': {
    input: z.object({ setId: z.number().int().nonnegative(), feature: z.number().int().nonnegative() }).strict(),
    output: FeatureDetailSchema
  },
  'features.import': {
    input: z.object({ path: pathString, name: z.string().trim().min(1).max(200).optional() }).strict(),
    output: z.array(FeatureSetInfoSchema)
  },
  /** Writes the current sets' features (examples, label, note) as a feature-example set (FORMATS.md). */
  'features.export': {
    input: z
      .object({
        path: pathString,
        /** Only the set of this checkpoint (its step, or the label an imported file gave it). */
        checkpoint: z.string().max(200).optional(),
        /** Whose labels go out (default: each feature's majority label). */
        annotator: z.string().max(100).optional(),
        /** Examples per feature (default 50). */
        examples: z.number().int().positive().max(10_000).optional()
      })
      .strict(),
    output: z.object({ features: z.number().int(), path: z.string() })
  },
  /** Features, examples and labels in Neuronpedia's batch layout, into a new folder. */
  'features.exportNeuronpedia': {
    input: z
      .object({
        path: pathString,
        /** Neuronpedia model id: lower-case letters, digits, "-" and "_" (default: the project's name, made so). */
        modelId: z.string().max(200).optional(),
        /** Source-set name, the same characters without "__" (default "featuretrace"); the source id is "<layer>-<set>__step<S>". */
        sourceSet: z.string().max(200).optional(),
        /** Id of the Neuronpedia user recorded as creator of every record and author of every label (default: Neuronpedia's bot user). */
        creatorId: z.string().max(200).optional(),
        /** Model.owner, the organisation that made the model (required by Neuronpedia; default "unknown"). */
        owner: z.string().max(200).optional(),
        /** Only this checkpoint step. */
        step: z.number().int().nonnegative().optional()
      })
      .strict(),
    output: NeuronpediaExportSchema
  }
} as const

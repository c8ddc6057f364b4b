// The contract of feature dynamics: drift, matching and formation along a layer's SAE series.
import { z } from 'zod'
import { annotatorName } from './labels'
import { backendName, requestId } from './schema'

const variantCurves = z.object({ sae: z.array(z.number()), raw: z.array(z.number()), jaccard: z.array(z.number()), weightedJaccard: z.array(z.number()) })
const variantSteps = z.object({
  sae: z.number().nullable(),
  raw: z.number().nullable(),
  jaccard: z.number().nullable(),
  weightedJaccard: z.number().nullable()
})

export const DynamicsOverviewSchema = z.object({
  layer: z.number().int(),
  steps: z.array(z.number().int()),
  n: z.number().int(),
  warmStarted: z.boolean(),
  matchMethod: z.string().nullable(),
  /** Per checkpoint, 100 bins of the cosine to the final SAE on [-1, 1]. */
  histograms: z.array(z.array(z.number().int())),
  /** Per feature, 1 − cos(first checkpoint, final). */
  totalDrift: z.array(z.number())
})
export type DynamicsOverview = z.infer<typeof DynamicsOverviewSchema>

export const DynamicsFeatureSchema = z.object({
  layer: z.number().int(),
  feature: z.number().int(),
  steps: z.array(z.number().int()),
  cosToFinal: z.array(z.number()),
  cosToPrevious: z.array(z.number()),
  /** PCA(2) of the feature's decoder rows across checkpoints. */
  trajectory: z.array(z.tuple([z.number(), z.number()])),
  /** Null when some step of the series has no activations (an SAE-only checkpoint): formationUnavailable says which. */
  formation: z.object({ threshold: z.number(), m: variantCurves, formationStep: variantSteps }).nullable(),
  formationUnavailable: z.string().nullable(),
  sets: z.array(z.object({ step: z.number().int(), setId: z.number().int() }))
})
export type DynamicsFeature = z.infer<typeof DynamicsFeatureSchema>

export const DynamicsRunSchema = z.object({
  layer: z.number().int(),
  steps: z.array(z.number().int()),
  n: z.number().int(),
  threshold: z.number(),
  warmStarted: z.boolean(),
  matchMethod: z.string().nullable(),
  createdAt: z.string()
})
export type DynamicsRunInfo = z.infer<typeof DynamicsRunSchema>

export const FeatureDynamicsRowSchema = z.object({
  feature: z.number().int(),
  /** 1 − cos(decoder row at the first checkpoint, at the final one). */
  totalDrift: z.number(),
  /** The largest single move: the smallest cosine to the previous checkpoint. */
  minCosToPrevious: z.number(),
  formationStep: variantSteps,
  /** M_i at the final checkpoint (SAE variant). */
  mFinal: z.number().nullable()
})
export type FeatureDynamicsRow = z.infer<typeof FeatureDynamicsRowSchema>

export const FormationCurvesSchema = z.object({
  layer: z.number().int(),
  steps: z.array(z.number().int()),
  threshold: z.number(),
  curves: z.array(z.object({ feature: z.number().int(), m: z.array(z.number()), formationStep: z.number().int().nullable() }))
})
export type FormationCurves = z.infer<typeof FormationCurvesSchema>

export const FormationByLabelSchema = z.object({
  layer: z.number().int(),
  steps: z.array(z.number().int()),
  labelledFeatures: z.number().int(),
  /** Whether the steps came from the stored dynamics run (else computed for this request). */
  stored: z.boolean(),
  /** category → formation step (or "never") → features. */
  counts: z.record(z.string(), z.record(z.string(), z.number().int())),
  /** Whether labels from every checkpoint counted (a warm-started series), or only the final checkpoint's. */
  warmStarted: z.boolean(),
  /** Whose labels counted; null: each feature's majority label over all annotators. */
  annotator: z.string().nullable(),
  /** Everyone who labelled features of the checkpoints that count. */
  annotators: z.array(z.string()),
  /** The checkpoints whose labels were counted. */
  labelSteps: z.array(z.number().int())
})
export type FormationByLabel = z.infer<typeof FormationByLabelSchema>

/** SAE-Track's M_i(t) of some features in full: every variant, the top positions, the random baseline. */
export const FormationSchema = z.object({
  layer: z.number().int(),
  steps: z.array(z.number().int()),
  threshold: z.number(),
  topK: z.number().int(),
  randomPositions: z.array(z.number().int()),
  sRand: variantCurves,
  features: z.array(z.object({ feature: z.number().int(), positions: z.array(z.number().int()), m: variantCurves, formationStep: variantSteps }))
})
export type Formation = z.infer<typeof FormationSchema>

const layer = z.number().int().nonnegative()
/** A query's client-made id, to cancel it with analysis.cancel while it runs. */
const query = { requestId: requestId.optional() }
/** M_i(t) is a difference of mean cosines: a threshold outside (−1, 1) is never crossed, so every feature would read "not formed". */
const THRESHOLD_RANGE = 'must lie between −1 and 1 (M is a difference of mean cosines; SAE-Track uses 0.5)'
export const formationThreshold = z.number().gt(-1, THRESHOLD_RANGE).lt(1, THRESHOLD_RANGE)
const threshold = formationThreshold.optional()

/**
 * The dynamics queries run in the analysis process (drift cached there, bounded), never in the host; each can be
 * cancelled by its requestId, and then fails with code 'cancelled'.
 */
export const dynamicsCalls = {
  'dynamics.overview': { input: z.object({ layer, ...query }).strict(), output: DynamicsOverviewSchema },
  'dynamics.feature': {
    input: z.object({ layer, feature: z.number().int().nonnegative(), threshold, ...query }).strict(),
    output: DynamicsFeatureSchema
  },
  'dynamics.formationByLabel': {
    input: z.object({ layer, threshold, annotator: annotatorName.optional(), ...query }).strict(),
    output: FormationByLabelSchema
  },
  'dynamics.formationCurves': {
    input: z.object({ layer, features: z.array(z.number().int().nonnegative()).min(1).max(50), threshold, ...query }).strict(),
    output: FormationCurvesSchema
  },
  /** Every variant of M_i(t) for up to 1,000 features, with their top positions (the CLI's formation command). */
  'dynamics.formation': {
    input: z
      .object({ layer, features: z.array(z.number().int().nonnegative()).min(1).max(1000), threshold, backend: backendName.optional(), ...query })
      .strict(),
    output: FormationSchema
  },
  /** The stored dynamics run of a layer, if the dynamics job computed one. */
  'dynamics.run': { input: z.object({ layer }).strict(), output: DynamicsRunSchema.nullable() },
  /** The stored run's per-feature rows (drift and formation steps), in feature order; empty without a run. */
  'dynamics.rows': { input: z.object({ layer }).strict(), output: z.array(FeatureDynamicsRowSchema) },
  /** Stops a query of the analysis process by its requestId; false when none such is running. */
  'analysis.cancel': { input: z.object({ requestId }).strict(), output: z.object({ cancelled: z.boolean() }) }
} as const

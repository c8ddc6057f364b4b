// The API contract of the geometry studies (METHODS.md §3): the job request and the stored results.
import { z } from 'zod'
import { backendName } from './schema'

export const GEOMETRY_ANALYSES = ['galaxy', 'lobes', 'crystals'] as const
export const GEOMETRY_METRICS = ['simple_matching', 'jaccard', 'dice', 'overlap', 'phi'] as const

export const GeometryJobRequestSchema = z.object({
  kind: z.literal('geometry'),
  analysis: z.enum(GEOMETRY_ANALYSES),
  layer: z.number().int().nonnegative(),
  /** Empty: every checkpoint with an SAE at this layer (galaxy, lobes) or every registered one (crystals). */
  checkpointIds: z.array(z.number().int()).max(100_000).default([]),
  seed: z.number().int().default(0),
  galaxy: z
    .object({
      sample: z.number().int().min(10).max(1_000_000).optional(),
      dims: z.number().int().positive().max(4096).optional(),
      bootstraps: z.number().int().positive().max(1000).optional()
    })
    .strict()
    .optional(),
  lobes: z
    .object({
      ks: z.array(z.number().int().min(2).max(4096)).min(1).max(32).default([2, 3, 4, 8]),
      metric: z.enum(GEOMETRY_METRICS).default('phi'),
      blockSize: z.number().int().positive().max(1_000_000).optional(),
      threshold: z.number().optional(),
      maxFeatures: z.number().int().positive().optional(),
      maxRows: z.number().int().positive().optional(),
      permutations: z.number().int().nonnegative().max(100_000).optional()
    })
    .strict()
    .optional(),
  crystals: z
    .object({
      pairs: z.array(z.string().min(1).max(4096)).min(1).max(100),
      prefix: z.string().max(16).optional(),
      shrinkage: z.number().nonnegative().optional()
    })
    .strict()
    .optional(),
  backend: backendName.optional()
})
export type GeometryJobRequest = z.infer<typeof GeometryJobRequestSchema>

const pair = z.tuple([z.number(), z.number()])

/** The galaxy of one SAE's decoder: the eigenvalue power law and the clustering entropy (snake_case, as stored and as the Python references write it). */
export const GalaxyResultSchema = z.object({
  alpha: z.number(),
  alpha_ci: pair,
  /** The ranks actually fitted (fewer than asked when d is small). */
  ranks: pair,
  r2: z.number(),
  clustering_entropy: z.number(),
  clustering_entropy_ci: pair,
  gaussian_entropy: z.number(),
  knn_entropy: z.number(),
  sample: z.number().int(),
  dims: z.number().int(),
  bootstraps: z.number().int(),
  n: z.number().int(),
  d: z.number().int(),
  eigenvalues: z.array(z.number()),
  pcs: z.object({ explained: z.array(z.number()), features: z.array(z.number().int()), points: z.array(z.tuple([z.number(), z.number(), z.number()])) })
})
export type GalaxyResult = z.infer<typeof GalaxyResultSchema>

export const AmiTestSchema = z.object({
  ami: z.number(),
  null_mean: z.number(),
  null_sd: z.number(),
  /** (AMI − mean of the null) / its standard deviation, the null being AMI after permuting one labelling. */
  z: z.number(),
  permutations: z.number().int()
})
export type AmiTest = z.infer<typeof AmiTestSchema>

const winners = z.object({ subsets: z.array(z.string()), counts: z.array(z.array(z.number())) })
export const LobeClusteringSchema = z.object({
  k: z.number().int(),
  /** Lobe of each analysed feature (same order as `features`). */
  labels: z.array(z.number().int()),
  geometry_labels: z.array(z.number().int()),
  ami: AmiTestSchema,
  /** Logistic regression decoder row → lobe (first 80% of features train, last 20% test). */
  balanced_accuracy: z.number(),
  /** The same with random unit vectors in place of decoder rows. */
  balanced_accuracy_null: z.number(),
  winners: z.object({ by_lang: winners, by_source: winners }),
  spectral: z.object({ eigenvalues: z.array(z.number()), iterations: z.number().int(), residual: z.number() })
})
export type LobeClustering = z.infer<typeof LobeClusteringSchema>

export const LobeResultSchema = z.object({
  metric: z.enum(GEOMETRY_METRICS),
  block_size: z.number().int(),
  threshold: z.number(),
  blocks: z.number().int(),
  latents: z.number().int(),
  /** The features clustered: those that fired in at least one block (see `excluded`). */
  features: z.array(z.number().int()),
  excluded: z.object({ never_fired: z.number().int(), capped: z.number().int() }),
  clusterings: z.array(LobeClusteringSchema),
  map: z.object({ features: z.array(z.number().int()), xy: z.array(pair) })
})
export type LobeResult = z.infer<typeof LobeResultSchema>

export const QuadrupletSchema = z.object({
  type: z.string(),
  /** a : b :: c : d */
  words: z.tuple([z.string(), z.string(), z.string(), z.string()]),
  kind: z.enum(['parallelogram', 'trapezoid']),
  /** Cosine of the two difference vectors, before (raw activations) and after LDA. */
  cos_before: z.number(),
  cos_after: z.number(),
  /** Shorter difference over the longer, after LDA. */
  length_ratio: z.number(),
  /** The four points in a plane: the first two principal components of all words (before) and the first two LDA directions (after). */
  plane_before: z.array(pair),
  plane_after: z.array(pair)
})
export type Quadruplet = z.infer<typeof QuadrupletSchema>

const crystalCounts = z.object({ parallelogram: z.number().int(), trapezoid: z.number().int(), candidates: z.number().int() })
export const CrystalResultSchema = z.object({
  pairs: z.number().int(),
  types: z.array(z.string()),
  d: z.number().int(),
  /** Silhouette of the difference vectors by type for each number of LDA components (1…C−1). */
  silhouette: z.array(z.object({ components: z.number().int(), score: z.number() })),
  components: z.number().int(),
  lda_eigenvalues: z.array(z.number()),
  /** Mean cosine between the differences of same-type pairs, before and after LDA. */
  mean_cos_before: z.number(),
  mean_cos_after: z.number(),
  /** Same-type quadruplets that are parallel (cos ≥ parallel), before and after LDA, as fractions. */
  parallel_before: z.number(),
  parallel_after: z.number(),
  /**
   * The same fraction after an LDA fitted on shuffled types, within the shuffled groups (mean of 5 shuffles):
   * what LDA's own capacity makes parallel. Structure shows as parallel_after well above it.
   */
  parallel_after_null: z.number(),
  counts: crystalCounts,
  quadruplets: z.array(QuadrupletSchema)
})
export type CrystalResult = z.infer<typeof CrystalResultSchema>

/** The headline numbers of each result, kept beside it for charts over the series. */
export const GalaxySummarySchema = GalaxyResultSchema.pick({
  alpha: true,
  alpha_ci: true,
  r2: true,
  clustering_entropy: true,
  clustering_entropy_ci: true,
  n: true,
  d: true
})
export const LobeSummarySchema = z.object({
  metric: z.enum(GEOMETRY_METRICS),
  blocks: z.number().int(),
  features: z.number().int(),
  ks: z.array(z.object({ k: z.number().int(), ami: z.number(), ami_z: z.number(), balanced_accuracy: z.number(), balanced_accuracy_null: z.number() }))
})
export const CrystalSummarySchema = CrystalResultSchema.pick({
  pairs: true,
  types: true,
  components: true,
  mean_cos_before: true,
  mean_cos_after: true,
  parallel_before: true,
  parallel_after: true,
  parallel_after_null: true,
  counts: true
})

/** The settings a result was computed with (the request's, minus what names the checkpoints). */
export const GeometryParamsSchema = GeometryJobRequestSchema.pick({ seed: true, galaxy: true, lobes: true, crystals: true })
export type GeometryParams = z.infer<typeof GeometryParamsSchema>

const resultFields = {
  id: z.number().int(),
  checkpointId: z.number().int(),
  step: z.number().int(),
  layer: z.number().int(),
  createdAt: z.string()
}

export const GeometryResultInfoSchema = z.discriminatedUnion('analysis', [
  z.object({ ...resultFields, analysis: z.literal('galaxy'), summary: GalaxySummarySchema }),
  z.object({ ...resultFields, analysis: z.literal('lobes'), summary: LobeSummarySchema }),
  z.object({ ...resultFields, analysis: z.literal('crystals'), summary: CrystalSummarySchema })
])
export type GeometryResultInfo = z.infer<typeof GeometryResultInfoSchema>
export type GeometryAnalysis = GeometryResultInfo['analysis']
/** The summary of one analysis's result. */
export type GeometrySummaryOf<A extends GeometryAnalysis> = Extract<GeometryResultInfo, { analysis: A }>['summary']

/** One stored result in full: its summary, settings and payload (eigenvalues, PCs, lobe labels and maps, quadruplets). */
export const GeometryResultSchema = z.discriminatedUnion('analysis', [
  z.object({ ...resultFields, analysis: z.literal('galaxy'), summary: GalaxySummarySchema, params: GeometryParamsSchema, result: GalaxyResultSchema }),
  z.object({ ...resultFields, analysis: z.literal('lobes'), summary: LobeSummarySchema, params: GeometryParamsSchema, result: LobeResultSchema }),
  z.object({ ...resultFields, analysis: z.literal('crystals'), summary: CrystalSummarySchema, params: GeometryParamsSchema, result: CrystalResultSchema })
])
export type GeometryResult = z.infer<typeof GeometryResultSchema>
/** The full result of one analysis. */
export type GeometryResultOf<A extends GeometryAnalysis> = Extract<GeometryResult, { analysis: A }>

export const geometryCalls = {
  'geometry.results': {
    input: z.object({ analysis: z.enum(GEOMETRY_ANALYSES), layer: z.number().int().nonnegative().optional() }).strict(),
    output: z.array(GeometryResultInfoSchema)
  },
  /** One stored result in full (eigenvalues, PCs, lobe labels and maps, quadruplets). */
  'geometry.result': {
    input: z.object({ id: z.number().int().nonnegative() }).strict(),
    output: GeometryResultSchema
  }
} as const

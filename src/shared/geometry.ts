// The API contract of the geometry studies (METHODS.md §3): the job request and the stored results.
import { z } from 'zod'

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
  backend: z.enum(['tensorflow', 'wasm', 'cpu']).optional()
})
export type GeometryJobRequest = z.infer<typeof GeometryJobRequestSchema>

export const GeometryResultInfoSchema = z.object({
  id: z.number().int(),
  analysis: z.enum(GEOMETRY_ANALYSES),
  checkpointId: z.number().int(),
  step: z.number().int(),
  layer: z.number().int(),
  /** The headline numbers (α, entropy; AMI and accuracy per k; parallelograms). */
  summary: z.record(z.string(), z.unknown()),
  createdAt: z.string()
})
export type GeometryResultInfo = z.infer<typeof GeometryResultInfoSchema>

export const geometryCalls = {
  'geometry.results': {
    input: z.object({ analysis: z.enum(GEOMETRY_ANALYSES), layer: z.number().int().nonnegative().optional() }).strict(),
    output: z.array(GeometryResultInfoSchema)
  },
  /** One stored result in full (eigenvalues, PCs, lobe labels and maps, quadruplets). */
  'geometry.result': {
    input: z.object({ id: z.number().int().nonnegative() }).strict(),
    output: GeometryResultInfoSchema.extend({ params: z.unknown(), result: z.unknown() })
  }
} as const

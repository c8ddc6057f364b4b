// The contract of carrying labels from a superseded SAE's feature set to the SAE that replaced it.
import { z } from 'zod'
import { FeatureSetInfoSchema } from './features'
import { requestId } from './schema'

export const CarryPreviewSchema = z.object({
  from: FeatureSetInfoSchema,
  to: FeatureSetInfoSchema,
  /** The labelled features matched one-to-one to the new latents by decoder cosine, optimally (Hungarian method). */
  method: z.literal('hungarian'),
  /** One row per labelled feature of the old set: its match in the new set (null when unmatched). */
  pairs: z.array(
    z.object({
      fromFeature: z.number().int(),
      toFeature: z.number().int().nullable(),
      cosine: z.number().nullable(),
      labels: z.number().int(),
      /** Labels the target feature already has from the same annotators (kept, not overwritten). */
      targetLabels: z.number().int()
    })
  )
})
export type CarryPreview = z.infer<typeof CarryPreviewSchema>

/** Both match in the analysis process (the decoders are read there); a requestId lets analysis.cancel stop them. */
export const carryLabelCalls = {
  /** Which features of a superseded SAE's set match the current SAE's, with their decoder cosines and labels. */
  'labels.carryPreview': {
    input: z
      .object({ fromSetId: z.number().int().nonnegative(), toSetId: z.number().int().nonnegative().optional(), requestId: requestId.optional() })
      .strict(),
    output: CarryPreviewSchema
  },
  /** Copies labels along the matches with cosine ≥ minCosine; never overwrites a label the target already has. */
  'labels.carry': {
    input: z
      .object({
        fromSetId: z.number().int().nonnegative(),
        toSetId: z.number().int().nonnegative().optional(),
        minCosine: z.number().min(-1).max(1).default(0.7),
        requestId: requestId.optional()
      })
      .strict(),
    output: z.object({ carried: z.number().int(), keptExisting: z.number().int(), belowThreshold: z.number().int(), toSetId: z.number().int() })
  }
} as const

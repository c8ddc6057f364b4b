// The contract of checkpoints and their activation stores.
import { z } from 'zod'
import { id, jsonValue, none, pathString } from './schema'

export const VerifyStatusSchema = z.enum(['unverified', 'ok', 'problems'])

export const CheckpointSchema = z.object({
  id: z.number().int(),
  step: z.number().int().nonnegative(),
  name: z.string(),
  /** The checkpoint folder; null for an SAE-only checkpoint (known by SAEs imported for its step, no weights registered). */
  path: z.string().nullable(),
  modelType: z.string(),
  /** Whether FeatureTrace can run this architecture itself (gpt_neox, llama, gpt2); false without weights. */
  supported: z.boolean(),
  dModel: z.number().int().positive(),
  /** Number of blocks; null for an SAE-only checkpoint. */
  layers: z.number().int().positive().nullable(),
  heads: z.number().int().positive().nullable(),
  vocabSize: z.number().int().positive().nullable(),
  tokensSeen: z.number().nonnegative().nullable(),
  weightsBytes: z.number().int().nonnegative().nullable(),
  verifyStatus: VerifyStatusSchema,
  registeredAt: z.string(),
  /** Harvested (or imported) activation stores, one per layer. */
  activations: z.array(z.object({ layer: z.number().int(), rows: z.number().int() }))
})
export type Checkpoint = z.infer<typeof CheckpointSchema>

export const ActivationStoreInfoSchema = z.object({
  id: z.number().int(),
  checkpointId: z.number().int(),
  step: z.number().int(),
  layer: z.number().int(),
  path: z.string(),
  rows: z.number().int(),
  d: z.number().int(),
  dtype: z.enum(['f16', 'f32']),
  context: z.number().int(),
  corpus: z.string(),
  imported: z.boolean(),
  createdAt: z.string()
})
export type ActivationStoreInfo = z.infer<typeof ActivationStoreInfoSchema>

export const VerifyFileSchema = z.object({
  file: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().nullable(),
  tensors: z.number().int().nonnegative().nullable()
})
/** One tensor's content hash: sha256 over its dtype, shape and raw bytes, whatever file or header order holds it. */
export const TensorDigestSchema = z.object({
  name: z.string(),
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  sha256: z.string()
})
export type TensorDigest = z.infer<typeof TensorDigestSchema>
export const VerifyReportSchema = z.object({
  checkpointId: z.number().int(),
  ok: z.boolean(),
  files: z.array(VerifyFileSchema),
  problems: z.array(z.string()),
  /** Every tensor of every readable shard; absent in reports written before content hashes were kept. */
  tensors: z.array(TensorDigestSchema).optional()
})
export type VerifyReport = z.infer<typeof VerifyReportSchema>

/** Another verified checkpoint holding some or all of this one's tensors, byte for byte (by content hash). */
export const SameWeightsSchema = z.object({
  checkpointId: z.number().int(),
  step: z.number().int(),
  /** 'all': every tensor of both checkpoints is equal (the same weights, maybe re-saved); 'partial': some matrices are. */
  kind: z.enum(['all', 'partial']),
  /** Tensors of this checkpoint whose content the other holds, and how many this checkpoint has. */
  equal: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  /** For 'partial': the equal matrices (2-D or more; vectors such as norms and biases can stay at their initial values). */
  tensors: z.array(z.string())
})
export type SameWeights = z.infer<typeof SameWeightsSchema>

/** A same-weights finding in words, for the terminal and the workstation alike. */
export function describeSameWeights(step: number, s: SameWeights): string {
  if (s.kind === 'all') return `step ${step} has the same weights as step ${s.step} (all ${s.total} tensors)`
  const names = s.tensors.length > 3 ? `${s.tensors.slice(0, 3).join(', ')} and ${s.tensors.length - 3} more` : s.tensors.join(', ')
  return `step ${step} shares ${s.equal} of ${s.total} tensors with step ${s.step}, among them ${names}`
}

export const CheckpointDetailSchema = CheckpointSchema.extend({
  /** config.json as the checkpoint holds it. */
  config: z.record(z.string(), jsonValue),
  verifyReport: VerifyReportSchema.nullable(),
  /** Verified checkpoints whose tensors equal this one's (both need a verify report with content hashes). */
  sameWeights: z.array(SameWeightsSchema),
  stores: z.array(ActivationStoreInfoSchema)
})
export type CheckpointDetail = z.infer<typeof CheckpointDetailSchema>

export const SkippedFolderSchema = z.object({ path: z.string(), reason: z.string() })

export const checkpointCalls = {
  'checkpoints.list': { input: none, output: z.array(CheckpointSchema) },
  'checkpoints.get': { input: id, output: CheckpointDetailSchema },
  'checkpoints.register': {
    input: z
      .object({
        folder: pathString,
        /** Tokens per training step, to fill tokens seen (Pythia: 2,097,152). */
        tokensPerStep: z.number().int().positive().max(1e12).optional(),
        /** Step for a single checkpoint folder whose name carries none. */
        step: z.number().int().nonnegative().optional()
      })
      .strict(),
    output: z.object({ added: z.array(CheckpointSchema), skipped: z.array(SkippedFolderSchema) })
  },
  'checkpoints.update': {
    input: z
      .object({
        id: z.number().int().nonnegative(),
        step: z.number().int().nonnegative().optional(),
        tokensSeen: z.number().nonnegative().nullable().optional()
      })
      .strict(),
    output: CheckpointSchema
  },
  'activations.list': { input: none, output: z.array(ActivationStoreInfoSchema) },
  'activations.import': {
    input: z.object({ path: pathString, checkpointId: z.number().int().nonnegative() }).strict(),
    output: ActivationStoreInfoSchema
  }
} as const

// Checkpoints that hold the same weights as another step: compared by per-tensor content hashes (verify.ts),
// so a re-saved file (other header order, metadata or shard split) with the same weights is still caught.
// A public series was found serving its final weights under most of its intermediate step names.
import type { SameWeights, TensorDigest } from '../../shared/api'

export interface VerifiedTensors {
  checkpointId: number
  step: number
  tensors: TensorDigest[]
}

/** A matrix (2-D or more): embeddings, projections. Vectors (norms, biases) can legitimately stay at their initial values. */
const isMatrix = (t: TensorDigest): boolean => t.shape.length >= 2

/**
 * For one checkpoint, every other checkpoint holding its tensors byte for byte. Tensors are matched by content
 * (sha256 of dtype, shape and raw bytes), not by name, so a renamed or re-sharded copy matches too.
 * 'all': the two checkpoints hold the same multiset of tensors. 'partial': at least one matrix of `one` is in
 * the other and not everything is equal; equal vectors alone are not reported. Steps without tensor hashes
 * (never verified, or verified before hashes were kept) are skipped. Sorted by kind ('all' first), then step.
 */
export function sameWeightsAs(one: VerifiedTensors, others: VerifiedTensors[]): SameWeights[] {
  if (one.tensors.length === 0) return []
  const mine = counts(one.tensors)
  const out: SameWeights[] = []
  for (const other of others) {
    if (other.checkpointId === one.checkpointId || other.tensors.length === 0) continue
    const theirs = counts(other.tensors)
    let equal = 0
    for (const [digest, n] of mine) equal += Math.min(n, theirs.get(digest) ?? 0)
    if (equal === 0) continue
    const all = equal === one.tensors.length && one.tensors.length === other.tensors.length
    const matrices = all ? [] : one.tensors.filter((t) => isMatrix(t) && theirs.has(t.sha256)).map((t) => t.name)
    if (!all && matrices.length === 0) continue
    out.push({ checkpointId: other.checkpointId, step: other.step, kind: all ? 'all' : 'partial', equal, total: one.tensors.length, tensors: matrices })
  }
  return out.sort((a, b) => (a.kind === b.kind ? a.step - b.step : a.kind === 'all' ? -1 : 1))
}

function counts(tensors: TensorDigest[]): Map<string, number> {
  const m = new Map<string, number>()
  for (const t of tensors) m.set(t.sha256, (m.get(t.sha256) ?? 0) + 1)
  return m
}

// Carrying labels from a superseded SAE to the SAE that replaced it (retrained or re-imported): the old set's labelled
// features are matched one-to-one to the new SAE's latents by decoder cosine, and each label is copied to its match
// as a new, undoable label event that names where it came from. Nothing is copied without the user asking.
import * as tf from '@tensorflow/tfjs-core'
import { join } from 'node:path'
import type { CarryPreview, FeatureSetInfo, Label, LabelOrigin } from '../../shared/api'
import { UserError } from '../../shared/api'
import { SafetensorsFile } from '../io/safetensors'
import type { Project } from '../project'
import { WEIGHTS_FILE } from '../sae/sae'
import { initBackend } from '../tf/backend'
import { solveAssignment } from './assignment'
import { unitRows } from './geometry/linalg'

/** The largest cosine matrix (labelled features × new latents) matched at once: 512 MiB of float32. */
const MAX_PAIRS = 2 ** 27

function sets(project: Project, fromSetId: number, toSetId?: number): { from: FeatureSetInfo; to: FeatureSetInfo } {
  const from = project.features.set(fromSetId)
  if (from.source !== 'sae' || from.saeId === null) {
    throw new UserError(`"${from.name}" is not the feature set of an SAE in this project; labels are carried between SAEs' sets.`)
  }
  if (toSetId !== undefined) {
    const to = project.features.set(toSetId)
    if (to.source !== 'sae' || to.saeId === null) throw new UserError(`"${to.name}" is not the feature set of an SAE in this project.`)
    if (to.id === from.id) throw new UserError('Choose two different feature sets to carry labels between.')
    return { from, to }
  }
  const old = project.saes.get(from.saeId)
  if (!old) throw new UserError(`The SAE of "${from.name}" is no longer recorded in this project.`)
  const current = project.saes.current(old.checkpointId, old.layer)
  if (!current || current.id === old.id) {
    throw new UserError(`"${from.name}" belongs to the current SAE of step ${old.step}, layer ${old.layer}; there is no newer SAE to carry its labels to.`)
  }
  const to = project.features.setOfSae(current.id)
  if (!to) {
    throw new UserError(`The SAE that replaced "${from.name}" (#${current.id}) has no feature statistics yet: compute them first, then carry the labels.`)
  }
  return { from, to }
}

/** A decoder's rows (all, or the given ones) as unit vectors. */
async function unitDecoderRows(saeDir: string, rows: number[] | null): Promise<{ x: Float32Array; n: number; d: number }> {
  const f = await SafetensorsFile.open(join(saeDir, WEIGHTS_FILE))
  try {
    const [n, d] = f.info('W_dec').shape as [number, number]
    const all = await f.readFloat32('W_dec')
    const take = rows ?? Array.from({ length: n }, (_, i) => i)
    const beyond = take.find((r) => r >= n)
    if (beyond !== undefined) throw new UserError(`${f.file}: feature ${beyond} is beyond the SAE's ${n} latents.`)
    return { x: unitRows(all, d, take), n, d }
  } finally {
    await f.close()
  }
}

/** What matching a carry needs, read from the project on the host: the two sets, their SAEs' folders, who labelled what. */
export interface CarryInput {
  from: FeatureSetInfo
  to: FeatureSetInfo
  fromSae: string
  toSae: string
  /** Each labelled feature of `from` (in feature order) with the annotators of its labels. */
  labelled: [feature: number, annotators: string[]][]
  /** Each feature of `to` that has labels, with their annotators. */
  targetAnnotators: [feature: number, annotators: string[]][]
}

/** The labels of `from` that are carried: every one with a category or a note. */
function carriedLabels(project: Project, from: FeatureSetInfo): Label[] {
  return project.labels.labelsOfSet(from.id).filter((l) => l.category !== null || l.note !== '')
}

function annotatorsByFeature(labels: Label[]): [number, string[]][] {
  const by = new Map<number, string[]>()
  for (const l of labels) by.set(l.feature, [...(by.get(l.feature) ?? []), l.annotator])
  return [...by].sort((a, b) => a[0] - b[0])
}

/**
 * Host side: the sets (default target: the set of the SAE that superseded from's) and what is labelled.
 * Errors: sets that are not SAE sets, no newer SAE, the new SAE without statistics.
 */
export function prepareCarry(project: Project, fromSetId: number, toSetId?: number): CarryInput {
  const { from, to } = sets(project, fromSetId, toSetId)
  const sae = (id: number): string => {
    const s = project.saes.get(id)
    if (!s) throw new UserError(`SAE #${id} is not recorded in this project.`)
    return s.path
  }
  return {
    from,
    to,
    fromSae: sae(from.saeId!),
    toSae: sae(to.saeId!),
    labelled: annotatorsByFeature(carriedLabels(project, from)),
    targetAnnotators: annotatorsByFeature(project.labels.labelsOfSet(to.id))
  }
}

/**
 * The labelled features of `from` matched to latents of `to`: the optimal one-to-one matching by decoder cosine
 * (Hungarian method, analysis/assignment.ts, as the dynamics matching uses), so two old features never share a
 * target. Reads both decoders: run where heavy work runs (the analysis process). Errors: decoders of different
 * widths, more labelled features than new latents, a matching too large to hold.
 */
export async function matchCarry(input: CarryInput): Promise<CarryPreview> {
  const { from, to } = input
  const features = input.labelled.map(([f]) => f)
  if (features.length === 0) return { from, to, method: 'hungarian', pairs: [] }
  await initBackend()
  const old = await unitDecoderRows(input.fromSae, features)
  const now = await unitDecoderRows(input.toSae, null)
  if (old.d !== now.d) throw new UserError(`"${from.name}" has d_in ${old.d} but "${to.name}" has ${now.d}: their features cannot be matched.`)
  const L = features.length
  if (L > now.n) throw new UserError(`"${from.name}" has ${L} labelled features but "${to.name}" only ${now.n} latents; match a subset by annotator.`)
  if (L * now.n > MAX_PAIRS) throw new UserError(`${L} labelled features × ${now.n} latents is too large a matching to hold in memory at once.`)
  const cos = tf.tidy(() => tf.matMul(tf.tensor2d(old.x, [L, old.d]), tf.tensor2d(now.x, [now.n, now.d]), false, true))
  const sim = (await cos.data()) as Float32Array
  cos.dispose()
  const cost = Float32Array.from(sim, (c) => -c)
  const col = solveAssignment(cost, L, now.n)
  const targets = new Map(input.targetAnnotators.map(([f, a]) => [f, new Set(a)]))
  const pairs = input.labelled.map(([f, annotators], i) => {
    const target = col[i]!
    return {
      fromFeature: f,
      toFeature: target,
      cosine: sim[i * now.n + target]!,
      labels: annotators.length,
      targetLabels: annotators.filter((a) => targets.get(target)?.has(a)).length
    }
  })
  return { from, to, method: 'hungarian', pairs }
}

/** Copies every label whose match has cosine ≥ minCosine (host side, one transaction); labels the target already has from that annotator stay. */
export function applyCarry(
  project: Project,
  preview: CarryPreview,
  minCosine: number
): { carried: number; keptExisting: number; belowThreshold: number; toSetId: number } {
  const byFeature = new Map(preview.pairs.map((p) => [p.fromFeature, p]))
  const carries: { label: Label; toFeature: number; origin: LabelOrigin }[] = []
  let belowThreshold = 0
  for (const label of carriedLabels(project, preview.from)) {
    const pair = byFeature.get(label.feature)
    if (!pair || pair.toFeature === null || pair.cosine === null || pair.cosine < minCosine) {
      belowThreshold++
      continue
    }
    carries.push({
      label,
      toFeature: pair.toFeature,
      origin: { setId: preview.from.id, setName: preview.from.name, feature: label.feature, saeId: preview.from.saeId, cosine: pair.cosine }
    })
  }
  const { carried, keptExisting } = project.labels.carryLabels(preview.to.id, carries)
  return { carried, keptExisting, belowThreshold, toSetId: preview.to.id }
}

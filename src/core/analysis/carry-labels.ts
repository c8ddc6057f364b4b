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

/** The largest cosine matrix (labelled features × new latents) matched at once: 512 MiB of float32. */
const MAX_PAIRS = 2 ** 27

interface CarryPlan {
  preview: CarryPreview
  labels: Label[]
}

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

async function unitDecoderRows(project: Project, saeId: number, rows: number[] | null): Promise<{ x: Float32Array; n: number; d: number }> {
  const sae = project.saes.get(saeId)
  if (!sae) throw new UserError(`SAE #${saeId} is not recorded in this project.`)
  const f = await SafetensorsFile.open(join(sae.path, WEIGHTS_FILE))
  try {
    const [n, d] = f.info('W_dec').shape as [number, number]
    const all = await f.readFloat32('W_dec')
    const take = rows ?? Array.from({ length: n }, (_, i) => i)
    const x = new Float32Array(take.length * d)
    take.forEach((r, i) => {
      if (r >= n) throw new UserError(`${f.file}: feature ${r} is beyond the SAE's ${n} latents.`)
      let norm = 0
      for (let j = 0; j < d; j++) norm += all[r * d + j]! ** 2
      const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0
      for (let j = 0; j < d; j++) x[i * d + j] = all[r * d + j]! * inv
    })
    return { x, n, d }
  } finally {
    await f.close()
  }
}

/**
 * The labelled features of `from` matched to latents of `to` (default: the set of the SAE that superseded from's).
 * The assignment is the optimal one-to-one matching of the labelled features to the new latents by decoder cosine
 * (Hungarian method, analysis/assignment.ts, as the dynamics matching uses), so two old features never share a target.
 * Errors: sets that are not SAE sets, no newer SAE, the new SAE without statistics, decoders of different widths.
 */
async function plan(project: Project, fromSetId: number, toSetId?: number): Promise<CarryPlan> {
  const { from, to } = sets(project, fromSetId, toSetId)
  const labels = project.features.labelsOfSet(from.id).filter((l) => l.category !== null || l.note !== '')
  const features = [...new Set(labels.map((l) => l.feature))].sort((a, b) => a - b)
  const targetLabels = new Map<number, Set<string>>()
  if (features.length === 0) return { preview: { from, to, method: 'hungarian', pairs: [] }, labels }
  await initBackend()
  const old = await unitDecoderRows(project, from.saeId!, features)
  const now = await unitDecoderRows(project, to.saeId!, null)
  if (old.d !== now.d) throw new UserError(`"${from.name}" has d_in ${old.d} but "${to.name}" has ${now.d}: their features cannot be matched.`)
  const L = features.length
  if (L > now.n) throw new UserError(`"${from.name}" has ${L} labelled features but "${to.name}" only ${now.n} latents; match a subset by annotator.`)
  if (L * now.n > MAX_PAIRS) throw new UserError(`${L} labelled features × ${now.n} latents is too large a matching to hold in memory at once.`)
  const cos = tf.tidy(() => tf.matMul(tf.tensor2d(old.x, [L, old.d]), tf.tensor2d(now.x, [now.n, now.d]), false, true))
  const sim = (await cos.data()) as Float32Array
  cos.dispose()
  const cost = Float32Array.from(sim, (c) => -c)
  const col = solveAssignment(cost, L, now.n)
  for (const l of project.features.labelsOfSet(to.id)) {
    const s = targetLabels.get(l.feature) ?? new Set<string>()
    s.add(l.annotator)
    targetLabels.set(l.feature, s)
  }
  const pairs = features.map((f, i) => {
    const target = col[i]!
    const mine = labels.filter((l) => l.feature === f)
    return {
      fromFeature: f,
      toFeature: target,
      cosine: sim[i * now.n + target]!,
      labels: mine.length,
      targetLabels: mine.filter((l) => targetLabels.get(target)?.has(l.annotator)).length
    }
  })
  return { preview: { from, to, method: 'hungarian', pairs }, labels }
}

export async function carryPreview(project: Project, fromSetId: number, toSetId?: number): Promise<CarryPreview> {
  return (await plan(project, fromSetId, toSetId)).preview
}

/** Copies every label whose match has cosine ≥ minCosine; labels the target already has from that annotator stay. */
export async function carryLabels(
  project: Project,
  fromSetId: number,
  toSetId: number | undefined,
  minCosine: number
): Promise<{ carried: number; keptExisting: number; belowThreshold: number; toSetId: number }> {
  const { preview, labels } = await plan(project, fromSetId, toSetId)
  const byFeature = new Map(preview.pairs.map((p) => [p.fromFeature, p]))
  const carries: { label: Label; toFeature: number; origin: LabelOrigin }[] = []
  let belowThreshold = 0
  for (const label of labels) {
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
  const { carried, keptExisting } = project.features.carryLabels(preview.to.id, carries)
  return { carried, keptExisting, belowThreshold, toSetId: preview.to.id }
}

// What the Dynamics view asks of a project's SAE series at one layer: drift histograms per checkpoint, one
// feature's drift curve, PCA trajectory and formation curve, and formation steps by granularity label.
import { join } from 'node:path'
import type { DynamicsFeature, DynamicsOverview, FormationByLabel, FormationCurves } from '../../shared/api'
import { UserError } from '../../shared/api'
import { SafetensorsFile } from '../io/safetensors'
import type { Project } from '../project'
import { WEIGHTS_FILE } from '../sae/sae'
import { computeDrift, type DriftResult } from './drift'
import { computeFormation } from './formation'
import { layerSaes, layerSeries, stepsWithoutActivations } from './layer-series'
import { initBackend } from '../tf/backend'

const never = { signal: new AbortController().signal, progress: () => {} }
const driftCache = new Map<string, DriftResult>()

async function drift(project: Project, layer: number): Promise<{ r: DriftResult; warm: boolean; steps: number[] }> {
  await initBackend()
  const saes = layerSaes(project, layer)
  const warm = saes.slice(1).every((s) => s.warmStarted)
  const key = JSON.stringify([saes.map((s) => [s.path, s.createdAt]), warm])
  let r = driftCache.get(key)
  if (!r) {
    r = await computeDrift(saes.map((s) => s.path), { match: !warm }, never)
    driftCache.set(key, r)
  }
  return { r, warm, steps: saes.map((s) => s.step) }
}

export async function dynamicsOverview(project: Project, layer: number): Promise<DynamicsOverview> {
  const { r, warm, steps } = await drift(project, layer)
  const T = steps.length
  // Population histograms of the cosine to the final SAE: 100 bins on [-1, 1].
  const histograms = Array.from({ length: T }, (_, t) => {
    const h = new Array<number>(100).fill(0)
    for (let i = 0; i < r.n; i++) h[Math.min(99, Math.max(0, Math.floor(((r.cosToFinal[t * r.n + i]! + 1) / 2) * 100)))]!++
    return h
  })
  const totalDrift = Array.from({ length: r.n }, (_, i) => 1 - r.cosToFinal[i]!)
  return { layer, steps, n: r.n, warmStarted: warm, matchMethod: r.matchMethod, histograms, totalDrift }
}

/** The top two principal components of a few points (rows of X, T × d), by power iteration on the Gram matrix. */
export function pca2(X: Float64Array[]): [number, number][] {
  const T = X.length
  const d = X[0]!.length
  const mean = new Float64Array(d)
  for (const x of X) for (let j = 0; j < d; j++) mean[j]! += x[j]! / T
  const C = X.map((x) => x.map((v, j) => v - mean[j]!))
  const G = Array.from({ length: T }, (_, a) => Array.from({ length: T }, (_, b) => C[a]!.reduce((s, v, j) => s + v * C[b]![j]!, 0)))
  const coords: [number, number][] = Array.from({ length: T }, () => [0, 0])
  for (let comp = 0; comp < 2; comp++) {
    let v = Array.from({ length: T }, (_, i) => Math.sin(i + 1 + comp))
    let lambda = 0
    for (let it = 0; it < 500; it++) {
      const w = G.map((row) => row.reduce((s, g, j) => s + g * v[j]!, 0))
      const norm = Math.hypot(...w)
      if (norm === 0) break
      lambda = norm
      v = w.map((x) => x / norm)
    }
    // Coordinates along the component: u = v·√λ; then deflate.
    for (let t = 0; t < T; t++) coords[t]![comp] = v[t]! * Math.sqrt(lambda)
    for (let a = 0; a < T; a++) for (let b = 0; b < T; b++) G[a]![b]! -= lambda * v[a]! * v[b]!
  }
  return coords
}

export async function dynamicsFeature(project: Project, layer: number, feature: number, threshold?: number): Promise<DynamicsFeature> {
  const { r, steps } = await drift(project, layer)
  if (feature >= r.n) throw new UserError(`Feature ${feature} does not exist: the SAEs have ${r.n} latents.`)
  const rows: Float64Array[] = []
  for (const sae of layerSaes(project, layer)) {
    const f = await SafetensorsFile.open(join(sae.path, WEIGHTS_FILE))
    try {
      rows.push(Float64Array.from(await f.readFloat32Rows('W_dec', feature, 1)))
    } finally {
      await f.close()
    }
  }
  // Drift and the trajectory need the SAEs alone; formation needs every step's activations.
  let formation: DynamicsFeature['formation'] = null
  let formationUnavailable: string | null = null
  if (stepsWithoutActivations(project, layer).length === 0) {
    const r = await computeFormation(layerSeries(project, layer).checkpoints, { features: [feature], threshold })
    formation = { threshold: r.threshold, m: r.features[0]!.m, formationStep: r.features[0]!.formationStep }
  } else {
    try {
      layerSeries(project, layer)
    } catch (err) {
      if (!(err instanceof UserError)) throw err
      formationUnavailable = err.message
    }
  }
  const sets = project.features.currentSets().filter((s) => s.layer === layer && s.step !== null).map((s) => ({ step: s.step!, setId: s.id }))
  const T = steps.length
  return {
    layer,
    feature,
    steps,
    cosToFinal: Array.from({ length: T }, (_, t) => r.cosToFinal[t * r.n + feature]!),
    cosToPrevious: Array.from({ length: T }, (_, t) => r.cosToPrevious[t * r.n + feature]!),
    trajectory: pca2(rows),
    formation,
    formationUnavailable,
    sets
  }
}

/** M_i(t) of a few features side by side (the SAE variant), for comparing when they form. */
export async function formationCurves(project: Project, layer: number, features: number[], threshold?: number): Promise<FormationCurves> {
  await initBackend()
  const { checkpoints } = layerSeries(project, layer)
  const r = await computeFormation(checkpoints, { features: [...new Set(features)], threshold })
  return { layer, steps: r.steps, threshold: r.threshold, curves: r.features.map((f) => ({ feature: f.feature, m: f.m.sae, formationStep: f.formationStep.sae })) }
}

/**
 * Formation steps of every labelled feature, by label. In a warm-started series latent i is feature i at every
 * checkpoint, so a label given at any checkpoint of the layer counts (each annotator's latest one per feature);
 * independent SAEs are matched to the final one, so only the final checkpoint's labels apply. With an annotator,
 * that annotator's labels; without, each feature's majority label. The dynamics job's stored steps are used when it
 * ran on this series with this threshold.
 */
export async function formationByLabel(project: Project, layer: number, threshold = 0.5, annotator?: string): Promise<FormationByLabel> {
  await initBackend()
  const { saes, checkpoints } = layerSeries(project, layer)
  const warmStarted = saes.slice(1).every((s) => s.warmStarted)
  const sets = project.features.currentSets().filter((s) => s.source === 'sae' && s.layer === layer && s.step !== null).sort((a, b) => a.step! - b.step!)
  if (!sets.length) throw new UserError(`No feature statistics at layer ${layer} yet; compute them first.`)
  const sources = warmStarted ? sets : sets.slice(-1)
  // feature → annotator → category, later checkpoints overwriting earlier ones.
  const byFeature = new Map<number, Map<string, string>>()
  const annotators = new Set<string>()
  const contributing = new Set<number>()
  for (const set of sources) {
    for (const l of project.features.allLabels(set.id)) {
      annotators.add(l.annotator)
      if (annotator !== undefined && l.annotator !== annotator) continue
      const mine = byFeature.get(l.feature) ?? new Map<string, string>()
      mine.set(l.annotator, l.category!)
      byFeature.set(l.feature, mine)
      contributing.add(set.id)
    }
  }
  const label = new Map(
    [...byFeature].map(([f, byAnnotator]) => {
      const votes = new Map<string, number>()
      for (const c of byAnnotator.values()) votes.set(c, (votes.get(c) ?? 0) + 1)
      return [f, [...votes.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0]] as const
    })
  )
  const features = [...label.keys()].sort((a, b) => a - b)
  const steps = checkpoints.map((c) => c.step)
  const counts: Record<string, Record<string, number>> = {}
  const run = project.dynamics.run(layer)
  const stored = run !== null && run.threshold === threshold && JSON.stringify(run.steps) === JSON.stringify(steps)
  let formed: Map<number, number | null>
  if (stored) {
    formed = new Map(project.dynamics.rows(layer).map((r) => [r.feature, r.formationStep.sae]))
  } else {
    formed = new Map()
    if (features.length) for (const f of (await computeFormation(checkpoints, { features, threshold })).features) formed.set(f.feature, f.formationStep.sae)
  }
  for (const f of features) {
    const cat = label.get(f)!
    const step = formed.get(f) ?? null
    const key = step === null ? 'never' : String(step)
    counts[cat] ??= {}
    counts[cat][key] = (counts[cat][key] ?? 0) + 1
  }
  return {
    layer, steps, labelledFeatures: features.length, stored, counts, warmStarted, annotator: annotator ?? null,
    annotators: [...annotators].sort(), labelSteps: sources.filter((s) => contributing.has(s.id)).map((s) => s.step!)
  }
}

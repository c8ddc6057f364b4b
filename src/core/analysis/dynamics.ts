// What the Dynamics view asks of a project's SAE series at one layer: drift histograms per checkpoint, one
// feature's drift curve, PCA trajectory and formation curve, and formation steps by granularity label.
// Each query is split like a job: the host resolves the project into plain inputs (prepare, quick), the
// analysis process computes (run: decoders, activations, tfjs), with drift kept in its bounded cache.
import type { DynamicsFeature } from '../../shared/api'
import { UserError } from '../../shared/api'
import type { Project } from '../project'
import type { BackendName } from '../tf/backend'
import { majorityLabels } from '../store/labels'
import type { FormationCheckpoint } from './formation'
import { layerSaes, layerSeries, stepsWithoutActivations } from './layer-series'
import type { AnalysisQuery, QueryContext } from './queries'

/** A layer's SAEs as drift needs them: in step order, each with what makes its cached drift stale. */
interface SeriesSae {
  path: string
  step: number
  createdAt: string
  warmStarted: boolean
}

function seriesSaes(project: Project, layer: number): SeriesSae[] {
  return layerSaes(project, layer).map((s) => ({ path: s.path, step: s.step, createdAt: s.createdAt, warmStarted: s.warmStarted }))
}

/** Drift of the series, from the cache when the same SAEs were measured before (matching when not warm-started). */
async function drift(saes: SeriesSae[], ctx: QueryContext) {
  const warm = saes.slice(1).every((s) => s.warmStarted)
  const key = JSON.stringify([saes.map((s) => [s.path, s.createdAt]), warm])
  const r = await ctx.drift.get(
    key,
    async (signal) => {
      const { computeDrift } = await import('./drift')
      const { initBackend } = await import('../tf/backend')
      await initBackend()
      return computeDrift(
        saes.map((s) => s.path),
        { match: !warm },
        { signal, progress: () => {} }
      )
    },
    ctx.signal
  )
  return { r, warm, steps: saes.map((s) => s.step) }
}

async function formation(series: FormationCheckpoint[], features: number[], threshold: number | undefined, signal: AbortSignal, backend?: BackendName) {
  const { computeFormation } = await import('./formation')
  const { initBackend } = await import('../tf/backend')
  await initBackend(backend)
  return computeFormation(series, { features, threshold, signal })
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

export const overviewQuery: AnalysisQuery<'dynamics.overview', { layer: number; saes: SeriesSae[] }> = {
  prepare: (project, { layer }) => ({ layer, saes: seriesSaes(project, layer) }),
  async run({ layer, saes }, ctx) {
    const { r, warm, steps } = await drift(saes, ctx)
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
}

interface FeatureInput {
  layer: number
  feature: number
  threshold: number | undefined
  saes: SeriesSae[]
  /** Null when some step has no activations: formationUnavailable says why. */
  series: FormationCheckpoint[] | null
  formationUnavailable: string | null
  sets: DynamicsFeature['sets']
}

export const featureQuery: AnalysisQuery<'dynamics.feature', FeatureInput> = {
  prepare(project, { layer, feature, threshold }) {
    // Drift and the trajectory need the SAEs alone; formation needs every step's activations.
    let series: FormationCheckpoint[] | null = null
    let formationUnavailable: string | null = null
    try {
      series = layerSeries(project, layer).checkpoints
    } catch (err) {
      if (!(err instanceof UserError) || stepsWithoutActivations(project, layer).length === 0) throw err
      formationUnavailable = err.message
    }
    const sets = project.features
      .currentSets()
      .filter((s) => s.layer === layer && s.step !== null)
      .map((s) => ({ step: s.step!, setId: s.id }))
    return { layer, feature, threshold, saes: seriesSaes(project, layer), series, formationUnavailable, sets }
  },
  async run(input, ctx) {
    const { layer, feature, saes } = input
    const { r, steps } = await drift(saes, ctx)
    if (feature >= r.n) throw new UserError(`Feature ${feature} does not exist: the SAEs have ${r.n} latents.`)
    const { decoderRow } = await import('./drift')
    const rows: Float64Array[] = []
    for (const sae of saes) rows.push(Float64Array.from(await decoderRow(sae.path, feature)))
    let formationCurves: DynamicsFeature['formation'] = null
    if (input.series) {
      const f = await formation(input.series, [feature], input.threshold, ctx.signal)
      formationCurves = { threshold: f.threshold, m: f.features[0]!.m, formationStep: f.features[0]!.formationStep }
    }
    const T = steps.length
    return {
      layer,
      feature,
      steps,
      cosToFinal: Array.from({ length: T }, (_, t) => r.cosToFinal[t * r.n + feature]!),
      cosToPrevious: Array.from({ length: T }, (_, t) => r.cosToPrevious[t * r.n + feature]!),
      trajectory: pca2(rows),
      formation: formationCurves,
      formationUnavailable: input.formationUnavailable,
      sets: input.sets
    }
  }
}

interface SeriesFeaturesInput {
  layer: number
  series: FormationCheckpoint[]
  features: number[]
  threshold: number | undefined
  backend?: BackendName
}

const seriesFeatures = (project: Project, layer: number, features: number[], threshold: number | undefined, backend?: BackendName): SeriesFeaturesInput => ({
  layer,
  series: layerSeries(project, layer).checkpoints,
  features: [...new Set(features)],
  threshold,
  backend
})

/** M_i(t) of a few features side by side (the SAE variant), for comparing when they form. */
export const formationCurvesQuery: AnalysisQuery<'dynamics.formationCurves', SeriesFeaturesInput> = {
  prepare: (project, { layer, features, threshold }) => seriesFeatures(project, layer, features, threshold),
  async run({ layer, series, features, threshold }, ctx) {
    const r = await formation(series, features, threshold, ctx.signal)
    return {
      layer,
      steps: r.steps,
      threshold: r.threshold,
      curves: r.features.map((f) => ({ feature: f.feature, m: f.m.sae, formationStep: f.formationStep.sae }))
    }
  }
}

/** Every variant of M_i(t), with the top positions and the random baseline (the CLI's formation command). */
export const formationQuery: AnalysisQuery<'dynamics.formation', SeriesFeaturesInput> = {
  prepare: (project, { layer, features, threshold, backend }) => seriesFeatures(project, layer, features, threshold, backend),
  async run({ layer, series, features, threshold, backend }, ctx) {
    return { layer, ...(await formation(series, features, threshold, ctx.signal, backend)) }
  }
}

interface ByLabelInput {
  layer: number
  series: FormationCheckpoint[]
  threshold: number
  /** Feature → its label (the annotator's, or the majority of each annotator's latest) over the checkpoints that count. */
  labels: [number, string][]
  /** Formation steps from the stored dynamics run when it matches this series and threshold; else null (computed). */
  stored: [number, number | null][] | null
  /** Whether labels of every checkpoint counted (a warm-started series), else only the final checkpoint's. */
  warmStarted: boolean
  annotator: string | null
  annotators: string[]
  labelSteps: number[]
}

/**
 * Formation steps of every labelled feature, by label. In a warm-started series latent i is feature i at every
 * checkpoint, so a label given at any checkpoint of the layer counts (each annotator's latest one per feature);
 * independent SAEs are matched to the final one, so only the final checkpoint's labels apply. With an annotator,
 * that annotator's labels; without, each feature's majority label. The dynamics job's stored steps are used when it
 * ran on this series with this threshold.
 */
export const formationByLabelQuery: AnalysisQuery<'dynamics.formationByLabel', ByLabelInput> = {
  prepare(project, { layer, threshold = 0.5, annotator }) {
    const { saes, checkpoints: series } = layerSeries(project, layer)
    const warmStarted = saes.slice(1).every((s) => s.warmStarted)
    const sets = project.features
      .currentSets()
      .filter((s) => s.source === 'sae' && s.layer === layer && s.step !== null)
      .sort((a, b) => a.step! - b.step!)
    if (!sets.length) throw new UserError(`No feature statistics at layer ${layer} yet; compute them first.`)
    const sources = warmStarted ? sets : sets.slice(-1)
    // feature → annotator → category, later checkpoints overwriting earlier ones.
    const byFeature = new Map<number, Map<string, string>>()
    const annotators = new Set<string>()
    const contributing = new Set<number>()
    for (const set of sources) {
      for (const l of project.labels.allLabels(set.id)) {
        annotators.add(l.annotator)
        if (annotator !== undefined && l.annotator !== annotator) continue
        const mine = byFeature.get(l.feature) ?? new Map<string, string>()
        mine.set(l.annotator, l.category!)
        byFeature.set(l.feature, mine)
        contributing.add(set.id)
      }
    }
    const latest = [...byFeature].flatMap(([feature, mine]) => [...mine].map(([who, category]) => ({ feature, annotator: who, category })))
    const labels = [...majorityLabels(latest)]
    const run = project.dynamics.run(layer)
    const steps = series.map((c) => c.step)
    const fresh = run !== null && run.threshold === threshold && JSON.stringify(run.steps) === JSON.stringify(steps)
    const stored = fresh ? project.dynamics.rows(layer).map((r): [number, number | null] => [r.feature, r.formationStep.sae]) : null
    return {
      layer,
      series,
      threshold,
      labels,
      stored,
      warmStarted,
      annotator: annotator ?? null,
      annotators: [...annotators].sort(),
      labelSteps: sources.filter((s) => contributing.has(s.id)).map((s) => s.step!)
    }
  },
  async run({ layer, series, threshold, labels, stored, warmStarted, annotator, annotators, labelSteps }, ctx) {
    const label = new Map(labels)
    const features = [...label.keys()].sort((a, b) => a - b)
    let formed: Map<number, number | null>
    if (stored) formed = new Map(stored)
    else {
      formed = new Map()
      if (features.length) for (const f of (await formation(series, features, threshold, ctx.signal)).features) formed.set(f.feature, f.formationStep.sae)
    }
    const counts: Record<string, Record<string, number>> = {}
    for (const f of features) {
      const cat = label.get(f)!
      const step = formed.get(f) ?? null
      const key = step === null ? 'never' : String(step)
      counts[cat] ??= {}
      counts[cat][key] = (counts[cat][key] ?? 0) + 1
    }
    return {
      layer,
      steps: series.map((c) => c.step),
      labelledFeatures: features.length,
      stored: stored !== null,
      counts,
      warmStarted,
      annotator,
      annotators,
      labelSteps
    }
  }
}

// The dynamics job: drift (with matching when the series was not warm-started) and formation for every
// feature of a layer's SAE series, stored per feature so the feature list can sort by formation step and
// total drift, and the formation-by-label chart needs no recomputation.
import type { FeatureDynamicsRow, JobRequest } from '../../shared/api'
import type { JobKindDefinition } from '../jobs/job'
import type { NewDynamicsRun } from '../store/dynamics'
import type { FormationCheckpoint } from './formation'
import { layerSeries } from './layer-series'

type DynamicsRequest = Extract<JobRequest, { kind: 'dynamics' }>

interface DynamicsInput {
  request: DynamicsRequest
  series: FormationCheckpoint[]
  warmStarted: boolean
}

interface DynamicsOutput extends Omit<NewDynamicsRun, 'jobId'> {
  rows: FeatureDynamicsRow[]
}

export const dynamicsJob: JobKindDefinition<DynamicsRequest, DynamicsInput, DynamicsOutput> = {
  kind: 'dynamics',
  prepare(project, request) {
    const { saes, checkpoints: series } = layerSeries(project, request.layer)
    return { request, series, warmStarted: saes.slice(1).every((s) => s.warmStarted) }
  },
  replaces(project, request) {
    const run = project.dynamics.run(request.layer)
    return run ? [`the drift and formation of layer ${request.layer} computed ${run.createdAt.slice(0, 16).replace('T', ' ')} (labels are not touched)`] : []
  },
  async run(input, ctx) {
    const { computeDrift } = await import('./drift')
    const { computeFormation } = await import('./formation')
    const { initBackend } = await import('../tf/backend')
    await initBackend(input.request.backend)
    const { series, warmStarted } = input
    const T = series.length
    const drift = await computeDrift(
      series.map((c) => c.sae),
      { match: !warmStarted },
      { signal: ctx.signal, progress: (p) => ctx.progress({ ...p, fraction: 0.2 * p.fraction, message: `drift: ${p.message ?? ''}` }) }
    )
    const n = drift.n
    const started = Date.now()
    const formation = await computeFormation(series, {
      features: Array.from({ length: n }, (_, i) => i),
      threshold: input.request.threshold,
      signal: ctx.signal,
      onProgress: (f, message) => {
        const fraction = 0.2 + 0.8 * f
        const elapsed = (Date.now() - started) / 1000
        ctx.progress({
          fraction,
          rate: null,
          rateUnit: null,
          etaSeconds: f > 0 ? (elapsed * (1 - f)) / f : null,
          message: `formation of ${n} features: ${message}`
        })
      }
    })
    // Without warm starts feature i is not latent i across SAEs: drift is measured along the matching.
    const cos = drift.matchCos ?? drift.cosToFinal
    const rows = formation.features.map((f) => {
      let minPrev = 1
      for (let t = 1; t < T; t++) minPrev = Math.min(minPrev, drift.cosToPrevious[t * n + f.feature]!)
      return { feature: f.feature, totalDrift: 1 - cos[f.feature]!, minCosToPrevious: minPrev, formationStep: f.formationStep, mFinal: f.m.sae.at(-1) ?? null }
    })
    return { layer: input.request.layer, steps: formation.steps, n, threshold: formation.threshold, warmStarted, matchMethod: drift.matchMethod, rows }
  },
  apply(project, out) {
    const { rows, ...run } = out
    project.dynamics.save({ ...run, jobId: null }, rows)
    const formed = out.rows.filter((r) => r.formationStep.sae !== null).length
    return { layer: out.layer, features: out.n, formed, threshold: out.threshold, matchMethod: out.matchMethod }
  }
}

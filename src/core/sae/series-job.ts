// The SAE-Track series job: one SAE per checkpoint in step order, the first from scratch, each next one
// warm-started from the previous (all parameters, b_dec included) with the preset's fine-tuning settings.
// Resumes at the SAE and step it reached: finished SAEs are kept, a partial one continues from its state.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { JobRequest, SaeMetric } from '../../shared/api'
import { UserError } from '../../shared/api'
import type { JobKindDefinition } from '../jobs/job'
import type { Project } from '../project'
import { PRESET_INFO, type TrainOverrides } from './config'
import { isCompleteSae, Sae } from './sae'

type SeriesRequest = Extract<JobRequest, { kind: 'train-series' }>

interface SeriesItem {
  checkpointId: number
  step: number
  activations: string
  out: string
  /** The checkpoint's current SAE, kept as it is (no retrain asked). */
  kept: boolean
}

interface SeriesInput {
  request: SeriesRequest
  items: SeriesItem[]
}

interface SeriesOutput {
  backend: string
  saes: { checkpointId: number; path: string; warmStarted: boolean }[]
  /** Steps whose current SAE was kept because the request did not ask to retrain. */
  kept: number[]
}

export function saeDir(project: Project, step: number, layer: number): string {
  return join(project.artifactsDir, 'saes', `step${step}`, `layer${layer}`)
}

export const trainSeriesJob: JobKindDefinition<SeriesRequest, SeriesInput, SeriesOutput> = {
  kind: 'train-series',
  prepare(project, request) {
    const stores = project.activations.list().filter((s) => s.layer === request.layer)
    const chosen = request.checkpointIds.length ? stores.filter((s) => request.checkpointIds.includes(s.checkpointId)) : stores
    if (chosen.length === 0) {
      throw new UserError(
        `No checkpoint has layer-${request.layer} activations${request.checkpointIds.length ? ' among those chosen' : ''}; harvest that layer first.`
      )
    }
    const missing = request.checkpointIds.filter((id) => !stores.some((s) => s.checkpointId === id))
    if (missing.length) {
      const steps = project.checkpoints
        .list()
        .filter((c) => missing.includes(c.id))
        .map((c) => c.step)
      throw new UserError(`Steps ${steps.join(', ')} have no layer-${request.layer} activations; harvest them first.`)
    }
    const d = new Set(chosen.map((s) => s.d))
    if (d.size > 1) throw new UserError(`The checkpoints' activations have different widths (${[...d].join(', ')}); a warm-started series needs one d.`)
    return {
      request,
      items: [...chosen]
        .sort((a, b) => a.step - b.step)
        .map((s) => {
          const current = project.saes.current(s.checkpointId, request.layer)
          // Kept unless retraining; a retrained SAE gets a folder of its own, so the old one stays with its labels.
          const out = current && !request.retrain ? current.path : project.saes.freshPath(saeDir(project, s.step, request.layer))
          return { checkpointId: s.checkpointId, step: s.step, activations: s.path, out, kept: current !== null && !request.retrain }
        })
    }
  },
  replaces(project, request) {
    if (!request.retrain) return []
    const current = project.activations
      .list()
      .filter((s) => s.layer === request.layer && (request.checkpointIds.length === 0 || request.checkpointIds.includes(s.checkpointId)))
      .map((s) => project.saes.current(s.checkpointId, request.layer))
      .filter((s) => s !== null)
    if (current.length === 0) return []
    const withSets = current.filter((s) => project.features.setOfSae(s.id))
    return [
      `the current layer-${request.layer} SAEs of steps ${current.map((s) => s.step).join(', ')}: they are kept as superseded` +
        (withSets.length ? `, with their ${withSets.length} feature sets and every label on them` : '') +
        ', and labels can be carried to the new SAEs afterwards'
    ]
  },
  async run(input, ctx) {
    const { trainSae } = await import('./train')
    const { currentBackend } = await import('../tf/backend')
    const r = input.request
    const info = PRESET_INFO[r.preset]
    const preset = info.fineTune ?? { lrFactor: 1, warmupSteps: info.config.warmupSteps, tokenFraction: 1 }
    const fine = { ...preset, tokenFraction: r.warmTokenFraction ?? preset.tokenFraction, lrFactor: r.warmLrFactor ?? preset.lrFactor }
    const base: TrainOverrides = {
      n: r.n,
      k: r.k,
      tokens: r.tokens,
      batchSize: r.batchSize,
      lr: r.lr,
      warmupSteps: r.warmupSteps,
      seed: r.seed,
      inputScaling: r.inputScaling,
      auxK: r.auxK,
      evalRows: r.evalRows,
      logEvery: r.logEvery,
      checkpointEvery: r.checkpointEvery
    }
    const saes: SeriesOutput['saes'] = []
    let previous: string | null = null
    let firstTokens: number | null = null
    const n = input.items.length
    for (const [i, item] of input.items.entries()) {
      const warm = previous !== null
      if (isCompleteSae(item.out)) {
        const done = await Sae.load(item.out)
        firstTokens ??= done.featuretrace.tokens_seen ?? null
        // A kept SAE is already recorded as it is; a complete unrecorded one is an interrupted run's work.
        if (!item.kept) saes.push({ checkpointId: item.checkpointId, path: item.out, warmStarted: warm })
        previous = item.out
        continue
      }
      let overrides = base
      if (warm) {
        const firstCfg = (await Sae.load(input.items[0]!.out)).featuretrace.config
        const lr = (r.lr ?? firstCfg?.lr ?? info.config.lr) * fine.lrFactor
        const tokens = Math.max(1, Math.round((firstTokens ?? r.tokens ?? firstCfg?.tokens ?? 1) * fine.tokenFraction))
        overrides = { ...base, lr, warmupSteps: fine.warmupSteps, tokens }
      }
      const result = await trainSae(
        {
          activations: item.activations,
          out: item.out,
          preset: r.preset,
          init: previous ?? undefined,
          backend: r.backend,
          overrides,
          meta: { checkpointStep: item.step, layer: r.layer, ...(r.modelName !== undefined ? { modelName: r.modelName } : {}) },
          onMetric: (m) => ctx.emit?.({ ...m, checkpointId: item.checkpointId, layer: r.layer } satisfies SaeMetric)
        },
        {
          signal: ctx.signal,
          progress: (p) =>
            ctx.progress({
              ...p,
              fraction: (i + p.fraction) / n,
              message: `step ${item.step} (${i + 1}/${n}${warm ? ', warm start' : ''}): ${p.message ?? ''}`
            })
        }
      )
      firstTokens ??= result.tokens
      saes.push({ checkpointId: item.checkpointId, path: item.out, warmStarted: warm })
      previous = item.out
    }
    const b = currentBackend()
    return { backend: b ? `${b.name} (${b.reason})` : 'unknown', saes, kept: input.items.filter((x) => x.kept).map((x) => x.step) }
  },
  onEvent(project, payload) {
    const m = payload as SaeMetric
    project.saes.addMetric(m)
    return { event: 'sae.metric', payload: m }
  },
  apply(project, output) {
    return recordSaes(project, output)
  }
}

function recordSaes(project: Project, output: SeriesOutput): { saes: number; backend: string; kept?: string } {
  for (const s of output.saes) {
    const cfg = JSON.parse(readFileSync(join(s.path, 'cfg.json'), 'utf8')) as {
      d_in: number
      d_sae: number
      k: number
      featuretrace: { preset: string; tokens_seen: number; steps: number; layer: number; metrics: Record<string, number> | null }
    }
    const m = cfg.featuretrace.metrics ?? {}
    project.saes.upsert({
      checkpointId: s.checkpointId,
      layer: cfg.featuretrace.layer,
      path: s.path,
      preset: cfg.featuretrace.preset,
      d: cfg.d_in,
      n: cfg.d_sae,
      k: cfg.k,
      warmStarted: s.warmStarted,
      tokens: cfg.featuretrace.tokens_seen,
      steps: cfg.featuretrace.steps,
      fvu: m.fvu ?? null,
      explainedVariance: m.explained_variance ?? null,
      cosine: m.cosine ?? null,
      l0: m.l0 ?? null,
      deadFraction: m.dead_fraction ?? null,
      backend: output.backend
    })
  }
  const kept = output.kept ?? []
  return {
    saes: output.saes.length,
    backend: output.backend,
    ...(kept.length ? { kept: `existing SAEs kept at steps ${kept.join(', ')} (retrain to replace them; labels are kept either way)` } : {})
  }
}

// The harvest job: one layer's activations for every chosen checkpoint of a project, in step order.
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { JobRequest } from '../../shared/api'
import { UserError } from '../../shared/api'
import type { JobContext, JobKindDefinition } from '../jobs/job'
import type { Project } from '../project'
import { ActivationStore } from '../io/activation-store'
import { currentBackend } from '../tf/backend'
import { isSaeOnly, saeOnlyRefusal } from '../checkpoints/sae-only'

type HarvestRequest = Extract<JobRequest, { kind: 'harvest' }>

interface HarvestInput {
  request: HarvestRequest
  corpus: string
  items: { checkpointId: number; step: number; path: string; out: string }[]
}

interface HarvestOutput {
  backend: string
  stores: { checkpointId: number; path: string; rows: number }[]
  /** Each checkpoint's BOS / EOS decision and its reason, one line per distinct decision. */
  specialTokens: string[]
}

/** Where a checkpoint's activations live inside the project. */
export function storeDir(project: Project, step: number, layer: number): string {
  return join(project.artifactsDir, 'activations', `step${step}`, `layer${layer}`)
}

export const harvestJob: JobKindDefinition<HarvestRequest, HarvestInput, HarvestOutput> = {
  kind: 'harvest',
  prepare(project, request) {
    const all = project.checkpoints.list()
    // Unasked, SAE-only checkpoints are left out: they have no weights to run.
    const chosen = request.checkpointIds.length ? all.filter((c) => request.checkpointIds.includes(c.id)) : all.filter((c) => !isSaeOnly(c))
    if (chosen.length === 0 && all.length)
      throw saeOnlyRefusal(
        all.map((c) => c.step),
        'harvesting activations',
        'attach activations harvested elsewhere with `featuretrace import-activations`'
      )
    if (chosen.length === 0) throw new UserError('There are no checkpoints to harvest; register some first.')
    const missing = request.checkpointIds.filter((id) => !all.some((c) => c.id === id))
    if (missing.length) throw new UserError(`No checkpoint with id ${missing.join(', ')} in this project.`, 'not-found')
    const weightless = chosen.filter(isSaeOnly)
    if (weightless.length)
      throw saeOnlyRefusal(
        weightless.map((c) => c.step),
        'harvesting activations',
        'attach activations harvested elsewhere with `featuretrace import-activations`'
      )
    const unsupported = chosen.filter((c) => !c.supported)
    if (unsupported.length) {
      throw new UserError(
        `FeatureTrace cannot run ${[...new Set(unsupported.map((c) => c.modelType))].join(', ')} (steps ${unsupported.map((c) => c.step).join(', ')}). ` +
          'Harvest those with resources/harvest_activations.py and import the stores.'
      )
    }
    const tooShallow = chosen.filter((c) => request.layer > c.layers!)
    if (tooShallow.length) {
      throw new UserError(
        `Layer ${request.layer} is out of range for step ${tooShallow[0]!.step}: it has ${tooShallow[0]!.layers} layers, so layers 0–${tooShallow[0]!.layers} exist.`
      )
    }
    const corpus = resolve(request.corpus)
    if (!existsSync(corpus)) throw new UserError(`Missing corpus file ${corpus}.`)
    return {
      request,
      corpus,
      items: chosen.map((c) => ({ checkpointId: c.id, step: c.step, path: c.path!, out: storeDir(project, c.step, request.layer) }))
    }
  },
  async run(input, ctx: JobContext) {
    // Loaded here, in the worker: the host process never needs TensorFlow.js.
    const { harvest } = await import('./harvest')
    const stores: HarvestOutput['stores'] = []
    const specialTokens = new Set<string>()
    const n = input.items.length
    for (const [i, item] of input.items.entries()) {
      const r = input.request
      const result = await harvest(
        {
          model: item.path,
          corpus: input.corpus,
          corpusLang: r.lang,
          layers: [r.layer],
          out: () => item.out,
          context: r.context,
          maxTokens: r.maxTokens,
          dtype: r.dtype,
          seed: r.seed,
          dropShort: r.dropShort,
          checkpointStep: item.step,
          backend: r.backend
        },
        {
          signal: ctx.signal,
          progress: (p) =>
            ctx.progress({
              ...p,
              fraction: (i + p.fraction) / n,
              message: `step ${item.step} (${i + 1}/${n}) on ${currentBackend()?.name ?? '…'}: ${p.message ?? ''}`
            })
        }
      )
      const s = result.stores[0]!
      stores.push({ checkpointId: item.checkpointId, path: s.dir, rows: s.rows })
      specialTokens.add(result.specialTokens)
    }
    const b = currentBackend()
    return { backend: b ? `${b.name} (${b.reason})` : 'unknown', stores, specialTokens: [...specialTokens] }
  },
  apply(project, output) {
    for (const s of output.stores) {
      const m = ActivationStore.readManifest(s.path)
      project.activations.upsert({
        checkpointId: s.checkpointId,
        layer: m.layer,
        path: s.path,
        rows: m.rows,
        d: m.d,
        dtype: m.dtype,
        context: m.context,
        corpus: m.corpus,
        imported: false
      })
    }
    return {
      checkpoints: output.stores.length,
      tokens: output.stores.reduce((a, s) => a + s.rows, 0),
      backend: output.backend,
      'special tokens': output.specialTokens.join(' | ')
    }
  }
}

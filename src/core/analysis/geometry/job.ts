// The geometry job: galaxy, lobes or crystals for one checkpoint or the whole series of a layer, each
// result stored in the project (one row per analysis, layer and checkpoint).
import { UserError } from '../../../shared/api'
import type { GeometryJobRequest } from '../../../shared/geometry'
import type { CrystalResult, GalaxyResult, LobeResult } from '../../../shared/geometry'
import type { JobContext, JobKindDefinition } from '../../jobs/job'
import type { Project } from '../../project'
import type { GeometryPayload } from '../../store/geometry'
import { readPairs, type WordPair } from './pairs'
import { isSaeOnly, saeOnlyRefusal } from '../../checkpoints/sae-only'

interface Item {
  checkpointId: number
  step: number
  saeId: number | null
  sae: string | null
  activations: string | null
  model: string | null
}

interface GeometryInput {
  request: GeometryJobRequest
  items: Item[]
  pairs: WordPair[]
}

/** One analysis's result with its kind, so summary and storage stay typed. */
export type GeometryItemResult =
  { analysis: 'galaxy'; result: GalaxyResult } | { analysis: 'lobes'; result: LobeResult } | { analysis: 'crystals'; result: CrystalResult }

interface GeometryOutput {
  request: GeometryJobRequest
  results: ({ checkpointId: number; saeId: number | null } & GeometryItemResult)[]
  backend: string
}

/** The headline numbers of a result, kept beside it for charts over the series. */
export function geometrySummary(item: GeometryItemResult): GeometryPayload {
  if (item.analysis === 'galaxy') {
    const { alpha, alpha_ci, r2, clustering_entropy, clustering_entropy_ci, n, d } = item.result
    return { analysis: 'galaxy', result: item.result, summary: { alpha, alpha_ci, r2, clustering_entropy, clustering_entropy_ci, n, d } }
  }
  if (item.analysis === 'lobes') {
    const r = item.result
    const ks = r.clusterings.map((c) => ({
      k: c.k,
      ami: c.ami.ami,
      ami_z: c.ami.z,
      balanced_accuracy: c.balanced_accuracy,
      balanced_accuracy_null: c.balanced_accuracy_null
    }))
    return { analysis: 'lobes', result: r, summary: { metric: r.metric, blocks: r.blocks, features: r.features.length, ks } }
  }
  const { pairs, types, components, mean_cos_before, mean_cos_after, parallel_before, parallel_after, parallel_after_null, counts } = item.result
  return {
    analysis: 'crystals',
    result: item.result,
    summary: { pairs, types, components, mean_cos_before, mean_cos_after, parallel_before, parallel_after, parallel_after_null, counts }
  }
}

/** The checkpoints a geometry request covers, with what each analysis needs of them. */
export function geometryItems(project: Project, request: Pick<GeometryJobRequest, 'analysis' | 'layer' | 'checkpointIds'>): Item[] {
  const wanted = (id: number): boolean => request.checkpointIds.length === 0 || request.checkpointIds.includes(id)
  if (request.analysis === 'crystals') {
    const items = project.checkpoints
      .list()
      .filter((c) => wanted(c.id))
      .map((c) => {
        if (isSaeOnly(c)) throw saeOnlyRefusal([c.step], "crystals (the model's activations for each word)", 'run galaxy, which needs only the SAEs')
        if (!c.supported)
          throw new UserError(
            `Step ${c.step} is a ${c.modelType} checkpoint, which FeatureTrace cannot run; crystals need the model's activations for each word.`
          )
        if (request.layer > c.layers!) throw new UserError(`Layer ${request.layer} is out of range for step ${c.step} (${c.layers} layers).`)
        return { checkpointId: c.id, step: c.step, saeId: null, sae: null, activations: null, model: c.path! }
      })
    if (items.length === 0) throw new UserError('No checkpoints to run crystals on: register the series first.')
    return items.sort((a, b) => a.step - b.step)
  }
  const saes = project.saes.list().filter((s) => s.layer === request.layer && wanted(s.checkpointId))
  if (saes.length === 0)
    throw new UserError(`No SAE for layer ${request.layer}${request.checkpointIds.length ? ' at the chosen checkpoints' : ''}; train one first (train-series).`)
  const stores = project.activations.list()
  return saes
    .map((s) => {
      const store = stores.find((x) => x.checkpointId === s.checkpointId && x.layer === s.layer)
      if (request.analysis === 'lobes' && !store)
        throw new UserError(`Step ${s.step} has an SAE but no layer-${s.layer} activations, which lobes need to find co-firing features.`)
      return { checkpointId: s.checkpointId, step: s.step, saeId: s.id, sae: s.path, activations: store?.path ?? null, model: null }
    })
    .sort((a, b) => a.step - b.step)
}

/** Runs one analysis on one item (in the worker, or in the CLI's own process). */
export async function runGeometryItem(
  request: GeometryJobRequest,
  item: Item,
  pairs: WordPair[],
  ctx: Pick<JobContext, 'signal' | 'progress'>
): Promise<GeometryItemResult> {
  if (request.analysis === 'galaxy') {
    const { galaxyOfSae } = await import('./galaxy')
    const g = request.galaxy ?? {}
    return {
      analysis: 'galaxy',
      result: await galaxyOfSae(item.sae!, { entropySample: g.sample, entropyDims: g.dims, bootstraps: g.bootstraps, seed: request.seed }, ctx)
    }
  }
  if (request.analysis === 'lobes') {
    const { lobesOfSae } = await import('./lobes')
    const l = request.lobes ?? { ks: [2, 3, 4, 8], metric: 'phi' as const }
    return { analysis: 'lobes', result: await lobesOfSae(item.sae!, item.activations!, { ...l, seed: request.seed }, ctx) }
  }
  const { crystalsOfCheckpoint } = await import('./crystals')
  const c = request.crystals
  return { analysis: 'crystals', result: await crystalsOfCheckpoint(item.model!, request.layer, pairs, { prefix: c?.prefix, shrinkage: c?.shrinkage }, ctx) }
}

export const geometryJob: JobKindDefinition<GeometryJobRequest, GeometryInput, GeometryOutput> = {
  kind: 'geometry',
  prepare(project, request) {
    let pairs: WordPair[] = []
    if (request.analysis === 'crystals') {
      if (!request.crystals?.pairs.length) throw new UserError('Crystals need at least one pair list (a .tsv of word pairs).')
      // Read here so a bad file fails the request at once, not in the worker.
      pairs = request.crystals.pairs.flatMap((f) => readPairs(f))
    }
    return { request, items: geometryItems(project, request), pairs }
  },
  replaces(project, request) {
    const wanted = new Set(request.checkpointIds)
    const old = project.geometry.list(request.analysis, request.layer).filter((r) => wanted.size === 0 || wanted.has(r.checkpointId))
    if (old.length === 0) return []
    return [
      `the stored ${request.analysis} result${old.length === 1 ? '' : 's'} of layer ${request.layer} at step${old.length === 1 ? '' : 's'} ${old.map((r) => r.step).join(', ')}`
    ]
  },
  async run(input, ctx) {
    const { initBackend, currentBackend } = await import('../../tf/backend')
    await initBackend(input.request.backend)
    const results: GeometryOutput['results'] = []
    const n = input.items.length
    for (const [i, item] of input.items.entries()) {
      const result = await runGeometryItem(input.request, item, input.pairs, {
        signal: ctx.signal,
        progress: (p) => ctx.progress({ ...p, fraction: (i + p.fraction) / n, message: `step ${item.step} (${i + 1}/${n}): ${p.message ?? ''}` })
      })
      results.push({ checkpointId: item.checkpointId, saeId: item.saeId, ...result })
    }
    const b = currentBackend()
    return { request: input.request, results, backend: b ? b.name : 'unknown' }
  },
  apply(project, output) {
    const repo = project.geometry
    const { request } = output
    const params = { seed: request.seed, galaxy: request.galaxy, lobes: request.lobes, crystals: request.crystals }
    const stored = output.results.map((r) => repo.put({ ...geometrySummary(r), checkpointId: r.checkpointId, saeId: r.saeId, layer: request.layer, params }))
    return { results: stored.map((s) => s.id), backend: output.backend }
  }
}

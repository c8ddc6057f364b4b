// The feature-statistics job: a dashboard for every feature of each SAE of a layer. The worker writes each
// feature set straight into the project database (one transaction per SAE), since a paper-scale set is
// too large to pass back through the job channel. A recomputation updates the SAE's set in place.
import type { JobRequest } from '../../shared/api'
import { UserError } from '../../shared/api'
import type { JobKindDefinition } from '../jobs/job'
import { isSaeOnly, saeOnlyRefusal } from '../checkpoints/sae-only'

type StatsRequest = Extract<JobRequest, { kind: 'feature-stats' }>

interface StatsInput {
  request: StatsRequest
  projectPath: string
  items: { saeId: number; checkpointId: number; step: number; layer: number; sae: string; activations: string }[]
}

interface StatsOutput {
  sets: { setId: number; step: number; features: number; rows: number; heldOutOnly: boolean }[]
}

export function featureSetName(step: number, layer: number): string {
  return `step ${step} · layer ${layer}`
}

export const featureStatsJob: JobKindDefinition<StatsRequest, StatsInput, StatsOutput> = {
  kind: 'feature-stats',
  prepare(project, request) {
    const saes = project.saes.list().filter((s) => s.layer === request.layer && (request.checkpointIds.length === 0 || request.checkpointIds.includes(s.checkpointId)))
    if (saes.length === 0) throw new UserError(`No SAE for layer ${request.layer}${request.checkpointIds.length ? ' at the chosen checkpoints' : ''}; train one first.`)
    const stores = project.activations.list()
    const checkpoints = project.checkpoints.list()
    return {
      request,
      projectPath: project.path,
      items: saes.map((s) => {
        const store = stores.find((x) => x.checkpointId === s.checkpointId && x.layer === s.layer)
        if (!store && checkpoints.some((c) => c.id === s.checkpointId && isSaeOnly(c))) {
          throw saeOnlyRefusal([s.step], `feature statistics need layer-${s.layer} activations, and harvesting them`, 'attach activations harvested elsewhere with `featuretrace import-activations`')
        }
        if (!store) throw new UserError(`Step ${s.step} has an SAE but no layer-${s.layer} activations to compute statistics on.`)
        return { saeId: s.id, checkpointId: s.checkpointId, step: s.step, layer: s.layer, sae: s.path, activations: store.path }
      })
    }
  },
  replaces(project, request) {
    const sets = project.saes
      .list()
      .filter((s) => s.layer === request.layer && (request.checkpointIds.length === 0 || request.checkpointIds.includes(s.checkpointId)))
      .map((s) => project.features.setOfSae(s.id))
      .filter((s) => s !== null)
    if (sets.length === 0) return []
    const labels = sets.reduce((a, s) => a + s.labelCount, 0)
    return [
      `the statistics and examples of ${sets.length} feature set${sets.length === 1 ? '' : 's'} (${sets.map((s) => s.name).join('; ')}), ` +
        `recomputed in place: ${labels === 1 ? 'its 1 label stays' : `their ${labels} labels stay`}, with their history`
    ]
  },
  async run(input, ctx) {
    const { computeFeatureStats } = await import('./feature-stats')
    const { Project } = await import('../project')
    const sets: StatsOutput['sets'] = []
    const n = input.items.length
    for (const [i, item] of input.items.entries()) {
      const r = input.request
      const stats = await computeFeatureStats(
        { sae: item.sae, activations: item.activations, paperExamples: r.examples, topN: r.topN, maxRows: r.maxRows, language: r.language, languageThreshold: r.languageThreshold },
        { signal: ctx.signal, progress: (p) => ctx.progress({ ...p, fraction: (i + p.fraction) / n, message: `step ${item.step} (${i + 1}/${n}): ${p.message ?? ''}` }) }
      )
      const project = Project.open(input.projectPath)
      try {
        // In place when the SAE already has a set: its labels and their history stay.
        const set = project.features.writeSaeSet(
          { name: featureSetName(item.step, item.layer), saeId: item.saeId, checkpointId: item.checkpointId, layer: item.layer },
          stats.tokens,
          stats.features
        )
        sets.push({ setId: set.id, step: item.step, features: stats.features.length, rows: stats.rows, heldOutOnly: stats.heldOutOnly })
      } finally {
        project.close()
      }
    }
    return { sets }
  },
  apply(_project, output) {
    const all = output.sets.filter((s) => !s.heldOutOnly).map((s) => s.step)
    return {
      sets: output.sets.length,
      features: output.sets.reduce((a, s) => a + s.features, 0),
      rows: all.length ? `all rows at steps ${all.join(', ')} (too few windows to hold out)` : 'held-out windows'
    }
  }
}

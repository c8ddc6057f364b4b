// The feature-statistics job: a dashboard for every feature of each SAE of a layer. The worker computes; the
// host stores. A paper-scale set is too large for one message on the job channel, so the worker writes each
// SAE's set to a file in the job's staging folder (io/feature-set-file.ts) and says so by an event; the host
// reads it back into the project database (one transaction per SAE) as it arrives, so a cancelled job keeps
// the SAEs it finished. A recomputation updates the SAE's set in place.
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import type { JobRequestOf } from '../../shared/api'
import { UserError } from '../../shared/api'
import type { JobKindDefinition } from '../jobs/job'
import { isSaeOnly, saeOnlyRefusal } from '../checkpoints/sae-only'
import { readFeatureSetFile } from '../io/feature-set-file'

type StatsRequest = JobRequestOf<'feature-stats'>

interface StatsItem {
  saeId: number
  checkpointId: number
  step: number
  layer: number
  sae: string
  activations: string
  /** The checkpoint folder whose head gives the logit effects; null: SAE-only (no weights). */
  checkpoint: string | null
}

interface StatsInput {
  request: StatsRequest
  /** Where the worker leaves each SAE's set for the host; removed when the job ends. */
  staging: string
  items: StatsItem[]
}

interface StatsOutput {
  sets: { step: number; features: number; rows: number; heldOutOnly: boolean }[]
  /** The engine the statistics ran on, and why (initBackend's reason). */
  backend: string
}

/** The event by which the worker hands one SAE's set to the host. */
const SetReadySchema = z.object({
  file: z.string(),
  saeId: z.number().int(),
  checkpointId: z.number().int(),
  step: z.number().int(),
  layer: z.number().int(),
  logitNote: z.string().nullable(),
  rows: z.number().int(),
  heldOut: z.boolean()
})
type SetReady = z.infer<typeof SetReadySchema>

export function featureSetName(step: number, layer: number): string {
  return `step ${step} · layer ${layer}`
}

export const featureStatsJob: JobKindDefinition<StatsRequest, StatsInput, StatsOutput> = {
  kind: 'feature-stats',
  prepare(project, request) {
    const saes = project.saes
      .list()
      .filter((s) => s.layer === request.layer && (request.checkpointIds.length === 0 || request.checkpointIds.includes(s.checkpointId)))
    if (saes.length === 0)
      throw new UserError(`No SAE for layer ${request.layer}${request.checkpointIds.length ? ' at the chosen checkpoints' : ''}; train one first.`)
    const stores = project.activations.list()
    const checkpoints = project.checkpoints.list()
    return {
      request,
      staging: join(project.artifactsDir, 'tmp', `feature-stats-${Date.now()}-${process.pid}`),
      items: saes.map((s) => {
        const store = stores.find((x) => x.checkpointId === s.checkpointId && x.layer === s.layer)
        if (!store && checkpoints.some((c) => c.id === s.checkpointId && isSaeOnly(c))) {
          throw saeOnlyRefusal(
            [s.step],
            `feature statistics need layer-${s.layer} activations, and harvesting them`,
            'attach activations harvested elsewhere with `featuretrace import-activations`'
          )
        }
        if (!store) throw new UserError(`Step ${s.step} has an SAE but no layer-${s.layer} activations to compute statistics on.`)
        const checkpoint = checkpoints.find((c) => c.id === s.checkpointId)?.path ?? null
        return { saeId: s.id, checkpointId: s.checkpointId, step: s.step, layer: s.layer, sae: s.path, activations: store.path, checkpoint }
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
    // The engine is chosen here as every job chooses it: left to tfjs, a fresh worker would compute on its pure-JS
    // cpu backend (~1 GFLOP/s), and the onnxruntime paths of feature-stats.ts would never run.
    const { initBackend } = await import('../tf/backend')
    const engine = await initBackend(input.request.backend)
    const { computeFeatureStats } = await import('./feature-stats')
    const { writeFeatureSetFile } = await import('../io/feature-set-file')
    mkdirSync(input.staging, { recursive: true })
    const sets: StatsOutput['sets'] = []
    const n = input.items.length
    for (const [i, item] of input.items.entries()) {
      const r = input.request
      const stats = await computeFeatureStats(
        {
          sae: item.sae,
          activations: item.activations,
          paperExamples: r.examples,
          topN: r.topN,
          maxRows: r.maxRows,
          language: r.language,
          languageThreshold: r.languageThreshold,
          checkpoint: item.checkpoint
        },
        {
          signal: ctx.signal,
          progress: (p) => ctx.progress({ ...p, fraction: (i + p.fraction) / n, message: `step ${item.step} (${i + 1}/${n}): ${p.message ?? ''}` })
        }
      )
      const file = join(input.staging, `sae-${item.saeId}.ftfs`)
      try {
        writeFeatureSetFile(file, stats.tokens, stats.features, stats.features.length)
      } catch (err) {
        rmSync(file, { force: true })
        throw err
      }
      ctx.emit?.({
        file,
        saeId: item.saeId,
        checkpointId: item.checkpointId,
        step: item.step,
        layer: item.layer,
        logitNote: stats.logitNote,
        rows: stats.rows,
        heldOut: stats.heldOutOnly
      } satisfies SetReady)
      sets.push({ step: item.step, features: stats.features.length, rows: stats.rows, heldOutOnly: stats.heldOutOnly })
    }
    return { sets, backend: `${engine.name} (${engine.reason})` }
  },
  onEvent(project, payload) {
    const ready = SetReadySchema.parse(payload)
    const set = readFeatureSetFile(ready.file)
    try {
      // In place when the SAE already has a set: its labels and their history stay.
      project.features.writeSaeSet(
        {
          name: featureSetName(ready.step, ready.layer),
          saeId: ready.saeId,
          checkpointId: ready.checkpointId,
          layer: ready.layer
        },
        set.tokens,
        set.records,
        { logitNote: ready.logitNote, rows: ready.rows, heldOut: ready.heldOut }
      )
    } finally {
      set.close()
      rmSync(ready.file, { force: true })
    }
    return { event: 'features.changed', payload: { sets: project.features.sets().length } }
  },
  discard(input) {
    rmSync(input.staging, { recursive: true, force: true })
  },
  apply(_project, output) {
    const all = output.sets.filter((s) => !s.heldOutOnly).map((s) => s.step)
    return {
      sets: output.sets.length,
      features: output.sets.reduce((a, s) => a + s.features, 0),
      rows: all.length ? `all rows at steps ${all.join(', ')} (too few windows to hold out)` : 'held-out windows',
      backend: output.backend
    }
  }
}

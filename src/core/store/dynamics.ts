// Feature dynamics of a layer's SAE series, as the dynamics job computed them: one run per layer (the
// newest replaces the last), one row per feature, so features can be sorted by formation step and drift.
import type { DynamicsRunInfo, FeatureDynamicsRow } from '../../shared/api'
import { DynamicsRunSchema } from '../../shared/api'
import { storedJson } from './stored-json'
import type { Db } from './database'

export interface NewDynamicsRun {
  layer: number
  steps: number[]
  n: number
  threshold: number
  warmStarted: boolean
  matchMethod: string | null
  jobId: number | null
}

export class DynamicsRepository {
  constructor(private readonly db: Db) {}

  /** Replaces the layer's run and its rows in one transaction. */
  save(run: NewDynamicsRun, rows: FeatureDynamicsRow[]): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM dynamics_run WHERE layer = ?').run(run.layer)
      this.db
        .prepare('INSERT INTO dynamics_run (layer, steps, n, threshold, warm_started, match_method, job_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(run.layer, JSON.stringify(run.steps), run.n, run.threshold, run.warmStarted ? 1 : 0, run.matchMethod, run.jobId, new Date().toISOString())
      const insert = this.db.prepare(
        `INSERT INTO feature_dynamics (layer, feature, total_drift, min_cos_to_previous, formation_step, formation_raw, formation_jaccard, formation_weighted_jaccard, m_final)
         VALUES (@layer, @feature, @totalDrift, @minCosToPrevious, @sae, @raw, @jaccard, @weightedJaccard, @mFinal)`
      )
      for (const r of rows)
        insert.run({
          layer: run.layer,
          feature: r.feature,
          totalDrift: r.totalDrift,
          minCosToPrevious: r.minCosToPrevious,
          ...r.formationStep,
          mFinal: r.mFinal
        })
    })()
  }

  run(layer: number): DynamicsRunInfo | null {
    const r = this.db.prepare('SELECT * FROM dynamics_run WHERE layer = ?').get(layer) as
      { layer: number; steps: string; n: number; threshold: number; warm_started: number; match_method: string | null; created_at: string } | undefined
    if (!r) return null
    return {
      layer: r.layer,
      steps: storedJson(DynamicsRunSchema.shape.steps, r.steps, `the steps of layer ${layer}'s dynamics run`),
      n: r.n,
      threshold: r.threshold,
      warmStarted: r.warm_started === 1,
      matchMethod: r.match_method,
      createdAt: r.created_at
    }
  }

  rows(layer: number): FeatureDynamicsRow[] {
    const rows = this.db.prepare('SELECT * FROM feature_dynamics WHERE layer = ? ORDER BY feature').all(layer) as {
      feature: number
      total_drift: number
      min_cos_to_previous: number
      formation_step: number | null
      formation_raw: number | null
      formation_jaccard: number | null
      formation_weighted_jaccard: number | null
      m_final: number | null
    }[]
    return rows.map((r) => ({
      feature: r.feature,
      totalDrift: r.total_drift,
      minCosToPrevious: r.min_cos_to_previous,
      formationStep: { sae: r.formation_step, raw: r.formation_raw, jaccard: r.formation_jaccard, weightedJaccard: r.formation_weighted_jaccard },
      mFinal: r.m_final
    }))
  }
}

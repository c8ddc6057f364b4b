import type { SaeInfo, SaeMetric } from '../../shared/api'
import type { Db } from './database'
import type { ProjectPaths } from './paths'

interface SaeRow {
  id: number
  checkpoint_id: number
  step: number
  layer: number
  path: string
  preset: string
  d: number
  n: number
  k: number
  warm_started: number
  tokens: number
  steps: number
  fvu: number | null
  explained_variance: number | null
  cosine: number | null
  l0: number | null
  dead_fraction: number | null
  backend: string | null
  created_at: string
}

const SELECT = 'SELECT s.*, c.step AS step FROM sae s JOIN checkpoint c ON c.id = s.checkpoint_id'

function toInfo(r: SaeRow, paths: ProjectPaths): SaeInfo {
  return {
    id: r.id, checkpointId: r.checkpoint_id, step: r.step, layer: r.layer, path: paths.resolve(r.path), preset: r.preset, d: r.d, n: r.n, k: r.k,
    warmStarted: r.warm_started === 1, tokens: r.tokens, steps: r.steps, fvu: r.fvu, explainedVariance: r.explained_variance,
    cosine: r.cosine, l0: r.l0, deadFraction: r.dead_fraction, backend: r.backend, createdAt: r.created_at
  }
}

export type NewSae = Omit<SaeInfo, 'id' | 'step' | 'createdAt'>

export class SaeRepository {
  constructor(
    private readonly db: Db,
    private readonly paths: ProjectPaths
  ) {}

  list(): SaeInfo[] {
    return (this.db.prepare(`${SELECT} ORDER BY s.layer, c.step`).all() as SaeRow[]).map((r) => toInfo(r, this.paths))
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM sae').get() as { n: number }).n
  }

  upsert(s: NewSae): SaeInfo {
    this.db
      .prepare(
        `INSERT INTO sae (checkpoint_id, layer, path, preset, d, n, k, warm_started, tokens, steps, fvu, explained_variance, cosine, l0,
           dead_fraction, backend, created_at)
         VALUES (@checkpointId, @layer, @path, @preset, @d, @n, @k, @warm, @tokens, @steps, @fvu, @explainedVariance, @cosine, @l0,
           @deadFraction, @backend, @createdAt)
         ON CONFLICT (checkpoint_id, layer) DO UPDATE SET path = excluded.path, preset = excluded.preset, d = excluded.d,
           n = excluded.n, k = excluded.k, warm_started = excluded.warm_started, tokens = excluded.tokens, steps = excluded.steps,
           fvu = excluded.fvu, explained_variance = excluded.explained_variance, cosine = excluded.cosine, l0 = excluded.l0,
           dead_fraction = excluded.dead_fraction, backend = excluded.backend, created_at = excluded.created_at`
      )
      .run({ ...s, path: this.paths.toStored(s.path), warm: s.warmStarted ? 1 : 0, createdAt: new Date().toISOString() })
    return toInfo(this.db.prepare(`${SELECT} WHERE s.checkpoint_id = ? AND s.layer = ?`).get(s.checkpointId, s.layer) as SaeRow, this.paths)
  }

  /** Points an SAE at its folder's new place. */
  setPath(id: number, path: string): void {
    this.db.prepare('UPDATE sae SET path = ? WHERE id = ?').run(this.paths.toStored(path), id)
  }

  addMetric(m: SaeMetric): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO sae_metric (checkpoint_id, layer, step, tokens, loss, aux_loss, l0, dead_fraction, lr, tokens_per_second)
         VALUES (@checkpointId, @layer, @step, @tokens, @loss, @auxLoss, @l0, @deadFraction, @lr, @tokensPerSecond)`
      )
      .run(m)
  }

  metrics(checkpointId: number, layer: number): SaeMetric[] {
    return (
      this.db
        .prepare(
          `SELECT checkpoint_id AS checkpointId, layer, step, tokens, loss, aux_loss AS auxLoss, l0, dead_fraction AS deadFraction, lr,
             tokens_per_second AS tokensPerSecond FROM sae_metric WHERE checkpoint_id = ? AND layer = ? ORDER BY step`
        )
        .all(checkpointId, layer) as SaeMetric[]
    )
  }

  clearMetrics(checkpointId: number, layer: number): void {
    this.db.prepare('DELETE FROM sae_metric WHERE checkpoint_id = ? AND layer = ?').run(checkpointId, layer)
  }
}

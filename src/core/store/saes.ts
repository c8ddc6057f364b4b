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
  hook: string | null
  created_at: string
  superseded_by: number | null
  superseded_at: string | null
}

const SELECT = 'SELECT s.*, c.step AS step FROM sae s JOIN checkpoint c ON c.id = s.checkpoint_id'

function toInfo(r: SaeRow, paths: ProjectPaths): SaeInfo {
  return {
    id: r.id,
    checkpointId: r.checkpoint_id,
    step: r.step,
    layer: r.layer,
    path: paths.resolve(r.path),
    preset: r.preset,
    d: r.d,
    n: r.n,
    k: r.k,
    warmStarted: r.warm_started === 1,
    tokens: r.tokens,
    steps: r.steps,
    fvu: r.fvu,
    explainedVariance: r.explained_variance,
    cosine: r.cosine,
    l0: r.l0,
    deadFraction: r.dead_fraction,
    backend: r.backend,
    hook: r.hook,
    createdAt: r.created_at,
    supersededBy: r.superseded_by,
    supersededAt: r.superseded_at
  }
}

/** An SAE to record; `hook` (the hook an imported SAE reads) defaults to null, an SAE trained here. */
export type NewSae = Omit<SaeInfo, 'id' | 'step' | 'createdAt' | 'supersededBy' | 'supersededAt' | 'hook'> & { hook?: string | null }

export class SaeRepository {
  constructor(
    private readonly db: Db,
    private readonly paths: ProjectPaths
  ) {}

  /** The current SAE of every checkpoint and layer (superseded ones only when asked). */
  list(opts: { includeSuperseded?: boolean } = {}): SaeInfo[] {
    const where = opts.includeSuperseded ? '' : 'WHERE s.superseded_at IS NULL'
    return (this.db.prepare(`${SELECT} ${where} ORDER BY s.layer, c.step, s.id`).all() as SaeRow[]).map((r) => toInfo(r, this.paths))
  }

  get(id: number): SaeInfo | null {
    const r = this.db.prepare(`${SELECT} WHERE s.id = ?`).get(id) as SaeRow | undefined
    return r ? toInfo(r, this.paths) : null
  }

  /** The current SAE of a checkpoint at a layer, if any. */
  current(checkpointId: number, layer: number): SaeInfo | null {
    const r = this.db.prepare(`${SELECT} WHERE s.checkpoint_id = ? AND s.layer = ? AND s.superseded_at IS NULL`).get(checkpointId, layer) as SaeRow | undefined
    return r ? toInfo(r, this.paths) : null
  }

  /** Whether any SAE row, current or superseded, points at this folder. */
  pathRecorded(path: string): boolean {
    return this.db.prepare('SELECT 1 FROM sae WHERE path = ?').get(this.paths.toStored(path)) !== undefined
  }

  /** `base`, or `base-v2`, `base-v3`, … : the first folder no SAE row (current or superseded) points at. */
  freshPath(base: string): string {
    if (!this.pathRecorded(base)) return base
    for (let v = 2; ; v++) if (!this.pathRecorded(`${base}-v${v}`)) return `${base}-v${v}`
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM sae WHERE superseded_at IS NULL').get() as { n: number }).n
  }

  /**
   * Records an SAE as the current one of its checkpoint and layer. The same folder recorded again updates its row;
   * an SAE in another folder (retrained, re-imported) becomes a new row and the old one is kept, superseded, with its
   * feature set renamed so the new SAE's set can take the plain name. Labels stay on the old set's features.
   */
  upsert(s: NewSae): SaeInfo {
    return this.db.transaction(() => {
      const current = this.current(s.checkpointId, s.layer)
      const params = { ...s, hook: s.hook ?? null, path: this.paths.toStored(s.path), warm: s.warmStarted ? 1 : 0, createdAt: new Date().toISOString() }
      if (current && current.path === s.path) {
        this.db
          .prepare(
            `UPDATE sae SET preset = @preset, d = @d, n = @n, k = @k, warm_started = @warm, tokens = @tokens, steps = @steps, fvu = @fvu,
               explained_variance = @explainedVariance, cosine = @cosine, l0 = @l0, dead_fraction = @deadFraction, backend = @backend, hook = @hook
             WHERE id = @id`
          )
          .run({ ...params, id: current.id })
        return this.get(current.id)!
      }
      // The unique index allows one current SAE per checkpoint and layer, so the old one steps aside first.
      if (current) this.db.prepare('UPDATE sae SET superseded_at = ? WHERE id = ?').run(params.createdAt, current.id)
      const id = Number(
        this.db
          .prepare(
            `INSERT INTO sae (checkpoint_id, layer, path, preset, d, n, k, warm_started, tokens, steps, fvu, explained_variance, cosine, l0,
               dead_fraction, backend, hook, created_at)
             VALUES (@checkpointId, @layer, @path, @preset, @d, @n, @k, @warm, @tokens, @steps, @fvu, @explainedVariance, @cosine, @l0,
               @deadFraction, @backend, @hook, @createdAt)`
          )
          .run(params).lastInsertRowid
      )
      if (current) {
        this.db.prepare('UPDATE sae SET superseded_by = ? WHERE id = ?').run(id, current.id)
        // The new SAE's statistics will take the plain name; the old set keeps its features and labels under this one.
        this.db.prepare("UPDATE feature_set SET name = name || ' · superseded SAE #' || sae_id WHERE sae_id = ? AND source = 'sae'").run(current.id)
      }
      return this.get(id)!
    })()
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
    return this.db
      .prepare(
        `SELECT checkpoint_id AS checkpointId, layer, step, tokens, loss, aux_loss AS auxLoss, l0, dead_fraction AS deadFraction, lr,
             tokens_per_second AS tokensPerSecond FROM sae_metric WHERE checkpoint_id = ? AND layer = ? ORDER BY step`
      )
      .all(checkpointId, layer) as SaeMetric[]
  }

  clearMetrics(checkpointId: number, layer: number): void {
    this.db.prepare('DELETE FROM sae_metric WHERE checkpoint_id = ? AND layer = ?').run(checkpointId, layer)
  }
}

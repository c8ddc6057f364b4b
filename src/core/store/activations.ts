import type { ActivationStoreInfo } from '../../shared/api'
import type { Db } from './database'
import type { ProjectPaths } from './paths'

interface StoreRow {
  id: number
  checkpoint_id: number
  step: number
  layer: number
  path: string
  rows: number
  d: number
  dtype: 'f16' | 'f32'
  context: number
  corpus: string
  imported: number
  created_at: string
}

const SELECT = 'SELECT s.*, c.step AS step FROM activation_store s JOIN checkpoint c ON c.id = s.checkpoint_id'

function toInfo(r: StoreRow, paths: ProjectPaths): ActivationStoreInfo {
  return {
    id: r.id,
    checkpointId: r.checkpoint_id,
    step: r.step,
    layer: r.layer,
    path: paths.resolve(r.path),
    rows: r.rows,
    d: r.d,
    dtype: r.dtype,
    context: r.context,
    corpus: paths.resolve(r.corpus),
    imported: r.imported === 1,
    createdAt: r.created_at
  }
}

export type NewStore = Omit<ActivationStoreInfo, 'id' | 'step' | 'createdAt'>

export class ActivationStoreRepository {
  constructor(
    private readonly db: Db,
    private readonly paths: ProjectPaths
  ) {}

  list(): ActivationStoreInfo[] {
    return (this.db.prepare(`${SELECT} ORDER BY c.step, s.layer`).all() as StoreRow[]).map((r) => toInfo(r, this.paths))
  }

  forCheckpoint(checkpointId: number): ActivationStoreInfo[] {
    return (this.db.prepare(`${SELECT} WHERE s.checkpoint_id = ? ORDER BY s.layer`).all(checkpointId) as StoreRow[]).map((r) => toInfo(r, this.paths))
  }

  /** Points a store (or the corpus it was harvested from) at its new place. */
  setPaths(id: number, change: { path?: string; corpus?: string }): void {
    if (change.path !== undefined) this.db.prepare('UPDATE activation_store SET path = ? WHERE id = ?').run(this.paths.toStored(change.path), id)
    if (change.corpus !== undefined) this.db.prepare('UPDATE activation_store SET corpus = ? WHERE id = ?').run(this.paths.toStored(change.corpus), id)
  }

  /** Records a store; a new harvest of the same checkpoint and layer replaces the old record. */
  upsert(s: NewStore): ActivationStoreInfo {
    this.db
      .prepare(
        `INSERT INTO activation_store (checkpoint_id, layer, path, rows, d, dtype, context, corpus, imported, created_at)
         VALUES (@checkpointId, @layer, @path, @rows, @d, @dtype, @context, @corpus, @imported, @createdAt)
         ON CONFLICT (checkpoint_id, layer) DO UPDATE SET path = excluded.path, rows = excluded.rows, d = excluded.d,
           dtype = excluded.dtype, context = excluded.context, corpus = excluded.corpus, imported = excluded.imported,
           created_at = excluded.created_at`
      )
      .run({
        ...s,
        path: this.paths.toStored(s.path),
        corpus: this.paths.toStored(s.corpus),
        imported: s.imported ? 1 : 0,
        createdAt: new Date().toISOString()
      })
    const row = this.db.prepare(`${SELECT} WHERE s.checkpoint_id = ? AND s.layer = ?`).get(s.checkpointId, s.layer) as StoreRow
    return toInfo(row, this.paths)
  }
}

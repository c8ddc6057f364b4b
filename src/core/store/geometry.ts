// Stored results of the geometry studies: one row per analysis, layer and checkpoint (a new run replaces it).
import type { GeometryResultInfo } from '../../shared/geometry'
import type { Db } from './database'
import { mapRequestPaths, type ProjectPaths } from './paths'

interface ResultRow {
  id: number
  analysis: GeometryResultInfo['analysis']
  checkpoint_id: number
  step: number
  layer: number
  params_json: string
  summary_json: string
  result_json: string
  created_at: string
}

const SELECT = 'SELECT g.*, c.step AS step FROM geometry_result g JOIN checkpoint c ON c.id = g.checkpoint_id'

function toInfo(r: ResultRow): GeometryResultInfo {
  return { id: r.id, analysis: r.analysis, checkpointId: r.checkpoint_id, step: r.step, layer: r.layer, summary: JSON.parse(r.summary_json) as Record<string, unknown>, createdAt: r.created_at }
}

export interface NewGeometryResult {
  analysis: GeometryResultInfo['analysis']
  checkpointId: number
  saeId: number | null
  layer: number
  params: unknown
  summary: Record<string, unknown>
  result: unknown
}

export class GeometryRepository {
  constructor(
    private readonly db: Db,
    private readonly paths: ProjectPaths
  ) {}

  /** Stores a result, replacing the earlier one of the same analysis, layer and checkpoint. */
  put(r: NewGeometryResult): GeometryResultInfo {
    const insert = this.db.transaction(() => {
      this.db.prepare('DELETE FROM geometry_result WHERE analysis = ? AND layer = ? AND checkpoint_id = ?').run(r.analysis, r.layer, r.checkpointId)
      const info = this.db
        .prepare('INSERT INTO geometry_result (analysis, checkpoint_id, sae_id, layer, params_json, summary_json, result_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(
          r.analysis, r.checkpointId, r.saeId, r.layer, this.paths.storedJson(mapRequestPaths(r.params, (p) => this.paths.toStored(p))),
          this.paths.storedJson(r.summary), this.paths.storedJson(r.result), new Date().toISOString()
        )
      return Number(info.lastInsertRowid)
    })
    return this.info(insert())!
  }

  info(id: number): GeometryResultInfo | null {
    const row = this.db.prepare(`${SELECT} WHERE g.id = ?`).get(id) as ResultRow | undefined
    return row ? toInfo(row) : null
  }

  /** Results of one analysis (optionally one layer) in step order, without their full payloads. */
  list(analysis: GeometryResultInfo['analysis'], layer?: number): GeometryResultInfo[] {
    const rows = (
      layer === undefined
        ? this.db.prepare(`${SELECT} WHERE g.analysis = ? ORDER BY g.layer, c.step`).all(analysis)
        : this.db.prepare(`${SELECT} WHERE g.analysis = ? AND g.layer = ? ORDER BY c.step`).all(analysis, layer)
    ) as ResultRow[]
    return rows.map(toInfo)
  }

  get(id: number): (GeometryResultInfo & { params: unknown; result: unknown }) | null {
    const row = this.db.prepare(`${SELECT} WHERE g.id = ?`).get(id) as ResultRow | undefined
    return row ? { ...toInfo(row), params: mapRequestPaths(JSON.parse(row.params_json) as unknown, (p) => this.paths.resolve(p)), result: JSON.parse(row.result_json) as unknown } : null
  }
}

// Stored results of the geometry studies: one row per analysis, layer and checkpoint (a new run replaces it).
import { z } from 'zod'
import { UserError } from '../../shared/api'
import type { CrystalResult, GalaxyResult, GeometryParams, GeometryResult, GeometryResultInfo, GeometrySummaryOf, LobeResult } from '../../shared/geometry'
import { GeometryResultInfoSchema, GeometryResultSchema } from '../../shared/geometry'
import { storedJson } from './stored-json'
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

function fields(r: ResultRow): Omit<GeometryResultInfo, 'summary'> {
  return { id: r.id, analysis: r.analysis, checkpointId: r.checkpoint_id, step: r.step, layer: r.layer, createdAt: r.created_at }
}

function toInfo(r: ResultRow): GeometryResultInfo {
  return GeometryResultInfoSchema.parse({ ...fields(r), summary: storedJson(z.json(), r.summary_json, `the summary of geometry result ${r.id}`) })
}

/** An analysis's summary and payload, as the contract types them. */
export type GeometryPayload =
  | { analysis: 'galaxy'; summary: GeometrySummaryOf<'galaxy'>; result: GalaxyResult }
  | { analysis: 'lobes'; summary: GeometrySummaryOf<'lobes'>; result: LobeResult }
  | { analysis: 'crystals'; summary: GeometrySummaryOf<'crystals'>; result: CrystalResult }

/** A result to store: where it belongs, the settings it was computed with, and its payload. */
export type NewGeometryResult = { checkpointId: number; saeId: number | null; layer: number; params: GeometryParams } & GeometryPayload

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
        .prepare(
          'INSERT INTO geometry_result (analysis, checkpoint_id, sae_id, layer, params_json, summary_json, result_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'
        )
        .run(
          r.analysis,
          r.checkpointId,
          r.saeId,
          r.layer,
          this.paths.storedJson(mapRequestPaths(r.params, (p) => this.paths.toStored(p))),
          this.paths.storedJson(r.summary),
          this.paths.storedJson(r.result),
          new Date().toISOString()
        )
      return Number(info.lastInsertRowid)
    })
    return this.info(insert())!
  }

  info(id: number): GeometryResultInfo | null {
    const row = this.db.prepare(`${SELECT} WHERE g.id = ?`).get(id) as ResultRow | undefined
    return row ? toInfo(row) : null
  }

  /** Results of one analysis (optionally one layer) in step order, without their full payloads; a row that does not read is left out (and logged). */
  list(analysis: GeometryResultInfo['analysis'], layer?: number): GeometryResultInfo[] {
    const rows = (
      layer === undefined
        ? this.db.prepare(`${SELECT} WHERE g.analysis = ? ORDER BY g.layer, c.step`).all(analysis)
        : this.db.prepare(`${SELECT} WHERE g.analysis = ? AND g.layer = ? ORDER BY c.step`).all(analysis, layer)
    ) as ResultRow[]
    return rows.flatMap((r) => {
      try {
        return [toInfo(r)]
      } catch (err) {
        console.warn(`[featuretrace] geometry result ${r.id} left out: ${(err as Error).message}`)
        return []
      }
    })
  }

  get(id: number): GeometryResult | null {
    const row = this.db.prepare(`${SELECT} WHERE g.id = ?`).get(id) as ResultRow | undefined
    if (!row) return null
    const where = `geometry result ${id}`
    const parsed = GeometryResultSchema.safeParse({
      ...fields(row),
      summary: storedJson(z.json(), row.summary_json, `the summary of ${where}`),
      params: mapRequestPaths(storedJson(z.json(), row.params_json, `the settings of ${where}`), (p) => this.paths.resolve(p)),
      result: storedJson(z.json(), row.result_json, where)
    })
    if (!parsed.success)
      throw new UserError(
        `The project database holds ${where} in a shape this version does not read (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}); run the analysis again.`
      )
    return parsed.data
  }
}

import type { z } from 'zod'
import type { Job, JobRequest, JobState } from '../../shared/api'
import { JobRequestSchema, jobResultSchemas, JobSchema, UserError } from '../../shared/api'
import { storedJsonOrNull } from './stored-json'
import type { Db } from './database'
import { mapRequestPaths, type ProjectPaths } from './paths'

interface JobRow {
  id: number
  kind: string
  params_json: string
  state: JobState
  fraction: number
  rate: number | null
  rate_unit: string | null
  eta_seconds: number | null
  message: string | null
  error: string | null
  result_json: string | null
  host_pid: number | null
  heartbeat_at: string | null
  created_at: string
  started_at: string | null
  finished_at: string | null
}

function toJob(r: JobRow, paths: ProjectPaths): Job {
  const where = `job ${r.id}`
  const params = storedJsonOrNull(JobRequestSchema, r.params_json, `the request of ${where}`)
  const resultSchema = (jobResultSchemas as Record<string, z.ZodType | undefined>)[r.kind]
  return JobSchema.parse({
    id: r.id,
    kind: r.kind,
    params: params && params.kind === r.kind ? mapRequestPaths(params, (p) => paths.resolve(p)) : null,
    state: r.state,
    fraction: r.fraction,
    rate: r.rate,
    rateUnit: r.rate_unit,
    etaSeconds: r.eta_seconds,
    message: r.message,
    error: r.error,
    result: resultSchema ? storedJsonOrNull(resultSchema, r.result_json, `the result of ${where}`) : null,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at
  })
}

export interface JobProgress {
  fraction: number
  rate: number | null
  rateUnit: string | null
  etaSeconds: number | null
  message: string | null
}

/** A job row is "stale" when the process that owns it is gone or has stopped beating. */
export const HEARTBEAT_STALE_MS = 60_000

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export class JobRepository {
  constructor(
    private readonly db: Db,
    private readonly paths: ProjectPaths
  ) {}

  create(request: JobRequest): Job {
    const now = new Date().toISOString()
    const info = this.db
      .prepare(
        `INSERT INTO job (kind, params_json, state, host_pid, heartbeat_at, created_at)
         VALUES (?, ?, 'queued', ?, ?, ?)`
      )
      .run(request.kind, this.paths.storedJson(mapRequestPaths(request, (p) => this.paths.toStored(p))), process.pid, now, now)
    return this.get(Number(info.lastInsertRowid))
  }

  get(id: number): Job {
    const r = this.db.prepare('SELECT * FROM job WHERE id = ?').get(id) as JobRow | undefined
    if (!r) throw new UserError(`No job with id ${id} in this project.`, 'not-found')
    return toJob(r, this.paths)
  }

  list(limit = 200): Job[] {
    return (this.db.prepare('SELECT * FROM job ORDER BY id DESC LIMIT ?').all(limit) as JobRow[]).map((r) => toJob(r, this.paths))
  }

  markRunning(id: number): Job {
    const now = new Date().toISOString()
    this.db.prepare("UPDATE job SET state = 'running', started_at = ?, heartbeat_at = ?, host_pid = ? WHERE id = ?").run(now, now, process.pid, id)
    return this.get(id)
  }

  progress(id: number, p: JobProgress): Job {
    this.db
      .prepare(
        `UPDATE job SET fraction = ?, rate = ?, rate_unit = ?, eta_seconds = ?, message = ?, heartbeat_at = ?
         WHERE id = ? AND state = 'running'`
      )
      .run(Math.min(1, Math.max(0, p.fraction)), p.rate, p.rateUnit, p.etaSeconds, this.paths.storedText(p.message), new Date().toISOString(), id)
    return this.get(id)
  }

  finish(id: number, state: Exclude<JobState, 'queued' | 'running'>, outcome: { error?: string; result?: unknown }): Job {
    this.db
      .prepare(
        `UPDATE job SET state = ?, error = ?, result_json = ?, finished_at = ?, eta_seconds = NULL,
           fraction = CASE WHEN ? = 'done' THEN 1 ELSE fraction END
         WHERE id = ?`
      )
      .run(
        state,
        this.paths.storedText(outcome.error ?? null),
        outcome.result === undefined ? null : this.paths.storedJson(outcome.result),
        new Date().toISOString(),
        state,
        id
      )
    return this.get(id)
  }

  heartbeat(ids: number[]): void {
    const stmt = this.db.prepare('UPDATE job SET heartbeat_at = ? WHERE id = ?')
    const now = new Date().toISOString()
    this.db.transaction(() => ids.forEach((id) => stmt.run(now, id)))()
  }

  /** Jobs left queued or running by a process that died show as interrupted, not running. */
  markInterrupted(now = Date.now()): Job[] {
    const rows = this.db.prepare("SELECT * FROM job WHERE state IN ('queued', 'running')").all() as JobRow[]
    const stale = rows.filter((r) => {
      const beat = r.heartbeat_at ? Date.parse(r.heartbeat_at) : 0
      const ownerGone = r.host_pid === null || !processAlive(r.host_pid)
      return ownerGone || now - beat > HEARTBEAT_STALE_MS
    })
    const stmt = this.db.prepare("UPDATE job SET state = 'interrupted', eta_seconds = NULL, error = ?, finished_at = ? WHERE id = ?")
    this.db.transaction(() => {
      for (const r of stale) {
        stmt.run('The process running this job stopped before it finished.', new Date(now).toISOString(), r.id)
      }
    })()
    return stale.map((r) => this.get(r.id))
  }
}

// Host side of jobs: a queue run one at a time, each job in a fresh worker process, its state in SQLite.
import type { CallInput, Job } from '../../shared/api'
import { JobRequestSchema, UserError } from '../../shared/api'
import type { Project } from '../project'
import type { EventSink } from '../services'
import { jobKind } from './kinds'
import { jobTimeLeft } from './progress'
import type { WorkerHandle, WorkerMessage, WorkerSpawner } from './protocol'

const HEARTBEAT_MS = 5_000
/** A worker that ignores a cancel this long is killed. */
const CANCEL_GRACE_MS = 5_000

interface Running {
  jobId: number
  worker: WorkerHandle
  finished: boolean
  /** Date.now() when the worker was started: the whole job's pace is measured from here. */
  startedAt: number
}

export class JobManager {
  private readonly queue: { jobId: number; kind: string; input: unknown }[] = []
  /** Each job's prepared input until it ends, for its kind's discard. */
  private readonly inputs = new Map<number, { kind: string; input: unknown }>()
  private running: Running | null = null
  private readonly waiters = new Map<number, ((job: Job) => void)[]>()
  private readonly heartbeat: NodeJS.Timeout
  private disposed = false

  private emit(job: Job): void {
    this.sink('job.updated', job)
  }

  constructor(
    private readonly project: Project,
    private readonly spawn: WorkerSpawner,
    private readonly sink: EventSink
  ) {
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS)
    this.heartbeat.unref()
  }

  /** Validates the request (as any door sends it: defaults may be missing) against the project before anything is queued. */
  start(asked: CallInput<'jobs.start'>): Job {
    const parsed = JobRequestSchema.safeParse(asked)
    if (!parsed.success)
      throw new UserError(`Invalid job request: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ')}`, 'bad-request')
    const request = parsed.data
    const def = jobKind(request.kind)
    const input: unknown = def.prepare(this.project, request)
    const job = this.project.jobs.create(request)
    this.queue.push({ jobId: job.id, kind: request.kind, input })
    this.inputs.set(job.id, { kind: request.kind, input })
    this.emit(job)
    this.pump()
    return this.project.jobs.get(job.id)
  }

  cancel(id: number): Job {
    const job = this.project.jobs.get(id)
    const queued = this.queue.findIndex((q) => q.jobId === id)
    if (queued >= 0) {
      this.queue.splice(queued, 1)
      return this.settle(id, 'cancelled', {})
    }
    if (this.running?.jobId === id) {
      const run = this.running
      run.worker.send({ type: 'cancel', jobId: id })
      setTimeout(() => {
        if (!run.finished) {
          run.finished = true
          run.worker.kill()
          this.settle(id, 'cancelled', { error: 'The worker did not stop in time and was killed.' })
          this.release(run)
        }
      }, CANCEL_GRACE_MS).unref()
    }
    return job
  }

  /** Resolves when the job has ended, whichever way. */
  waitFor(id: number): Promise<Job> {
    const job = this.project.jobs.get(id)
    if (!['queued', 'running'].includes(job.state)) return Promise.resolve(job)
    return new Promise((resolve) => this.waiters.set(id, [...(this.waiters.get(id) ?? []), resolve]))
  }

  /** Shutting down with work in hand: it shows as interrupted, not running. */
  dispose(): void {
    if (this.disposed) return
    this.disposed = true
    clearInterval(this.heartbeat)
    const ids = [...this.queue.map((q) => q.jobId), ...(this.running ? [this.running.jobId] : [])]
    this.queue.length = 0
    if (this.running) {
      this.running.finished = true
      this.running.worker.kill()
      this.running = null
    }
    for (const id of ids) {
      this.settle(id, 'interrupted', { error: 'FeatureTrace was closed while this job ran.' })
    }
  }

  private beat(): void {
    const ids = [...this.queue.map((q) => q.jobId), ...(this.running ? [this.running.jobId] : [])]
    if (ids.length && this.project.db.open) this.project.jobs.heartbeat(ids)
  }

  private pump(): void {
    if (this.running || this.disposed) return
    const next = this.queue.shift()
    if (!next) return
    let worker: WorkerHandle
    try {
      worker = this.spawn()
    } catch (err) {
      this.settle(next.jobId, 'failed', { error: `Could not start a worker process: ${(err as Error).message}` })
      this.pump()
      return
    }
    const run: Running = { jobId: next.jobId, worker, finished: false, startedAt: Date.now() }
    this.running = run
    this.emit(this.project.jobs.markRunning(next.jobId))
    worker.onMessage((m) => this.onWorkerMessage(run, m, next.kind))
    worker.onExit((code) => {
      if (!run.finished) {
        this.settle(run.jobId, 'failed', {
          error: `The worker process exited unexpectedly (code ${code}); it may have run out of memory.`
        })
      }
      this.release(run)
    })
    worker.send({ type: 'start', jobId: next.jobId, kind: next.kind, input: next.input })
  }

  private onWorkerMessage(run: Running, m: WorkerMessage, kind: string): void {
    if (m.type === 'answer' || run.finished || m.jobId !== run.jobId || this.disposed) return
    if (m.type === 'progress') {
      const etaSeconds = jobTimeLeft(m.progress.fraction, (Date.now() - run.startedAt) / 1000, m.progress.etaSeconds)
      this.emit(this.project.jobs.progress(m.jobId, { ...m.progress, etaSeconds }))
      return
    }
    if (m.type === 'event') {
      try {
        const b = jobKind(kind).onEvent?.(this.project, m.payload)
        if (b) this.sink(b.event, b.payload as never)
      } catch (err) {
        // What the worker handed over could not be stored: the job stops here, failed, saying why.
        if (!(err instanceof UserError)) console.error(`[featuretrace] storing what job ${m.jobId} (${kind}) reported failed:`, err)
        run.finished = true
        this.settle(m.jobId, 'failed', { error: `Storing the job's results failed: ${(err as Error).message}` })
        run.worker.kill()
        this.release(run)
      }
      return
    }
    run.finished = true
    if (m.type === 'done') {
      const def = jobKind(kind)
      try {
        const result: unknown = def.apply(this.project, m.output)
        this.settle(m.jobId, 'done', { result })
      } catch (err) {
        if (!(err instanceof UserError)) console.error(`[featuretrace] storing the results of job ${m.jobId} (${kind}) failed:`, err)
        this.settle(m.jobId, 'failed', { error: `Storing the job's results failed: ${(err as Error).message}` })
      }
      for (const b of def.announce?.(this.project, m.output) ?? []) this.sink(b.event, b.payload as never)
    } else if (m.type === 'failed') {
      this.settle(m.jobId, 'failed', { error: m.error })
    } else {
      this.settle(m.jobId, 'cancelled', {})
    }
    run.worker.kill()
    this.release(run)
  }

  /** Frees the slot of a run that has ended and starts the next queued job. */
  private release(run: Running): void {
    if (this.running !== run) return
    this.running = null
    this.pump()
  }

  private settle(id: number, state: 'done' | 'failed' | 'cancelled' | 'interrupted', outcome: { error?: string; result?: unknown }): Job {
    const prepared = this.inputs.get(id)
    this.inputs.delete(id)
    if (prepared) {
      try {
        jobKind(prepared.kind).discard?.(prepared.input)
      } catch (err) {
        console.error(`[featuretrace] cleaning up after job ${id} (${prepared.kind}) failed:`, err)
      }
    }
    const job = this.project.jobs.finish(id, state, outcome)
    this.emit(job)
    for (const resolve of this.waiters.get(id) ?? []) resolve(job)
    this.waiters.delete(id)
    return job
  }
}

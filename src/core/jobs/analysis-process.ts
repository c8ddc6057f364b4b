// Host side of the analysis process: one long-lived worker that answers the queries too heavy for the host
// (drift and formation for the Dynamics view), keeping its drift cache between them. Started on the first
// query, stopped after a while without one. A query can be cancelled by its request id; a worker stuck in
// work it cannot interrupt (a large exact matching) is killed after a grace period and started afresh, and
// the other queries it held are asked again of the new one.
import { UserError } from '../../shared/api'
import { JobCancelled } from './job'
import type { WorkerHandle, WorkerMessage, WorkerSpawner } from './protocol'

/** A cancelled query's worker that has not answered this long is killed. */
const ABORT_GRACE_MS = 2_000
/** With nothing asked this long, the process (and its cache) goes. */
const IDLE_MS = 10 * 60_000

interface Asked {
  queryId: number
  name: string
  input: unknown
  requestId: string | null
  resolve(output: unknown): void
  reject(err: Error): void
  cancelled: boolean
}

export class AnalysisProcess {
  private worker: WorkerHandle | null = null
  private readonly asked = new Map<number, Asked>()
  private nextId = 1
  private idle: NodeJS.Timeout | null = null
  private disposed = false

  constructor(
    private readonly spawn: WorkerSpawner,
    private readonly opts: { abortGraceMs?: number; idleMs?: number } = {}
  ) {}

  /** Asks a query; resolves with its output, or rejects with a UserError, JobCancelled or an Error (a bug). */
  ask(name: string, input: unknown, requestId?: string): Promise<unknown> {
    if (this.disposed) return Promise.reject(new Error('The analysis process was shut down.'))
    if (requestId !== undefined && [...this.asked.values()].some((a) => a.requestId === requestId)) {
      return Promise.reject(new UserError(`A query with request id ${requestId} is already running; send a new id.`, 'bad-request'))
    }
    return new Promise((resolve, reject) => {
      const a: Asked = { queryId: this.nextId++, name, input, requestId: requestId ?? null, resolve, reject, cancelled: false }
      this.asked.set(a.queryId, a)
      this.keepAlive()
      this.send(a)
    })
  }

  /** Cancels the running query with this request id; false when there is none. */
  cancel(requestId: string): boolean {
    const a = [...this.asked.values()].find((x) => x.requestId === requestId && !x.cancelled)
    if (!a) return false
    a.cancelled = true
    const worker = this.worker
    worker?.send({ type: 'abort', queryId: a.queryId })
    setTimeout(() => {
      if (this.asked.has(a.queryId) && this.worker === worker)
        this.restart(`query ${a.name} did not stop within ${this.opts.abortGraceMs ?? ABORT_GRACE_MS} ms of its cancel`)
    }, this.opts.abortGraceMs ?? ABORT_GRACE_MS).unref()
    return true
  }

  /** Queries being answered now. */
  pending(): number {
    return this.asked.size
  }

  dispose(): void {
    this.disposed = true
    if (this.idle) clearTimeout(this.idle)
    this.worker?.kill()
    this.worker = null
    for (const a of this.asked.values()) a.reject(a.cancelled ? new JobCancelled() : new Error('The analysis process was shut down.'))
    this.asked.clear()
  }

  private send(a: Asked): void {
    this.ensureWorker().send({ type: 'query', queryId: a.queryId, name: a.name, input: a.input })
  }

  private ensureWorker(): WorkerHandle {
    if (this.worker) return this.worker
    const worker = this.spawn()
    this.worker = worker
    worker.onMessage((m) => this.onMessage(m))
    worker.onExit((code) => {
      if (this.worker !== worker) return
      this.worker = null
      // Every query it held fails, but a cancelled one reads as cancelled.
      for (const a of this.asked.values()) {
        a.reject(a.cancelled ? new JobCancelled() : new Error(`The analysis process exited unexpectedly (code ${code}); it may have run out of memory.`))
      }
      this.asked.clear()
    })
    return worker
  }

  private onMessage(m: WorkerMessage): void {
    if (m.type !== 'answer') return
    const a = this.asked.get(m.queryId)
    if (!a) return
    this.asked.delete(m.queryId)
    this.keepAlive()
    if (m.ok) a.resolve(m.output)
    else if (m.kind === 'cancelled' || a.cancelled) a.reject(new JobCancelled())
    else if (m.kind === 'user') a.reject(new UserError(m.error))
    else a.reject(new Error(m.error))
  }

  /** Kills a worker stuck in a cancelled query; its cancelled queries end, the others go to a new worker. */
  private restart(why: string): void {
    const old = this.worker
    if (!old) return
    console.warn(`[featuretrace] restarting the analysis process: ${why}`)
    this.worker = null
    old.kill()
    const again = [...this.asked.values()]
    for (const a of again) {
      if (!a.cancelled) continue
      this.asked.delete(a.queryId)
      a.reject(new JobCancelled())
    }
    for (const a of again) if (!a.cancelled) this.send(a)
  }

  private keepAlive(): void {
    if (this.idle) clearTimeout(this.idle)
    this.idle = setTimeout(() => {
      if (this.asked.size > 0) return this.keepAlive()
      this.worker?.kill()
      this.worker = null
    }, this.opts.idleMs ?? IDLE_MS)
    this.idle.unref()
  }
}

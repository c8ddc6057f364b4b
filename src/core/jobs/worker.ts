// Entry of the worker process: runs one job at a time for its host and reports progress, or (as the
// long-lived analysis process) answers queries. Started by child_process.fork (serve, CLI) or Electron's
// utilityProcess (desktop app). Errors go back as messages; a bug's stack goes to this process's log.
import { UserError } from '../../shared/api'
import { analysisQueries, isQueryName, type QueryContext } from '../analysis/queries'
import { DriftCache } from '../analysis/drift-cache'
import { LoadedModels } from '../analysis/live-text'
import { JobCancelled } from './job'
import { jobKind } from './kinds'
import type { FailureKind, HostMessage, WorkerMessage } from './protocol'

interface ParentPort {
  on(event: 'message', listener: (e: { data: unknown }) => void): void
  postMessage(message: unknown): void
}

const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort

function post(message: WorkerMessage): void {
  if (parentPort) parentPort.postMessage(message)
  else process.send?.(message)
}

function listen(handler: (message: HostMessage) => void): void {
  if (parentPort) parentPort.on('message', (e) => handler(e.data as HostMessage))
  else process.on('message', (m) => handler(m as HostMessage))
}

/** What crosses back for a failure: the message for people, and its kind; a bug's stack is logged here. */
function failure(err: unknown, signal: AbortSignal, what: string): { error: string; kind: FailureKind } {
  if (err instanceof JobCancelled || signal.aborted) return { error: 'cancelled', kind: 'cancelled' }
  if (err instanceof UserError) return { error: err.message, kind: 'user' }
  console.error(`[featuretrace worker] ${what} failed:`, err)
  return { error: `${err instanceof Error ? err.message : String(err)} (a bug: details are in the log)`, kind: 'internal' }
}

/** At most this many progress messages a second reach the host. */
const PROGRESS_INTERVAL_MS = 200
const running = new Map<number, AbortController>()

async function runJob(jobId: number, kind: string, input: unknown): Promise<void> {
  const controller = new AbortController()
  running.set(jobId, controller)
  let lastPost = 0
  try {
    const output: unknown = await jobKind(kind).run(input, {
      signal: controller.signal,
      progress(progress) {
        const now = Date.now()
        if (now - lastPost < PROGRESS_INTERVAL_MS && progress.fraction < 1) return
        lastPost = now
        post({ type: 'progress', jobId, progress })
      },
      emit: (payload) => post({ type: 'event', jobId, payload })
    })
    if (controller.signal.aborted) post({ type: 'cancelled', jobId })
    else post({ type: 'done', jobId, output })
  } catch (err) {
    const f = failure(err, controller.signal, `job ${jobId} (${kind})`)
    if (f.kind === 'cancelled') post({ type: 'cancelled', jobId })
    else post({ type: 'failed', jobId, ...f })
  } finally {
    running.delete(jobId)
  }
}

/** The analysis process's memory between queries: drift of the series last asked about, the last checkpoints run on live text. */
const drift = new DriftCache()
const models = new LoadedModels()
const queries = new Map<number, AbortController>()

async function runQuery(queryId: number, name: string, input: unknown): Promise<void> {
  const controller = new AbortController()
  queries.set(queryId, controller)
  try {
    if (!isQueryName(name)) throw new Error(`Unknown query ${name}`)
    const ctx: QueryContext = { signal: controller.signal, drift, models }
    const output: unknown = await (analysisQueries[name].run as (input: unknown, ctx: QueryContext) => Promise<unknown>)(input, ctx)
    if (controller.signal.aborted) post({ type: 'answer', queryId, ok: false, error: 'cancelled', kind: 'cancelled' })
    else post({ type: 'answer', queryId, ok: true, output })
  } catch (err) {
    post({ type: 'answer', queryId, ok: false, ...failure(err, controller.signal, `query ${name}`) })
  } finally {
    queries.delete(queryId)
  }
}

// A forked worker whose host died has no one to report to.
if (!parentPort) process.on('disconnect', () => process.exit(1))

/** Chooses the compute engine exactly as a job in this process would, and reports it. */
async function probe(): Promise<void> {
  try {
    const { initBackend } = await import('../tf/backend')
    // The engine of the heavy jobs (harvest, training), which may run on WebGPU.
    const choice = await initBackend(undefined, { asyncReads: true })
    post({ type: 'engine', jobId: null, engine: choice.name, reason: choice.reason, gpu: choice.gpu })
  } catch (err) {
    post({ type: 'engine', jobId: null, engine: '', reason: (err as Error).message })
  }
}

listen((message) => {
  if (message.type === 'probe') void probe()
  else if (message.type === 'start') void runJob(message.jobId, message.kind, message.input)
  else if (message.type === 'cancel') running.get(message.jobId)?.abort()
  else if (message.type === 'query') void runQuery(message.queryId, message.name, message.input)
  else if (message.type === 'abort') queries.get(message.queryId)?.abort()
})

// Entry of the job worker process. Runs one job at a time for its host and reports progress.
// Started by child_process.fork (serve, CLI) or Electron's utilityProcess (desktop app).
import { UserError } from '../../shared/api'
import { JobCancelled } from './job'
import { jobKind } from './kinds'
import type { HostMessage, WorkerMessage } from './protocol'

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
    if (err instanceof JobCancelled || controller.signal.aborted) post({ type: 'cancelled', jobId })
    else {
      const userError = err instanceof UserError
      const message = userError ? (err as Error).message : ((err as Error).stack ?? String(err))
      post({ type: 'failed', jobId, error: message, userError })
    }
  } finally {
    running.delete(jobId)
  }
}

// A forked worker whose host died has no one to report to.
if (!parentPort) process.on('disconnect', () => process.exit(1))

/** Chooses the compute engine exactly as a job in this process would, and reports it. */
async function probe(): Promise<void> {
  try {
    const { initBackend } = await import('../tf/backend')
    const choice = await initBackend()
    post({ type: 'engine', jobId: null, engine: choice.name, reason: choice.reason })
  } catch (err) {
    post({ type: 'engine', jobId: null, engine: '', reason: (err as Error).message })
  }
}

listen((message) => {
  if (message.type === 'probe') void probe()
  else if (message.type === 'start') void runJob(message.jobId, message.kind, message.input)
  else if (message.type === 'cancel') running.get(message.jobId)?.abort()
})

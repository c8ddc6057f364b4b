// What a job kind is: host-side prepare and apply around worker-side run.
import type { EventName, EventPayload, JobRequest, JobResultOf } from '../../shared/api'
import type { Project } from '../project'
import type { JobProgress } from '../store/jobs'

export interface JobContext {
  signal: AbortSignal
  progress(p: JobProgress): void
  /** Reports a result along the way to the host (stored and broadcast by the kind's onEvent). */
  emit?(payload: unknown): void
}

/** What a host-side event handler may broadcast to the doors. */
export type JobBroadcast = { [E in EventName]: { event: E; payload: EventPayload<E> } }[EventName]

export interface JobKindDefinition<Request extends JobRequest, Input, Output> {
  kind: Request['kind']
  /** Host side: resolve the request against the project into a self-contained worker input. */
  prepare(project: Project, request: Request): Input
  /** Worker side: the long work, in its own process. */
  run(input: Input, ctx: JobContext): Promise<Output>
  /** Host side: store the output in the project; the return value is kept as the job's result. */
  apply(project: Project, output: Output): JobResultOf<Request['kind']>
  /** Host side: what the doors should hear once apply has stored the output (besides job.updated). */
  announce?(project: Project, output: Output): JobBroadcast[]
  /** Host side: what starting this request would replace, one sentence each (empty: nothing); the UI asks first. */
  replaces?(project: Project, request: Request): string[]
  /** Host side: a payload the worker emitted while running; store it, and say what to broadcast. */
  onEvent?(project: Project, payload: unknown): JobBroadcast | null
  /** Host side: the job has ended, whichever way; remove what its input left on disk (a staging folder). */
  discard?(input: Input): void
}

export class JobCancelled extends Error {
  constructor() {
    super('cancelled')
    this.name = 'JobCancelled'
  }
}

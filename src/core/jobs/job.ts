// What a job kind is: host-side prepare and apply around worker-side run.
import type { JobRequest } from '../../shared/api'
import type { Project } from '../project'
import type { JobProgress } from '../store/jobs'

export interface JobContext {
  signal: AbortSignal
  progress(p: JobProgress): void
}

export interface JobKindDefinition<Request extends JobRequest, Input, Output> {
  kind: Request['kind']
  /** Host side: resolve the request against the project into a self-contained worker input. */
  prepare(project: Project, request: Request): Input
  /** Worker side: the long work, in its own process. */
  run(input: Input, ctx: JobContext): Promise<Output>
  /** Host side: store the output in the project; the return value is kept as the job's result. */
  apply(project: Project, output: Output): unknown
}

export class JobCancelled extends Error {
  constructor() {
    super('cancelled')
    this.name = 'JobCancelled'
  }
}

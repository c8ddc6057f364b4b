// Messages between a host (Electron main, serve, CLI) and its worker processes: a job worker runs one job;
// the analysis process, a long-lived worker of the same entry, answers queries (dynamics) as they come.
import type { JobProgress } from '../store/jobs'

export type HostMessage =
  | { type: 'start'; jobId: number; kind: string; input: unknown }
  | { type: 'cancel'; jobId: number }
  | { type: 'query'; queryId: number; name: string; input: unknown }
  | { type: 'abort'; queryId: number }
  /** Choose the compute engine as a job would, report it, and do nothing else (engine-probe.ts). */
  | { type: 'probe' }

/** How a failure crossed from the worker: a user's error, a cancellation, or a bug (its stack went to the worker's log). */
export type FailureKind = 'user' | 'cancelled' | 'internal'

export type WorkerMessage =
  | { type: 'progress'; jobId: number; progress: JobProgress }
  | { type: 'done'; jobId: number; output: unknown }
  | { type: 'failed'; jobId: number; error: string; kind: FailureKind }
  | { type: 'cancelled'; jobId: number }
  /** Something a job reports along the way (e.g. a training metric), handled by its kind's onEvent. */
  | { type: 'event'; jobId: number; payload: unknown }
  | { type: 'answer'; queryId: number; ok: true; output: unknown }
  | { type: 'answer'; queryId: number; ok: false; error: string; kind: FailureKind }
  /** The answer to a probe: the engine this worker chose, whether it computes on a GPU, and why (no job: jobId is null). */
  | { type: 'engine'; jobId: null; engine: string; reason: string; gpu?: boolean }

/** A running worker process, whichever way it was started. */
export interface WorkerHandle {
  send(message: HostMessage): void
  onMessage(listener: (message: WorkerMessage) => void): void
  onExit(listener: (code: number | null) => void): void
  kill(): void
}

/** Starts the worker entry in a separate process: child_process.fork in Node, utilityProcess in Electron. */
export type WorkerSpawner = () => WorkerHandle

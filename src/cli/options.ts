// What every CLI command shares: option parsing, the workspace on --project, calls through the one API.
import { SingleBar } from 'cli-progress'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { Job, ProjectInfo } from '../shared/api'
import { JobCancelled, type JobContext } from '../core/jobs/job'
import { BACKENDS, type BackendName } from '../core/tf/backend'
import { formatBytes } from '../shared/format'
import { nodeWorkerSpawner } from '../core/jobs/spawn'
import { callService, Workspace, type WorkspaceHost } from '../core/services'
import type { Door } from '../shared/api'

export class CliError extends Error {}

export type Options = ParseArgsConfig['options']

export function parse(args: string[], options: Options): { values: Record<string, unknown>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true })
    return { values: values as Record<string, unknown>, positionals }
  } catch (err) {
    throw new CliError(`${(err as Error).message}\nRun \`featuretrace help\` for usage.`)
  }
}

export function intOption(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0) throw new CliError(`--${name} needs a non-negative integer, got ${JSON.stringify(value)}.`)
  return n
}

/** One workspace for the command's lifetime, with a project opened from --project. */
export function openWorkspace(values: Record<string, unknown>, required = true, door: Door = 'cli', host: WorkspaceHost = {}): Workspace {
  const ws = new Workspace(door, nodeWorkerSpawner(), host)
  const project = values.project as string | undefined
  if (project) reportMissing(ws.open(project).info())
  else if (required) throw new CliError('This command needs --project DIR.')
  return ws
}

/** Names, on stderr, the outside inputs a project no longer finds, and how to point it at their new place. */
function reportMissing(info: ProjectInfo): void {
  if (info.missing.length === 0) return
  const lines = info.missing.map((m) => `  ${m.what}: ${m.path}`)
  process.stderr.write(
    `featuretrace: ${info.missing.length === 1 ? 'one input' : `${info.missing.length} inputs`} of ${info.path} ${info.missing.length === 1 ? 'is' : 'are'} missing:\n${lines.join('\n')}\n` +
      `If they moved, point the project at their new place: featuretrace project relocate --project ${info.path} --from OLD --to NEW\n`
  )
}

/** Calls through the one API, as every door does. */
export const call = callService

interface Bar {
  update(p: { fraction: number; rate: number | null; rateUnit: string | null; message: string | null }): void
  stop(done: boolean): void
}

export function formatRate(p: { rate: number | null; rateUnit: string | null }): string {
  if (p.rate === null) return ''
  return p.rateUnit === 'B/s' ? `${formatBytes(p.rate)}/s` : `${p.rate.toFixed(1)} ${p.rateUnit ?? ''}`
}

/** A terminal progress bar: fraction, rate, time left, message. */
export function progressBar(label: string): Bar {
  const bar = new SingleBar({
    format: ' {bar} {percentage}% | {rate} | ETA {eta_formatted} | {message}',
    barsize: 30,
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 5000,
    etaBuffer: 50
  })
  bar.start(1000, 0, { rate: '', message: label })
  return {
    update: (p) =>
      bar.update(Math.round(p.fraction * 1000), {
        rate: formatRate({ rate: p.rate, rateUnit: p.rateUnit }),
        message: p.message ?? ''
      }),
    stop(done) {
      if (done) bar.update(1000)
      bar.stop()
    }
  }
}

/** Runs a job to its end with a progress bar; Ctrl-C cancels it. */
export async function runJob(ws: Workspace, job: Job): Promise<Job> {
  const { jobs } = ws.requireProject()
  const bar = progressBar(job.kind)
  const unsubscribe = ws.subscribe((event, payload) => {
    if (event !== 'job.updated') return
    const j = payload as Job
    if (j.id === job.id) bar.update({ ...j, message: j.message ?? j.state })
  })
  const onSigint = (): void => {
    process.stderr.write('\nCancelling…\n')
    jobs.cancel(job.id)
  }
  process.once('SIGINT', onSigint)
  try {
    const end = await jobs.waitFor(job.id)
    bar.stop(end.state === 'done')
    return end
  } finally {
    unsubscribe()
    process.off('SIGINT', onSigint)
  }
}

/** The ids of the checkpoints at the steps given with --checkpoint (repeatable). */
export async function checkpointIdsAt(ws: Workspace, value: unknown): Promise<number[]> {
  const steps = ((value as string[] | undefined) ?? []).map((v) => intOption(v, 'checkpoint')!)
  const all = await call(ws, 'checkpoints.list')
  return steps.map((step) => {
    const c = all.find((x) => x.step === step)
    if (!c) throw new CliError(`No checkpoint at step ${step} in this project.`)
    return c.id
  })
}

export function requireOptions(command: string, values: Record<string, unknown>, names: string[]): void {
  for (const name of names) {
    if (values[name] === undefined) throw new CliError(`${command} needs --${name}. Run \`featuretrace help\` for usage.`)
  }
}

/**
 * Runs long work in this process with a progress bar; Ctrl-C stops it at a safe point so the same
 * command resumes it.
 */
export async function runInProcess<T>(label: string, stopped: string, work: (ctx: JobContext) => Promise<T>): Promise<T> {
  const controller = new AbortController()
  const onSigint = (): void => {
    process.stderr.write(`\nStopping; ${stopped}\n`)
    controller.abort()
  }
  process.once('SIGINT', onSigint)
  const bar = progressBar(label)
  try {
    const result = await work({ signal: controller.signal, progress: (p) => bar.update(p) })
    bar.stop(true)
    return result
  } catch (err) {
    bar.stop(false)
    if (err instanceof JobCancelled) throw new CliError(`${label} stopped; run the same command again to resume.`)
    throw err
  } finally {
    process.off('SIGINT', onSigint)
  }
}

export function backendOption(value: unknown): BackendName | undefined {
  if (value !== undefined && !(BACKENDS as readonly string[]).includes(value as string)) throw new CliError(`--backend must be one of ${BACKENDS.join(', ')}.`)
  return value as BackendName | undefined
}

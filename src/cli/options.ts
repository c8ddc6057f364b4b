// What every CLI command shares: typed option parsing, the workspace on --project, calls through the one API,
// progress bars, and running a job to its end.
import { SingleBar } from 'cli-progress'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { CallInput, CallName, CallOutput, Door, Job, ProjectInfo } from '../shared/api'
import { BACKEND_NAMES } from '../shared/schema'
import { JobCancelled, type JobContext } from '../core/jobs/job'
import { formatBytes, formatDuration } from '../shared/format'
import { nodeWorkerSpawner } from '../core/jobs/spawn'
import { callService, Workspace, type WorkspaceHost } from '../core/services'

/** A mistake in the command line or its input: printed without a stack, exit code 2. */
export class CliError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'CliError'
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>

/** `--project DIR`, taken by every command that works on a project. */
export const PROJECT = { project: { type: 'string' } } as const satisfies Options

type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>>

/** Parses a command's arguments; each option's value is typed by its declaration (string, boolean, string[]). */
export function parse<const O extends Options>(args: string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true })
  } catch (err) {
    throw new CliError(`${parseError(err as Error & { code?: string })} Run \`featuretrace <command> --help\` for that command's options.`)
  }
}

/** node:util's parseArgs messages, told the way this CLI speaks (one line, the option named, what to write). */
function parseError(err: Error & { code?: string }): string {
  const option = /'(--?[\w-]+)[^']*'/.exec(err.message)?.[1]
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `Unknown option ${option}.`
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option && /ambiguous/.test(err.message))
    return `${option} needs a value, and a value starting with '-' must be written ${option}=VALUE.`
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option)
    return `${option} ${/needs an argument|argument missing/.test(err.message) ? 'needs a value' : 'takes no value'}.`
  return err.message.split('\n')[0]!
}

export function intOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0) throw new CliError(`--${name} needs a non-negative integer, got ${JSON.stringify(value)}.`)
  return n
}

export function positiveNumberOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const x = Number(value)
  if (!Number.isFinite(x) || x <= 0) throw new CliError(`--${name} needs a positive number, got ${JSON.stringify(value)}.`)
  return x
}

/** A number within [lo, hi], or the default when the option is absent. */
export function rangeOption(value: string | undefined, name: string, lo: number, hi: number, fallback: number): number {
  if (value === undefined) return fallback
  const x = Number(value)
  if (!(x >= lo && x <= hi)) throw new CliError(`--${name} must be between ${lo} and ${hi}, got ${JSON.stringify(value)}.`)
  return x
}

/** One of a fixed set of words. */
export function choiceOption<const T extends string>(value: string | undefined, name: string, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined
  if (!(choices as readonly string[]).includes(value)) throw new CliError(`--${name} must be one of ${choices.join(', ')}.`)
  return value as T
}

export function backendOption(value: string | undefined): (typeof BACKEND_NAMES)[number] | undefined {
  return choiceOption(value, 'backend', BACKEND_NAMES)
}

/** A list like 3,6 (--layer of harvest, --features of formation). */
export function intListOption(value: string | undefined, name: string, example: string): number[] {
  if (value === undefined || !/^\d+(,\d+)*$/.test(value)) throw new CliError(`--${name} needs ${example}.`)
  return value.split(',').map(Number)
}

export function requireOptions<V extends Record<string, unknown>>(command: string, values: V, names: (keyof V & string)[]): void {
  for (const name of names) {
    if (values[name] === undefined) throw new CliError(`${command} needs --${name}. Run \`featuretrace help\` for usage.`)
  }
}

/** One workspace for the command's lifetime, with a project opened from --project. */
export function openWorkspace(values: { project?: string }, required = true, door: Door = 'cli', host: WorkspaceHost = {}): Workspace {
  const ws = new Workspace(door, nodeWorkerSpawner(), host)
  if (values.project) reportMissing(ws.open(values.project).info())
  else if (required) throw new CliError('This command needs --project DIR.')
  return ws
}

/** Runs `work` with the project of --project open, and closes it (with its worker processes) whatever happens. */
export async function withProject<T>(values: { project?: string }, work: (ws: Workspace) => Promise<T>): Promise<T> {
  const ws = openWorkspace(values)
  try {
    return await work(ws)
  } finally {
    ws.close()
  }
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
export function call<C extends CallName>(ws: Workspace, name: C, payload?: CallInput<C>): Promise<CallOutput<C>> {
  return callService(ws, name, payload)
}

interface Bar {
  update(p: { fraction: number; rate: number | null; rateUnit: string | null; etaSeconds: number | null; message: string | null }): void
  stop(done: boolean): void
}

export function formatRate(p: { rate: number | null; rateUnit: string | null }): string {
  if (p.rate === null) return ''
  return p.rateUnit === 'B/s' ? `${formatBytes(p.rate)}/s` : `${p.rate.toFixed(1)} ${p.rateUnit ?? ''}`
}

/** A terminal progress bar: fraction, rate, time left, message. */
export function progressBar(label: string): Bar {
  const bar = new SingleBar({
    // Time left is the job's own estimate (none until its pace is known), not the bar's guess from the first ticks.
    format: ' {bar} {percentage}% | {rate} | {left} | {message}',
    barsize: 30,
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 5000,
    etaBuffer: 50
  })
  bar.start(1000, 0, { rate: '', left: 'estimating…', message: label })
  return {
    update: (p) =>
      bar.update(Math.round(p.fraction * 1000), {
        rate: formatRate({ rate: p.rate, rateUnit: p.rateUnit }),
        left: p.etaSeconds === null ? 'estimating…' : `about ${formatDuration(Math.max(1, p.etaSeconds))} left`,
        message: p.message ?? ''
      }),
    stop(done) {
      if (done) bar.update(1000, { left: 'done' })
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
    void call(ws, 'jobs.cancel', { id: job.id })
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

/** Starts a job and runs it to its end; a job that did not finish is a CliError saying how it ended. */
export async function runJobToEnd<K extends Job['kind']>(
  ws: Workspace,
  request: CallInput<'jobs.start'> & { kind: K },
  stopped = ''
): Promise<Extract<Job, { kind: K }>> {
  const job = await runJob(ws, await call(ws, 'jobs.start', request))
  if (job.state !== 'done' || job.kind !== request.kind)
    throw new CliError(`Job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ''}${job.state === 'cancelled' ? stopped : ''}`)
  return job as Extract<Job, { kind: K }>
}

/** The ids of the checkpoints at the steps given with --checkpoint (repeatable). */
export async function checkpointIdsAt(ws: Workspace, value: string[] | undefined): Promise<number[]> {
  const steps = (value ?? []).map((v) => intOption(v, 'checkpoint')!)
  const all = await call(ws, 'checkpoints.list')
  return steps.map((step) => {
    const c = all.find((x) => x.step === step)
    if (!c) throw new CliError(`No checkpoint at step ${step} in this project.`)
    return c.id
  })
}

/** The one layer to work on: --layer, or the only layer `what` exist for; else a CliError naming the choices (or `none`). */
export function oneLayer(given: string | undefined, layers: number[], what: string, none: string): number {
  const distinct = [...new Set(layers)]
  const layer = intOption(given, 'layer') ?? (distinct.length === 1 ? distinct[0] : undefined)
  if (layer === undefined) throw new CliError(distinct.length ? `${what} exist for layers ${distinct.join(', ')}: choose one with --layer.` : none)
  return layer
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

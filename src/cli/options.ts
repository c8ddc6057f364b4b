// What every CLI command shares: option parsing, the workspace on --project, calls through the one API.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { ApiReply, CallInput, CallName, CallOutput } from '../shared/api'
import { nodeWorkerSpawner } from '../core/jobs/spawn'
import { createHandlers, dispatch, Workspace } from '../core/services'

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
export function openWorkspace(values: Record<string, unknown>, required = true): Workspace {
  const ws = new Workspace('cli', nodeWorkerSpawner())
  const project = values.project as string | undefined
  if (project) ws.open(project)
  else if (required) throw new CliError('This command needs --project DIR.')
  return ws
}

export async function call<C extends CallName>(ws: Workspace, name: C, payload?: CallInput<C>): Promise<CallOutput<C>> {
  const reply = (await dispatch(createHandlers(ws), name, payload)) as ApiReply<CallOutput<C>>
  if (!reply.ok) throw new CliError(reply.error.message)
  return reply.result
}

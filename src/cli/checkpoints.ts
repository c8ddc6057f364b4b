// `featuretrace checkpoints …` and `featuretrace verify`: registering a series and checking its weight files.
import { formatBytes } from '../shared/format'
import { describeSameWeights } from '../shared/checkpoints'
import { call, CliError, intOption, parse, PROJECT, runJobToEnd, withProject } from './options'

export const CHECKPOINTS_USAGE = `  checkpoints add FOLDER --project DIR [--tokens-per-step N] [--step N]
        Register checkpoint subfolders named by step (step1000, iter_0001000, checkpoint-1000, c1000).
  checkpoints list --project DIR [--json]    List registered checkpoints.
  checkpoints set-step ID STEP --project DIR Correct a checkpoint's parsed step.
  verify --project DIR [--checkpoint STEP ...] Check weight files (safetensors headers, sha256) as a job, and report
                                            steps whose tensors equal another step's (exit status 1 then too).`

async function add(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...PROJECT, 'tokens-per-step': { type: 'string' }, step: { type: 'string' } })
  if (positionals.length !== 1) throw new CliError('checkpoints add needs one FOLDER.')
  await withProject(values, async (ws) => {
    const result = await call(ws, 'checkpoints.register', {
      folder: positionals[0]!,
      tokensPerStep: intOption(values['tokens-per-step'], 'tokens-per-step'),
      step: intOption(values.step, 'step')
    })
    for (const c of result.added) console.log(`added    step ${c.step}\t${c.modelType}\td=${c.dModel}\tlayers=${c.layers}\t${c.path}`)
    for (const s of result.skipped) console.log(`skipped  ${s.path}: ${s.reason}`)
    console.log(`${result.added.length} added, ${result.skipped.length} skipped`)
  })
}

async function list(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, json: { type: 'boolean' } })
  await withProject(values, async (ws) => {
    const checkpoints = await call(ws, 'checkpoints.list')
    if (values.json) return console.log(JSON.stringify(checkpoints, null, 2))
    console.log(['id', 'step', 'name', 'model', 'd_model', 'layers', 'weights', 'verified', 'activations'].join('\t'))
    for (const c of checkpoints) {
      const acts = c.activations.map((a) => `L${a.layer}:${a.rows}`).join(',') || '-'
      console.log(
        [
          c.id,
          c.step,
          c.name,
          c.path === null ? 'SAE only' : c.modelType,
          c.dModel,
          c.layers ?? '-',
          formatBytes(c.weightsBytes, '-'),
          c.verifyStatus,
          acts
        ].join('\t')
      )
    }
  })
}

async function setStep(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, PROJECT)
  if (positionals.length !== 2) throw new CliError('checkpoints set-step needs ID and STEP.')
  await withProject(values, async (ws) => {
    const c = await call(ws, 'checkpoints.update', { id: intOption(positionals[0], 'id')!, step: intOption(positionals[1], 'step')! })
    console.log(`checkpoint ${c.id} (${c.name}) is now step ${c.step}`)
  })
}

export async function cmdCheckpoints(args: string[]): Promise<void> {
  const [sub, ...rest] = args
  if (sub === 'add') return add(rest)
  if (sub === 'list') return list(rest)
  if (sub === 'set-step') return setStep(rest)
  throw new CliError('Use `checkpoints add`, `checkpoints list` or `checkpoints set-step`.')
}

export async function cmdVerify(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, checkpoint: { type: 'string', multiple: true } })
  const steps = (values.checkpoint ?? []).map((v) => intOption(v, 'checkpoint')!)
  const job = await withProject(values, async (ws) => {
    // Steps, as every other command takes them; the job wants the checkpoints' ids.
    const all = await call(ws, 'checkpoints.list')
    const unknown = steps.filter((s) => !all.some((c) => c.step === s))
    if (unknown.length)
      throw new CliError(`No checkpoint at step ${unknown.join(', ')} in this project; its steps: ${all.map((c) => c.step).join(', ') || 'none registered'}.`)
    const ids = all.filter((c) => steps.includes(c.step)).map((c) => c.id)
    const job = await runJobToEnd(ws, { kind: 'verify-checkpoints', checkpointIds: ids }).catch((err: unknown) => err as Error)
    for (const c of await call(ws, 'checkpoints.list')) {
      if (ids.length && !ids.includes(c.id)) continue
      const detail = await call(ws, 'checkpoints.get', { id: c.id })
      console.log(`${c.verifyStatus === 'ok' ? 'ok      ' : 'PROBLEM '} step ${c.step}\t${c.name}`)
      for (const p of detail.verifyReport?.problems ?? []) console.log(`         ${p}`)
      for (const same of detail.sameWeights) console.log(`${same.kind === 'all' ? 'SAME    ' : 'note    '} ${describeSameWeights(c.step, same)}`)
    }
    return job
  })
  if (job instanceof Error) throw job
  if ((job.result?.['with problems'] ?? 0) > 0 || (job.result?.['same weights as another step'] ?? 0) > 0) process.exitCode = 1
}

// `featuretrace import-sae` and `featuretrace export-neuronpedia`: SAEs in from the Python ecosystem,
// features and labels out to Neuronpedia's layout.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { ApiReply, SaeImportItem, SaeImportRequest, SaeImportScan, SaeInfo } from '../shared/api'
import { UserError } from '../shared/api'
import { nodeWorkerSpawner } from '../core/jobs/spawn'
import { createHandlers, dispatch, Workspace } from '../core/services'
import { exportNeuronpedia } from '../core/analysis/neuronpedia'

export const IMPORT_SAE_USAGE = `  import-sae PATH --project DIR [--checkpoint STEP] [--layer L] [--hookpoint NAME] [--replace] [--dry-run]
        Import an SAE (or a folder of step folders, one SAE each) from SAELens, sparsify, Gemma Scope
        (params.npz) or llm-jp-sae, attached to the registered checkpoints by step. Shows what it found;
        imports all or nothing. --dry-run only shows.
  export-neuronpedia --project DIR --out DIR [--model ID] [--source-set NAME] [--checkpoint STEP]
        Features, examples and labels in Neuronpedia's batch layout (features/, activations/,
        explanations/ as batch-N.jsonl.gz), plus feature-examples.jsonl (FORMATS.md).`

function args(argv: string[], options: ParseArgsConfig['options']): { values: Record<string, unknown>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
    return { values: values as Record<string, unknown>, positionals }
  } catch (err) {
    throw new UserError(`${(err as Error).message}\nRun \`featuretrace help\` for usage.`)
  }
}

function int(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0) throw new UserError(`--${name} needs a non-negative integer, got ${JSON.stringify(value)}.`)
  return n
}

function workspace(project: unknown): Workspace {
  if (typeof project !== 'string') throw new UserError('This command needs --project DIR.')
  const ws = new Workspace('cli', nodeWorkerSpawner())
  ws.open(project)
  return ws
}

async function call<T>(ws: Workspace, name: 'saes.scanImport' | 'saes.import', payload: SaeImportRequest): Promise<T> {
  const reply = (await dispatch(createHandlers(ws), name, payload)) as ApiReply<T>
  if (!reply.ok) throw new UserError(reply.error.message)
  return reply.result
}

export function describeItem(s: SaeImportItem): string {
  const rule = s.architecture === 'topk' ? `TopK k=${s.k}` : `JumpReLU threshold ${s.threshold!.min.toPrecision(3)}…${s.threshold!.max.toPrecision(3)} (median ${s.threshold!.median.toPrecision(3)})`
  return `${s.format.padEnd(11)} step ${String(s.step ?? '?').padEnd(8)} layer ${String(s.layer ?? '?').padEnd(4)} d_in ${s.dIn} d_sae ${s.dSae} ${rule}, ${s.dtype}, input ${s.inputScaling}${s.applyBDecToInput ? '' : ', no b_dec on input'}  ${s.path}`
}

export async function cmdImportSae(argv: string[]): Promise<void> {
  const { values, positionals } = args(argv, {
    project: { type: 'string' },
    checkpoint: { type: 'string' },
    layer: { type: 'string' },
    hookpoint: { type: 'string' },
    replace: { type: 'boolean' },
    'dry-run': { type: 'boolean' }
  })
  if (positionals.length !== 1) throw new UserError('import-sae needs one PATH (an SAE folder or file, or a folder of step folders).')
  const ws = workspace(values.project)
  try {
    const req: SaeImportRequest = {
      path: positionals[0]!,
      step: int(values.checkpoint, 'checkpoint'),
      layer: int(values.layer, 'layer'),
      hookpoint: values.hookpoint as string | undefined,
      replace: Boolean(values.replace)
    }
    const scan = await call<SaeImportScan>(ws, 'saes.scanImport', req)
    for (const s of scan.found) console.log(`found  ${describeItem(s)}`)
    for (const n of new Set(scan.found.flatMap((s) => s.notes))) console.log(`note   ${n}`)
    if (values['dry-run']) {
      for (const p of scan.problems) console.log(`cannot ${p.path}: ${p.reason}`)
      return
    }
    const saes = await call<SaeInfo[]>(ws, 'saes.import', req)
    for (const s of saes) console.log(`imported step ${s.step} layer ${s.layer}: ${s.n} latents → ${s.path}`)
  } finally {
    ws.close()
  }
}

export async function cmdExportNeuronpedia(argv: string[]): Promise<void> {
  const { values } = args(argv, { project: { type: 'string' }, out: { type: 'string' }, model: { type: 'string' }, 'source-set': { type: 'string' }, checkpoint: { type: 'string' } })
  if (typeof values.out !== 'string') throw new UserError('export-neuronpedia needs --out DIR.')
  const ws = workspace(values.project)
  try {
    const r = exportNeuronpedia(ws.requireProject().project, values.out, {
      modelId: values.model as string | undefined,
      sourceSet: values['source-set'] as string | undefined,
      step: int(values.checkpoint, 'checkpoint')
    })
    for (const s of r.sources) console.log(`${s.id}: ${s.features} features, ${s.activations} activations, ${s.explanations} explanations`)
    console.log(`wrote ${r.dir}`)
  } finally {
    ws.close()
  }
}

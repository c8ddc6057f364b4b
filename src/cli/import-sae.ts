// `featuretrace import-sae` and `featuretrace export-neuronpedia`: SAEs in from the Python ecosystem,
// features and labels out to Neuronpedia's layout.
import type { SaeImportItem, SaeImportRequest } from '../shared/api'
import { UserError } from '../shared/api'
import { call, intOption, openWorkspace, parse } from './options'
import { exportNeuronpedia } from '../core/analysis/neuronpedia'

export const IMPORT_SAE_USAGE = `  import-sae PATH --project DIR [--checkpoint STEP] [--layer L] [--hookpoint PATH] [--sae-only] [--replace] [--dry-run]
        Import an SAE (or a folder of step folders, one SAE each) from SAELens, sparsify, Gemma Scope
        (params.npz) or llm-jp-sae, attached to the registered checkpoints by step, at the layer its hook
        reads (SAEs of other streams than the residual stream are refused). Shows what it found, with
        each SAE's hook; imports all or nothing. --hookpoint picks one SAE by its path below a step folder
        (layers.2, best/layers.2). --sae-only records steps without a registered checkpoint as SAE-only
        checkpoints (no weights), as an import into a project without weights does. Keys read: docs/sae-formats.md.
        --dry-run only shows.
  export-neuronpedia --project DIR --out DIR [--model ID] [--source-set NAME] [--checkpoint STEP]
        Features, examples and labels in Neuronpedia's batch layout (features/, activations/,
        explanations/ as batch-N.jsonl.gz), plus feature-examples.jsonl (FORMATS.md).`

export function describeItem(s: SaeImportItem): string {
  const rule =
    s.architecture === 'topk'
      ? `TopK k=${s.k}`
      : s.architecture === 'standard'
        ? 'ReLU (standard)'
        : `JumpReLU threshold ${s.threshold!.min.toPrecision(3)}…${s.threshold!.max.toPrecision(3)} (median ${s.threshold!.median.toPrecision(3)})`
  const step = `${s.step ?? '?'}${s.newCheckpoint ? ' (new, SAE only)' : ''}`
  const hook = s.hook ? `, hook ${s.hook}${s.stream === 'residual' ? '' : ` (${s.stream})`}` : ''
  return `${s.format.padEnd(11)} step ${step.padEnd(8)} layer ${String(s.layer ?? '?').padEnd(4)} d_in ${s.dIn} d_sae ${s.dSae} ${rule}, ${s.dtype}, input ${s.inputScaling}${s.applyBDecToInput ? '' : ', no b_dec on input'}${hook}  ${s.path}`
}

export async function cmdImportSae(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    project: { type: 'string' },
    checkpoint: { type: 'string' },
    layer: { type: 'string' },
    hookpoint: { type: 'string' },
    replace: { type: 'boolean' },
    'sae-only': { type: 'boolean' },
    'dry-run': { type: 'boolean' }
  })
  if (positionals.length !== 1) throw new UserError('import-sae needs one PATH (an SAE folder or file, or a folder of step folders).')
  const ws = openWorkspace(values)
  try {
    const req: SaeImportRequest = {
      path: positionals[0]!,
      step: intOption(values.checkpoint, 'checkpoint'),
      layer: intOption(values.layer, 'layer'),
      hookpoint: values.hookpoint as string | undefined,
      replace: Boolean(values.replace),
      saeOnly: Boolean(values['sae-only'])
    }
    const scan = await call(ws, 'saes.scanImport', req)
    for (const s of scan.found) console.log(`found  ${describeItem(s)}`)
    for (const n of new Set(scan.found.flatMap((s) => s.notes))) console.log(`note   ${n}`)
    if (values['dry-run']) {
      for (const p of scan.problems) console.log(`cannot ${p.path}: ${p.reason}`)
      return
    }
    const saes = await call(ws, 'saes.import', req)
    for (const s of saes) console.log(`imported step ${s.step} layer ${s.layer}${s.hook ? ` (hook ${s.hook})` : ''}: ${s.n} latents → ${s.path}`)
  } finally {
    ws.close()
  }
}

export async function cmdExportNeuronpedia(argv: string[]): Promise<void> {
  const { values } = parse(argv, { project: { type: 'string' }, out: { type: 'string' }, model: { type: 'string' }, 'source-set': { type: 'string' }, checkpoint: { type: 'string' } })
  if (typeof values.out !== 'string') throw new UserError('export-neuronpedia needs --out DIR.')
  const ws = openWorkspace(values)
  try {
    const r = exportNeuronpedia(ws.requireProject().project, values.out, {
      modelId: values.model as string | undefined,
      sourceSet: values['source-set'] as string | undefined,
      step: intOption(values.checkpoint, 'checkpoint')
    })
    for (const s of r.sources) console.log(`${s.id}: ${s.features} features, ${s.activations} activations, ${s.explanations} explanations`)
    console.log(`wrote ${r.dir}`)
  } finally {
    ws.close()
  }
}

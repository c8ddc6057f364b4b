// `featuretrace import-sae`, `export-sae` and `export-neuronpedia`: SAEs in from the Python ecosystem and out
// again in SAELens' layout, features and labels out to Neuronpedia's layout.
import type { SaeImportItem, SaeImportRequest } from '../shared/api'
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Sae } from '../core/sae/sae'
import { call, CliError, intOption, parse, PROJECT, runJobToEnd, withProject } from './options'

export const IMPORT_SAE_USAGE = `  import-sae PATH --project DIR [--checkpoint STEP] [--layer L] [--hookpoint PATH] [--sae-only] [--replace] [--dry-run]
        Import an SAE (or a folder of step folders, one SAE each) from SAELens, sparsify, Gemma Scope
        (params.npz) or llm-jp-sae, attached to the registered checkpoints by step, at the layer its hook
        reads (SAEs of other streams than the residual stream are refused). Shows what it found, with
        each SAE's hook; imports all or nothing. --hookpoint picks one SAE by its path below a step folder
        (layers.2, best/layers.2). --sae-only records steps without a registered checkpoint as SAE-only
        checkpoints (no weights), as an import into a project without weights does. Keys read: docs/sae-formats.md.
        --dry-run only shows.
  export-sae SAE_DIR --out DIR [--model-name NAME] [--hook HOOK]
        Writes an SAE folder again in the SAELens layout FeatureTrace now writes, which SAELens 5.x
        and 6.x load and encode as FeatureTrace does (for SAEs written before it: their input
        scaling is folded into the weights). --model-name and --hook replace what cfg.json says.
  export-neuronpedia --project DIR --out DIR [--model ID] [--source-set NAME] [--creator-id USER_ID] [--owner ORG]
          [--checkpoint STEP]
        Features, examples and labels in Neuronpedia's batch layout (features/, activations/,
        explanations/ as batch-N.jsonl.gz), plus feature-examples.jsonl (FORMATS.md). Ids are
        lower-case letters, digits, - and _ (--model defaults to the project's name made so); the
        layer L SAE is source "L-1-SET__stepS" (Neuronpedia's blocks.L-1.hook_resid_post; "e" for 0).
        Records are created by, and labels authored by, the Neuronpedia user --creator-id (default:
        the bot user Neuronpedia's seed creates); labels are explanations of type "human".`

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
    ...PROJECT,
    checkpoint: { type: 'string' },
    layer: { type: 'string' },
    hookpoint: { type: 'string' },
    replace: { type: 'boolean' },
    'sae-only': { type: 'boolean' },
    'dry-run': { type: 'boolean' }
  })
  if (positionals.length !== 1) throw new CliError('import-sae needs one PATH (an SAE folder or file, or a folder of step folders).')
  await withProject(values, async (ws) => {
    const req: SaeImportRequest = {
      path: positionals[0]!,
      step: intOption(values.checkpoint, 'checkpoint'),
      layer: intOption(values.layer, 'layer'),
      hookpoint: values.hookpoint,
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
    // The sae-import job reads and converts in the worker, with a progress bar; Ctrl-C cancels it, leaving nothing.
    const job = await runJobToEnd(ws, { ...req, kind: 'sae-import' }, ': nothing was imported')
    const saes = await call(ws, 'saes.list', { includeSuperseded: true })
    for (const id of job.result?.saeIds ?? []) {
      const s = saes.find((x) => x.id === id)
      if (s) console.log(`imported step ${s.step} layer ${s.layer}${s.hook ? ` (hook ${s.hook})` : ''}: ${s.n} latents → ${s.path}`)
    }
  })
}

export async function cmdExportSae(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { out: { type: 'string' }, 'model-name': { type: 'string' }, hook: { type: 'string' } })
  if (positionals.length !== 1 || values.out === undefined) throw new CliError('export-sae needs one SAE_DIR and --out DIR.')
  const out = resolve(values.out)
  if (existsSync(out) && readdirSync(out).length > 0) throw new CliError(`${out} exists and is not empty; choose an empty or new folder.`)
  const sae = await Sae.load(resolve(positionals[0]!))
  const saved = sae.savedOptions()
  mkdirSync(out, { recursive: true })
  await sae.save(out, {
    ...saved,
    modelName: values['model-name'] ?? saved.modelName,
    hookName: values.hook ?? saved.hookName
  })
  const cfg = JSON.parse(readFileSync(join(out, 'cfg.json'), 'utf8')) as {
    normalize_activations: string
    metadata: { model_name: string | null; hook_name: string }
  }
  console.log(
    `wrote ${out}: ${sae.rule.architecture}, d_in ${sae.d}, d_sae ${sae.n}, normalize_activations ${cfg.normalize_activations}, model ${cfg.metadata.model_name ?? '(unknown)'}, hook ${cfg.metadata.hook_name}`
  )
}

export async function cmdExportNeuronpedia(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    ...PROJECT,
    out: { type: 'string' },
    model: { type: 'string' },
    'source-set': { type: 'string' },
    'creator-id': { type: 'string' },
    owner: { type: 'string' },
    checkpoint: { type: 'string' }
  })
  if (values.out === undefined) throw new CliError('export-neuronpedia needs --out DIR.')
  await withProject(values, async (ws) => {
    const r = await call(ws, 'features.exportNeuronpedia', {
      path: values.out!,
      modelId: values.model,
      sourceSet: values['source-set'],
      creatorId: values['creator-id'],
      owner: values.owner,
      step: intOption(values.checkpoint, 'checkpoint')
    })
    for (const s of r.sources) console.log(`${r.modelId}/${s.id}: ${s.features} features, ${s.activations} activations, ${s.explanations} explanations`)
    console.log(`wrote ${r.dir}`)
  })
}

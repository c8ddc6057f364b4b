// `featuretrace harvest`, `harvest-series` and `import-activations`: residual-stream activations of a corpus.
import { join } from 'node:path'
import { harvest } from '../core/lm/harvest'
import { currentBackend } from '../core/tf/backend'
import {
  backendOption,
  call,
  checkpointIdsAt,
  choiceOption,
  CliError,
  intListOption,
  intOption,
  parse,
  PROJECT,
  requireOptions,
  runInProcess,
  runJobToEnd,
  withProject
} from './options'

export const HARVEST_USAGE = `  harvest --model DIR --corpus FILE --layer L --out DIR [--context 64] [--max-tokens N]
          [--dtype f16|f32] [--seed S] [--lang TAG] [--drop-short] [--final-norm] [--batch B]
          [--backend tensorflow|webgpu|ort|wasm|cpu]
        Residual-stream activations after block L (0 = embeddings; a list like 3,6 writes
        DIR/layerL for each) for every token of the corpus (JSON Lines or tagged text), as a
        sharded activation store. Interrupted harvests resume when run again.
  harvest-series --project DIR --corpus FILE --layer L [--checkpoint STEP ...] [harvest options]
        The same for every registered checkpoint (or the steps given), as a job, into the
        project's artifacts/activations/stepS/layerL.
  import-activations DIR --project DIR --checkpoint STEP
        Attach an activation store made elsewhere (resources/harvest_activations.py).`

/** Options shared by `harvest` and `harvest-series`. */
const HARVEST_OPTIONS = {
  corpus: { type: 'string' },
  layer: { type: 'string' },
  context: { type: 'string' },
  'max-tokens': { type: 'string' },
  dtype: { type: 'string' },
  seed: { type: 'string' },
  lang: { type: 'string' },
  'drop-short': { type: 'boolean' },
  backend: { type: 'string' }
} as const

const DTYPES = ['f16', 'f32'] as const

export async function cmdHarvest(args: string[]): Promise<void> {
  const { values } = parse(args, {
    ...HARVEST_OPTIONS,
    model: { type: 'string' },
    out: { type: 'string' },
    'final-norm': { type: 'boolean' },
    batch: { type: 'string' }
  })
  requireOptions('harvest', values, ['model', 'corpus', 'layer', 'out'])
  const dtype = choiceOption(values.dtype, 'dtype', DTYPES) ?? 'f16'
  const backend = backendOption(values.backend)
  const layers = intListOption(values.layer, 'layer', 'a layer number or a list like 3,6')
  const out = values.out!
  const result = await runInProcess('harvest', 'the harvest resumes where it stopped when run again.', (ctx) =>
    harvest(
      {
        model: values.model!,
        corpus: values.corpus!,
        corpusLang: values.lang,
        layers,
        out: (L) => (layers.length === 1 ? out : join(out, `layer${L}`)),
        context: intOption(values.context, 'context'),
        maxTokens: intOption(values['max-tokens'], 'max-tokens'),
        dtype,
        seed: intOption(values.seed, 'seed'),
        dropShort: Boolean(values['drop-short']),
        finalNorm: Boolean(values['final-norm']),
        batchSequences: intOption(values.batch, 'batch'),
        backend,
        log: (line) => console.log(line)
      },
      ctx
    )
  )
  console.log(`backend: ${currentBackend()?.name ?? result.backend} (${currentBackend()?.reason ?? ''})`)
  for (const note of result.notes) console.log(`note: ${note}`)
  for (const s of result.stores) console.log(`layer ${s.layer}: ${s.rows} rows × d=${s.manifest.d} (${s.manifest.dtype}) → ${s.dir}`)
  if (result.tokensPerSecond !== null) console.log(`${result.tokensPerSecond.toFixed(0)} tokens/s`)
}

export async function cmdHarvestSeries(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, ...HARVEST_OPTIONS, checkpoint: { type: 'string', multiple: true } })
  if (!values.corpus || values.layer === undefined) throw new CliError('harvest-series needs --corpus FILE and --layer L.')
  const job = await withProject(values, async (ws) =>
    runJobToEnd(ws, {
      kind: 'harvest',
      checkpointIds: await checkpointIdsAt(ws, values.checkpoint),
      corpus: values.corpus!,
      lang: values.lang,
      layer: intOption(values.layer, 'layer')!,
      context: intOption(values.context, 'context'),
      maxTokens: intOption(values['max-tokens'], 'max-tokens'),
      dtype: choiceOption(values.dtype, 'dtype', DTYPES),
      seed: intOption(values.seed, 'seed'),
      dropShort: Boolean(values['drop-short']),
      backend: backendOption(values.backend)
    })
  )
  const r = job.result
  if (!r) return
  if (r['special tokens']) console.log(`tokens: ${r['special tokens']}`)
  console.log(`harvested ${r.tokens.toLocaleString('en')} tokens from ${r.checkpoints} checkpoints on ${r.backend}`)
}

export async function cmdImportActivations(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...PROJECT, checkpoint: { type: 'string' } })
  if (positionals.length !== 1 || values.checkpoint === undefined) throw new CliError('import-activations needs DIR and --checkpoint STEP.')
  const step = intOption(values.checkpoint, 'checkpoint')!
  await withProject(values, async (ws) => {
    const c = (await call(ws, 'checkpoints.list')).find((x) => x.step === step)
    if (!c) throw new CliError(`No checkpoint at step ${step} in this project; register it first.`)
    const info = await call(ws, 'activations.import', { path: positionals[0]!, checkpointId: c.id })
    console.log(`imported layer ${info.layer}: ${info.rows} rows × d=${info.d} for step ${info.step}`)
  })
}

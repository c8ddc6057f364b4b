// `featuretrace train` and `train-series`: TopK SAEs on activation stores, one or a warm-started series.
import type { CallInput } from '../shared/api'
import type { Workspace } from '../core/services'
import { INPUT_SCALINGS, PRESETS, type TrainOverrides } from '../core/sae/config'
import { trainSae } from '../core/sae/train'
import { initBackend } from '../core/tf/backend'
import {
  backendOption,
  call,
  checkpointIdsAt,
  choiceOption,
  intOption,
  oneLayer,
  parse,
  positiveNumberOption,
  PROJECT,
  requireOptions,
  runInProcess,
  runJobToEnd,
  withProject
} from './options'

export const TRAIN_USAGE = `  train --activations PATH --out DIR [--latents N] [--k K] [--preset inaba2025|sae-track|gao2024]
        [--init SAE_DIR] [--tokens N] [--batch B] [--lr X] [--warmup S] [--seed S] [--scaling
        none|unit_norm|layer_norm|constant] [--aux-k K] [--eval-rows N] [--log-every S]
        [--checkpoint-every S] [--backend B] [--model-name NAME] [--hook HOOK]
        Train a TopK SAE on an activation store (or a safetensors file with an "activations"
        [rows, d] tensor), in SAELens layout (SAELens 5.x and 6.x load it and encode raw
        activations as FeatureTrace does). --init warm-starts from an SAE. Resumable.
        --model-name: SAELens' model_name (default: from the checkpoint folder the store was
        harvested from). --hook: its hook_name (default: the store's layer as a TransformerLens
        residual hook; for a plain file, the placeholder featuretrace.unnamed_hook).
  train-series --project DIR [--preset sae-track] [--layer L] [--checkpoint STEP ...] [--retrain] [train options]
        One SAE per checkpoint with activations, in step order: the first from scratch, each next
        warm-started from the previous (SAE-Track). A job; resumes where it stopped. Checkpoints that
        already have an SAE keep it unless --retrain: then the new SAEs become current and the old
        ones are kept (superseded) with their feature sets and labels. Every train option but --init
        is forwarded: --warmup to the first SAE, the others to every SAE of the series.`

/** Options shared by `train` and `train-series`. */
export const TRAIN_OPTIONS = {
  preset: { type: 'string' },
  latents: { type: 'string' },
  k: { type: 'string' },
  tokens: { type: 'string' },
  batch: { type: 'string' },
  lr: { type: 'string' },
  warmup: { type: 'string' },
  seed: { type: 'string' },
  scaling: { type: 'string' },
  'aux-k': { type: 'string' },
  'eval-rows': { type: 'string' },
  'log-every': { type: 'string' },
  'checkpoint-every': { type: 'string' },
  backend: { type: 'string' },
  'model-name': { type: 'string' }
} as const

type TrainValues = { [K in keyof typeof TRAIN_OPTIONS]?: string }

/** The SAE settings of the train options, checked (each absent one leaves the preset's). */
export function trainOverrides(values: TrainValues): TrainOverrides {
  return {
    n: intOption(values.latents, 'latents'),
    k: intOption(values.k, 'k'),
    tokens: intOption(values.tokens, 'tokens'),
    batchSize: intOption(values.batch, 'batch'),
    lr: positiveNumberOption(values.lr, 'lr'),
    warmupSteps: intOption(values.warmup, 'warmup'),
    seed: intOption(values.seed, 'seed'),
    inputScaling: choiceOption(values.scaling, 'scaling', INPUT_SCALINGS),
    auxK: intOption(values['aux-k'], 'aux-k'),
    evalRows: intOption(values['eval-rows'], 'eval-rows'),
    logEvery: intOption(values['log-every'], 'log-every'),
    checkpointEvery: intOption(values['checkpoint-every'], 'checkpoint-every')
  }
}

export async function cmdTrain(args: string[]): Promise<void> {
  const { values } = parse(args, {
    ...TRAIN_OPTIONS,
    activations: { type: 'string' },
    out: { type: 'string' },
    init: { type: 'string' },
    hook: { type: 'string' }
  })
  requireOptions('train', values, ['activations', 'out'])
  const backend = await initBackend(backendOption(values.backend), { asyncReads: true })
  console.log(`backend: ${backend.name} (${backend.reason})`)
  const r = await runInProcess('training', 'the training state is saved and the same command resumes it.', (ctx) =>
    trainSae(
      {
        activations: values.activations!,
        out: values.out!,
        preset: choiceOption(values.preset, 'preset', PRESETS) ?? 'inaba2025',
        init: values.init,
        backend: backend.name,
        overrides: trainOverrides(values),
        meta: { hookName: values.hook, ...(values['model-name'] !== undefined ? { modelName: values['model-name'] } : {}) }
      },
      ctx
    )
  )
  const e = r.eval
  console.log(
    `${r.resumed ? 'resumed and finished' : 'trained'}: n=${r.config.n} k=${r.config.k}, ${r.steps} steps, ${r.tokens.toLocaleString('en')} tokens → ${r.dir}`
  )
  console.log(
    `held-out (${e.rows} rows${e.onTrainingRows ? ', training rows: too few to hold out' : ''}): FVU ${e.fvu.toFixed(4)}, explained variance ${e.explainedVariance.toFixed(4)}, cosine ${e.cosine.toFixed(4)}, L0 ${e.l0.toFixed(1)}, dead ${(100 * e.deadFraction).toFixed(1)}%`
  )
}

const SERIES_OPTIONS = {
  ...PROJECT,
  ...TRAIN_OPTIONS,
  layer: { type: 'string' },
  checkpoint: { type: 'string', multiple: true },
  retrain: { type: 'boolean' }
} as const

/** The train-series job a command line asks for: every option it accepts goes into the request. */
export async function trainSeriesRequest(ws: Workspace, args: string[]): Promise<CallInput<'jobs.start'> & { kind: 'train-series' }> {
  const { values } = parse(args, SERIES_OPTIONS)
  const layer = oneLayer(
    values.layer,
    (await call(ws, 'activations.list')).map((s) => s.layer),
    'Activations',
    'No activations yet: run harvest-series first.'
  )
  const o = trainOverrides(values)
  return {
    kind: 'train-series',
    checkpointIds: await checkpointIdsAt(ws, values.checkpoint),
    layer,
    preset: choiceOption(values.preset, 'preset', PRESETS) ?? 'sae-track',
    n: o.n,
    k: o.k,
    tokens: o.tokens ?? undefined,
    batchSize: o.batchSize,
    lr: o.lr,
    warmupSteps: o.warmupSteps,
    seed: o.seed,
    inputScaling: o.inputScaling,
    auxK: o.auxK,
    evalRows: o.evalRows,
    logEvery: o.logEvery,
    checkpointEvery: o.checkpointEvery,
    retrain: Boolean(values.retrain),
    backend: backendOption(values.backend),
    modelName: values['model-name']
  }
}

export async function cmdTrainSeries(args: string[]): Promise<void> {
  const { values } = parse(args, SERIES_OPTIONS)
  await withProject(values, async (ws) => {
    const request = await trainSeriesRequest(ws, args)
    const job = await runJobToEnd(ws, request, ' (run again to resume)')
    if (job.result?.kept) console.log(job.result.kept)
    console.log(['step', 'layer', 'n', 'k', 'tokens', 'FVU', 'expl.var', 'L0', 'dead', 'warm'].join('\t'))
    for (const s of await call(ws, 'saes.list')) {
      if (s.layer !== request.layer) continue
      console.log(
        [
          s.step,
          s.layer,
          s.n,
          s.k,
          s.tokens,
          s.fvu?.toFixed(4),
          s.explainedVariance?.toFixed(4),
          s.l0?.toFixed(1),
          `${((s.deadFraction ?? 0) * 100).toFixed(1)}%`,
          s.warmStarted ? 'yes' : 'no'
        ].join('\t')
      )
    }
  })
}

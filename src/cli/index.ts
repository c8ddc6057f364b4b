// `featuretrace <command>`: the same services from a terminal.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { backendOption, call, checkpointIdsAt, CliError, intOption, openWorkspace, parse, requireOptions, runInProcess, runJob, type Options } from './options'
import { startServer } from '../server/server'
import { VERSION } from '../core/version'
import { harvest } from '../core/lm/harvest'
import { currentBackend, initBackend, type BackendName } from '../core/tf/backend'
import { formatBytes } from '../shared/format'
import { INPUT_SCALINGS, PRESETS, type PresetName, type TrainOverrides } from '../core/sae/config'
import { trainSae } from '../core/sae/train'
import { classifyFeature, PAPER_RULE } from '../core/analysis/language'
import { readFeatureExamples } from '../core/io/feature-examples'
import { exportFeatures, exportLabels, importLabels } from '../core/analysis/interchange'
import { computeDrift, writeDrift } from '../core/analysis/drift'
import { computeFormation } from '../core/analysis/formation'
import { layerSeries } from '../core/analysis/layer-series'
import { writeFileSync } from 'node:fs'
import { cmdExportNeuronpedia, cmdExportSae, cmdImportSae, IMPORT_SAE_USAGE } from './import-sae'
import { cmdGeometry, GEOMETRY_USAGE } from './geometry'

const USAGE = `FeatureTrace ${VERSION}: trace how language-model features form across training checkpoints.

Usage: featuretrace <command> [options]

Commands:
  serve [--project DIR] [--port N] [--host H]
        Serve the workstation to a browser (default 127.0.0.1:5180). Any host other than
        loopback requires the access token printed at start.
  project --project DIR                      Show the project (created when the folder is missing or empty).
  project relocate --project DIR --from OLD --to NEW
        Point the checkpoint folders, corpora and stores the project keeps outside its folder, and
        stored under OLD, at the same places under NEW (checked first: each checkpoint needs its
        config.json). Paths inside the project folder are stored relative: it can be moved or copied.
  checkpoints add FOLDER --project DIR [--tokens-per-step N] [--step N]
        Register checkpoint subfolders named by step (step1000, iter_0001000, checkpoint-1000, c1000).
  checkpoints list --project DIR [--json]    List registered checkpoints.
  checkpoints set-step ID STEP --project DIR Correct a checkpoint's parsed step.
  verify --project DIR [--checkpoint ID ...] Check weight files (safetensors headers, sha256) as a job.
  jobs --project DIR [--json]                List jobs and their states.
  harvest --model DIR --corpus FILE --layer L --out DIR [--context 64] [--max-tokens N]
          [--dtype f16|f32] [--seed S] [--lang TAG] [--drop-short] [--final-norm] [--batch B]
          [--backend tensorflow|wasm|cpu]
        Residual-stream activations after block L (0 = embeddings; a list like 3,6 writes
        DIR/layerL for each) for every token of the corpus (JSON Lines or tagged text), as a
        sharded activation store. Interrupted harvests resume when run again.
  harvest-series --project DIR --corpus FILE --layer L [--checkpoint STEP ...] [harvest options]
        The same for every registered checkpoint (or the steps given), as a job, into the
        project's artifacts/activations/stepS/layerL.
  import-activations DIR --project DIR --checkpoint STEP
        Attach an activation store made elsewhere (resources/harvest_activations.py).
  train --activations PATH --out DIR [--latents N] [--k K] [--preset inaba2025|sae-track|gao2024]
        [--init SAE_DIR] [--tokens N] [--batch B] [--lr X] [--warmup S] [--seed S] [--scaling
        none|unit_norm|layer_norm|constant] [--aux-k K] [--eval-rows N] [--backend B]
        [--model-name NAME] [--hook HOOK]
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
        ones are kept (superseded) with their feature sets and labels.
  classify-language FILE.jsonl [--threshold 0.9]
        The language of each feature of a feature-example set by Inaba et al.'s rule, as JSON:
        {"features": [{"checkpoint", "feature", "counts": {"en", "ja"}, "class"}], "totals": {...}}.
  import-features FILE.jsonl --project DIR [--name NAME]
        Import a feature-example set made elsewhere (labels and notes included), one set per checkpoint.
  export-features --project DIR [--checkpoint C] [--annotator A] --out FILE.jsonl
        Write features (examples, label, note) as a feature-example set.
  taxonomy --project DIR [--set "Token-level,Concept-level,…"]   Show or replace the label categories.
  labels export --project DIR --out FILE.csv|FILE.json
  labels import FILE.csv|FILE.json --project DIR [--overwrite]
        Merge labels, reporting conflicts (kept as they are unless --overwrite).
  labels carry --project DIR --from SET_ID [--to SET_ID] [--min-cosine 0.7] [--dry-run]
        Copy the labels of a superseded SAE's feature set to the SAE that replaced it, each labelled
        feature matched one-to-one by decoder cosine; prints every match with its cosine.
  drift --sae DIR [--sae DIR …] [--match] --out FILE.safetensors
        Decoder-row cosines along a series of SAEs (given in step order): float32 cos_to_final and
        cos_to_previous [checkpoints, n]; with --match also int32 match_to_final and float32 match_cos
        (optimal one-to-one assignment by decoder cosine; exact up to 16,384 latents, greedy beyond).
  formation --project DIR --features F1,F2,… --out FILE.json [--layer L] [--threshold 0.5]
        SAE-Track's progress measure M_i(t) = S_feat(t) − S_rand(t) per checkpoint (and the raw,
        Jaccard and weighted-Jaccard variants), with each feature's formation step.
  demo [--project DIR] [--report DIR] [--small]
        The bundled English/Japanese demo series end to end, headless: register its checkpoints,
        harvest layer 2, train the warm-started SAE series, feature statistics with languages, drift
        and formation (each a job with progress; whatever the project already has is skipped).
        --report writes report.json and report.html (charts inlined, opens offline).
        Default project: projects/demo beside the app. --small: the reduced run of the test suite.
${IMPORT_SAE_USAGE}
${GEOMETRY_USAGE}
  help                                       This text.

Every command that takes --project creates the project there when the folder is missing or empty.`

const PROJECT: Options = { project: { type: 'string' } }









async function cmdServe(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, port: { type: 'string' }, host: { type: 'string' } })
  // The browser mode keeps recent projects for its start page (FEATURETRACE_CONFIG_DIR, else ~/.config/featuretrace)
  // and puts the demo project under FEATURETRACE_DOCUMENTS_DIR, else ~/Documents.
  const { UserSettings, defaultSettingsFile, defaultDocumentsDir } = await import('../core/user-settings')
  const ws = openWorkspace(values, false, 'browser', {
    settings: new UserSettings(defaultSettingsFile()),
    documentsDir: process.env.FEATURETRACE_DOCUMENTS_DIR || defaultDocumentsDir(),
    log: (message) => console.log(`[featuretrace] ${message}`)
  })
  const here = dirname(fileURLToPath(import.meta.url))
  const server = await startServer({
    workspace: ws,
    host: (values.host as string | undefined) ?? '127.0.0.1',
    port: intOption(values.port, 'port') ?? 5180,
    staticDir: join(here, '../renderer')
  })
  console.log(`FeatureTrace ${VERSION} serving ${ws.project ? ws.project.path : '(no project open)'}`)
  if (server.token) {
    console.log(`Bound to ${server.host}: every request needs the access token.`)
    console.log(`Access token: ${server.token}`)
  }
  // From a wildcard bind the first address is this machine's on the network: the one to give another machine.
  const [first, ...others] = server.urls
  console.log(`Open ${first}`)
  for (const u of others) console.log(`  or ${u}`)
  const stop = (): void => {
    void server.close().then(() => {
      ws.close()
      process.exit(0)
    })
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

async function cmdProject(args: string[]): Promise<void> {
  if (args[0] === 'relocate') {
    const { values } = parse(args.slice(1), { ...PROJECT, from: { type: 'string' }, to: { type: 'string' } })
    requireOptions('project relocate', values, ['project', 'from', 'to'])
    const ws = openWorkspace(values)
    try {
      const r = await call(ws, 'project.relocate', { from: values.from as string, to: values.to as string })
      for (const m of r.relocated) console.log(`${m.what}: ${m.from} → ${m.to}`)
      console.log(r.project.missing.length ? `still missing: ${r.project.missing.map((m) => `${m.what} (${m.path})`).join('; ')}` : 'nothing is missing')
    } finally {
      ws.close()
    }
    return
  }
  const { values, positionals } = parse(args, PROJECT)
  if (positionals.length) throw new CliError(`Unknown project command "${positionals[0]}". Run \`featuretrace help\` for usage.`)
  const ws = openWorkspace(values)
  console.log(JSON.stringify(await call(ws, 'project.info'), null, 2))
  ws.close()
}

async function cmdCheckpoints(args: string[]): Promise<void> {
  const [sub, ...rest] = args
  if (sub === 'add') {
    const { values, positionals } = parse(rest, {
      ...PROJECT,
      'tokens-per-step': { type: 'string' },
      step: { type: 'string' }
    })
    if (positionals.length !== 1) throw new CliError('checkpoints add needs one FOLDER.')
    const ws = openWorkspace(values)
    const result = await call(ws, 'checkpoints.register', {
      folder: positionals[0]!,
      tokensPerStep: intOption(values['tokens-per-step'], 'tokens-per-step'),
      step: intOption(values.step, 'step')
    })
    for (const c of result.added) console.log(`added    step ${c.step}\t${c.modelType}\td=${c.dModel}\tlayers=${c.layers}\t${c.path}`)
    for (const s of result.skipped) console.log(`skipped  ${s.path}: ${s.reason}`)
    console.log(`${result.added.length} added, ${result.skipped.length} skipped`)
    ws.close()
  } else if (sub === 'list') {
    const { values } = parse(rest, { ...PROJECT, json: { type: 'boolean' } })
    const ws = openWorkspace(values)
    const list = await call(ws, 'checkpoints.list')
    if (values.json) console.log(JSON.stringify(list, null, 2))
    else {
      console.log(['id', 'step', 'name', 'model', 'd_model', 'layers', 'weights', 'verified', 'activations'].join('\t'))
      for (const c of list) {
        const acts = c.activations.map((a) => `L${a.layer}:${a.rows}`).join(',') || '-'
        console.log([c.id, c.step, c.name, c.path === null ? 'SAE only' : c.modelType, c.dModel, c.layers ?? '-', formatBytes(c.weightsBytes, '-'), c.verifyStatus, acts].join('\t'))
      }
    }
    ws.close()
  } else if (sub === 'set-step') {
    const { values, positionals } = parse(rest, PROJECT)
    if (positionals.length !== 2) throw new CliError('checkpoints set-step needs ID and STEP.')
    const ws = openWorkspace(values)
    const c = await call(ws, 'checkpoints.update', {
      id: intOption(positionals[0], 'id')!,
      step: intOption(positionals[1], 'step')!
    })
    console.log(`checkpoint ${c.id} (${c.name}) is now step ${c.step}`)
    ws.close()
  } else {
    throw new CliError('Use `checkpoints add`, `checkpoints list` or `checkpoints set-step`.')
  }
}

async function cmdVerify(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, checkpoint: { type: 'string', multiple: true } })
  const ws = openWorkspace(values)
  const ids = ((values.checkpoint as string[] | undefined) ?? []).map((v) => intOption(v, 'checkpoint')!)
  const job = await runJob(ws, await call(ws, 'jobs.start', { kind: 'verify-checkpoints', checkpointIds: ids }))
  for (const c of await call(ws, 'checkpoints.list')) {
    if (ids.length && !ids.includes(c.id)) continue
    const detail = await call(ws, 'checkpoints.get', { id: c.id })
    console.log(`${c.verifyStatus === 'ok' ? 'ok      ' : 'PROBLEM '} step ${c.step}\t${c.name}`)
    for (const p of detail.verifyReport?.problems ?? []) console.log(`         ${p}`)
  }
  ws.close()
  if (job.state !== 'done') throw new CliError(`Job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ''}`)
  const result = job.result as { 'with problems': number }
  if (result['with problems'] > 0) process.exitCode = 1
}

async function cmdJobs(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, json: { type: 'boolean' } })
  const ws = openWorkspace(values)
  const jobs = await call(ws, 'jobs.list')
  if (values.json) console.log(JSON.stringify(jobs, null, 2))
  else for (const j of jobs) console.log([j.id, j.kind, j.state, `${Math.round(j.fraction * 100)}%`, j.createdAt, j.error ?? ''].join('\t'))
  ws.close()
}

/** Options shared by `harvest` and `harvest-series`. */
const HARVEST_OPTIONS: Options = {
  corpus: { type: 'string' },
  layer: { type: 'string' },
  context: { type: 'string' },
  'max-tokens': { type: 'string' },
  dtype: { type: 'string' },
  seed: { type: 'string' },
  lang: { type: 'string' },
  'drop-short': { type: 'boolean' },
  backend: { type: 'string' }
}

function layerList(value: unknown): number[] {
  if (typeof value !== 'string' || !/^\d+(,\d+)*$/.test(value)) throw new CliError('--layer needs a layer number or a list like 3,6.')
  return value.split(',').map(Number)
}

async function cmdHarvest(args: string[]): Promise<void> {
  const { values } = parse(args, {
    ...HARVEST_OPTIONS,
    model: { type: 'string' },
    out: { type: 'string' },
    'final-norm': { type: 'boolean' },
    batch: { type: 'string' }
  })
  requireOptions('harvest', values, ['model', 'corpus', 'layer', 'out'])
  const dtype = (values.dtype as string | undefined) ?? 'f16'
  if (dtype !== 'f16' && dtype !== 'f32') throw new CliError('--dtype must be f16 or f32.')
  const backend = backendOption(values.backend)
  const layers = layerList(values.layer)
  const out = values.out as string
  const result = await runInProcess('harvest', 'the harvest resumes where it stopped when run again.', (ctx) =>
    harvest(
      {
        model: values.model as string,
        corpus: values.corpus as string,
        corpusLang: values.lang as string | undefined,
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

async function cmdHarvestSeries(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, ...HARVEST_OPTIONS, checkpoint: { type: 'string', multiple: true } })
  if (!values.corpus || values.layer === undefined) throw new CliError('harvest-series needs --corpus FILE and --layer L.')
  const ws = openWorkspace(values)
  const ids = await checkpointIdsAt(ws, values.checkpoint)
  const job = await runJob(
    ws,
    await call(ws, 'jobs.start', {
      kind: 'harvest',
      checkpointIds: ids,
      corpus: values.corpus as string,
      lang: values.lang as string | undefined,
      layer: intOption(values.layer, 'layer')!,
      context: intOption(values.context, 'context'),
      maxTokens: intOption(values['max-tokens'], 'max-tokens'),
      dtype: values.dtype as 'f16' | 'f32' | undefined,
      seed: intOption(values.seed, 'seed'),
      dropShort: Boolean(values['drop-short']),
      backend: values.backend as BackendName | undefined
    })
  )
  ws.close()
  if (job.state !== 'done') throw new CliError(`Job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ''}`)
  const r = job.result as { checkpoints: number; tokens: number; backend: string; 'special tokens'?: string }
  if (r['special tokens']) console.log(`tokens: ${r['special tokens']}`)
  console.log(`harvested ${r.tokens.toLocaleString('en')} tokens from ${r.checkpoints} checkpoints on ${r.backend}`)
}

async function cmdImportActivations(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...PROJECT, checkpoint: { type: 'string' } })
  if (positionals.length !== 1 || values.checkpoint === undefined) throw new CliError('import-activations needs DIR and --checkpoint STEP.')
  const ws = openWorkspace(values)
  const step = intOption(values.checkpoint, 'checkpoint')!
  const c = (await call(ws, 'checkpoints.list')).find((x) => x.step === step)
  if (!c) throw new CliError(`No checkpoint at step ${step} in this project; register it first.`)
  const info = await call(ws, 'activations.import', { path: positionals[0]!, checkpointId: c.id })
  console.log(`imported layer ${info.layer}: ${info.rows} rows × d=${info.d} for step ${info.step}`)
  ws.close()
}

const TRAIN_OPTIONS: Options = {
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
}

function presetOption(value: unknown): PresetName {
  const preset = (value as string | undefined) ?? 'inaba2025'
  if (!(PRESETS as readonly string[]).includes(preset)) throw new CliError(`--preset must be one of ${PRESETS.join(', ')}.`)
  return preset as PresetName
}


function numberOption(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  const x = Number(value)
  if (!Number.isFinite(x) || x <= 0) throw new CliError(`--${name} needs a positive number, got ${JSON.stringify(value)}.`)
  return x
}

function trainOverrides(values: Record<string, unknown>): TrainOverrides {
  const scaling = values.scaling as string | undefined
  if (scaling !== undefined && !(INPUT_SCALINGS as readonly string[]).includes(scaling)) throw new CliError(`--scaling must be one of ${INPUT_SCALINGS.join(', ')}.`)
  return {
    n: intOption(values.latents, 'latents'),
    k: intOption(values.k, 'k'),
    tokens: intOption(values.tokens, 'tokens'),
    batchSize: intOption(values.batch, 'batch'),
    lr: numberOption(values.lr, 'lr'),
    warmupSteps: intOption(values.warmup, 'warmup'),
    seed: intOption(values.seed, 'seed'),
    inputScaling: scaling as TrainOverrides['inputScaling'],
    auxK: intOption(values['aux-k'], 'aux-k'),
    evalRows: intOption(values['eval-rows'], 'eval-rows'),
    logEvery: intOption(values['log-every'], 'log-every'),
    checkpointEvery: intOption(values['checkpoint-every'], 'checkpoint-every')
  }
}

async function cmdTrain(args: string[]): Promise<void> {
  const { values } = parse(args, { ...TRAIN_OPTIONS, activations: { type: 'string' }, out: { type: 'string' }, init: { type: 'string' }, hook: { type: 'string' } })
  requireOptions('train', values, ['activations', 'out'])
  const backend = await initBackend(backendOption(values.backend))
  console.log(`backend: ${backend.name} (${backend.reason})`)
  const r = await runInProcess('training', 'the training state is saved and the same command resumes it.', (ctx) =>
    trainSae(
      {
        activations: values.activations as string,
        out: values.out as string,
        preset: presetOption(values.preset),
        init: values.init as string | undefined,
        backend: backend.name,
        overrides: trainOverrides(values),
        meta: { hookName: values.hook as string | undefined, ...(values['model-name'] !== undefined ? { modelName: values['model-name'] as string } : {}) }
      },
      ctx
    )
  )
  const e = r.eval
  console.log(`${r.resumed ? 'resumed and finished' : 'trained'}: n=${r.config.n} k=${r.config.k}, ${r.steps} steps, ${r.tokens.toLocaleString('en')} tokens → ${r.dir}`)
  console.log(`held-out (${e.rows} rows${e.onTrainingRows ? ', training rows: too few to hold out' : ''}): FVU ${e.fvu.toFixed(4)}, explained variance ${e.explainedVariance.toFixed(4)}, cosine ${e.cosine.toFixed(4)}, L0 ${e.l0.toFixed(1)}, dead ${(100 * e.deadFraction).toFixed(1)}%`)
}

async function cmdTrainSeries(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, ...TRAIN_OPTIONS, layer: { type: 'string' }, checkpoint: { type: 'string', multiple: true }, retrain: { type: 'boolean' } })
  const ws = openWorkspace(values)
  const stores = await call(ws, 'activations.list')
  const layers = [...new Set(stores.map((s) => s.layer))]
  const layer = intOption(values.layer, 'layer') ?? (layers.length === 1 ? layers[0] : undefined)
  if (layer === undefined) {
    throw new CliError(layers.length ? `Activations exist for layers ${layers.join(', ')}: choose one with --layer.` : 'No activations yet: run harvest-series first.')
  }
  const ids = await checkpointIdsAt(ws, values.checkpoint)
  const o = trainOverrides(values)
  const job = await runJob(
    ws,
    await call(ws, 'jobs.start', {
      kind: 'train-series',
      checkpointIds: ids,
      layer,
      preset: presetOption(values.preset ?? 'sae-track'),
      n: o.n,
      k: o.k,
      tokens: o.tokens ?? undefined,
      batchSize: o.batchSize,
      lr: o.lr,
      seed: o.seed,
      retrain: Boolean(values.retrain),
      backend: backendOption(values.backend),
      modelName: values['model-name'] as string | undefined
    })
  )
  const kept = (job.result as { kept?: string } | null)?.kept
  if (kept) console.log(kept)
  if (job.state !== 'done') {
    ws.close()
    throw new CliError(`Job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ''}${job.state === 'cancelled' ? ' (run again to resume)' : ''}`)
  }
  console.log(['step', 'layer', 'n', 'k', 'tokens', 'FVU', 'expl.var', 'L0', 'dead', 'warm'].join('\t'))
  for (const s of await call(ws, 'saes.list')) {
    if (s.layer !== layer) continue
    console.log([s.step, s.layer, s.n, s.k, s.tokens, s.fvu?.toFixed(4), s.explainedVariance?.toFixed(4), s.l0?.toFixed(1), `${((s.deadFraction ?? 0) * 100).toFixed(1)}%`, s.warmStarted ? 'yes' : 'no'].join('\t'))
  }
  ws.close()
}

async function cmdClassifyLanguage(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { threshold: { type: 'string' } })
  if (positionals.length !== 1) throw new CliError('classify-language needs one FILE.jsonl (a feature-example set).')
  const threshold = values.threshold === undefined ? 0.9 : Number(values.threshold)
  if (!(threshold > 0 && threshold < 1)) throw new CliError('--threshold must be between 0 and 1.')
  const features = readFeatureExamples(positionals[0]!).map((f) => {
    const c = classifyFeature(f.examples, PAPER_RULE, threshold)
    return { checkpoint: f.checkpoint ?? null, feature: f.feature, counts: { en: c.counts.en ?? 0, ja: c.counts.ja ?? 0 }, class: c.class }
  })
  const totals: Record<string, { en: number; ja: number; mix: number }> = {}
  for (const f of features) {
    const t = (totals[String(f.checkpoint)] ??= { en: 0, ja: 0, mix: 0 })
    t[f.class as 'en' | 'ja' | 'mix']++
  }
  console.log(JSON.stringify({ features, totals }))
}

async function cmdImportFeatures(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...PROJECT, name: { type: 'string' } })
  if (positionals.length !== 1) throw new CliError('import-features needs one FILE.jsonl.')
  const ws = openWorkspace(values)
  const sets = await call(ws, 'features.import', { path: positionals[0]!, name: values.name as string | undefined })
  for (const s of sets) console.log(`imported "${s.name}": ${s.nFeatures} features${s.step !== null ? ` (checkpoint step ${s.step})` : s.checkpointLabel ? ` (checkpoint "${s.checkpointLabel}", not registered)` : ''}`)
  ws.close()
}

async function cmdExportFeatures(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, checkpoint: { type: 'string' }, out: { type: 'string' }, annotator: { type: 'string' }, examples: { type: 'string' } })
  requireOptions('export-features', values, ['out'])
  const ws = openWorkspace(values)
  const n = exportFeatures(ws.requireProject().project, values.out as string, {
    checkpoint: values.checkpoint as string | undefined,
    annotator: values.annotator as string | undefined,
    examples: intOption(values.examples, 'examples')
  })
  console.log(`wrote ${n} features to ${values.out as string}`)
  ws.close()
}

async function cmdLabels(args: string[]): Promise<void> {
  const [sub, ...rest] = args
  if (sub === 'export') {
    const { values } = parse(rest, { ...PROJECT, out: { type: 'string' } })
    requireOptions('labels export', values, ['out'])
    const ws = openWorkspace(values)
    console.log(`wrote ${exportLabels(ws.requireProject().project, values.out as string)} labels to ${values.out as string}`)
    ws.close()
  } else if (sub === 'import') {
    const { values, positionals } = parse(rest, { ...PROJECT, overwrite: { type: 'boolean' } })
    if (positionals.length !== 1) throw new CliError('labels import needs one FILE (.csv or .json).')
    const ws = openWorkspace(values)
    const r = importLabels(ws.requireProject().project, positionals[0]!, { overwrite: Boolean(values.overwrite) })
    console.log(`${r.added} added, ${r.overwritten} overwritten, ${r.unchanged} unchanged, ${r.conflicts.length} conflicts, ${r.skipped.length} skipped`)
    for (const c of r.conflicts) console.log(`conflict  ${c.set} #${c.feature} ${c.annotator}: kept "${c.ours}", file has "${c.theirs}" (--overwrite to take the file's)`)
    for (const s of r.skipped) console.log(`skipped   row ${s.row}: ${s.reason}`)
    ws.close()
  } else if (sub === 'carry') {
    const { values } = parse(rest, { ...PROJECT, from: { type: 'string' }, to: { type: 'string' }, 'min-cosine': { type: 'string' }, 'dry-run': { type: 'boolean' } })
    requireOptions('labels carry', values, ['from'])
    const minCosine = values['min-cosine'] === undefined ? 0.7 : Number(values['min-cosine'])
    if (!(minCosine >= -1 && minCosine <= 1)) throw new CliError('--min-cosine must be between -1 and 1.')
    const ws = openWorkspace(values)
    const fromSetId = intOption(values.from, 'from')!
    const toSetId = intOption(values.to, 'to')
    const preview = await call(ws, 'labels.carryPreview', { fromSetId, toSetId })
    console.log(`from "${preview.from.name}" (set ${preview.from.id}) to "${preview.to.name}" (set ${preview.to.id}), matched by decoder cosine (${preview.method})`)
    console.log(['from', 'to', 'cosine', 'labels', 'carried'].join('\t'))
    for (const p of preview.pairs) {
      const carried = p.cosine !== null && p.cosine >= minCosine ? p.labels - p.targetLabels : 0
      console.log([p.fromFeature, p.toFeature ?? '—', p.cosine?.toFixed(4) ?? '—', p.labels, carried].join('\t'))
    }
    if (!values['dry-run']) {
      const r = await call(ws, 'labels.carry', { fromSetId, toSetId, minCosine })
      console.log(`${r.carried} labels carried, ${r.keptExisting} kept where the target already had one, ${r.belowThreshold} below cosine ${minCosine}`)
    }
    ws.close()
  } else {
    throw new CliError('Use `labels export --out FILE.csv|json`, `labels import FILE` or `labels carry --from SET`.')
  }
}

async function cmdTaxonomy(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, set: { type: 'string' } })
  const ws = openWorkspace(values)
  const names = values.set === undefined ? await call(ws, 'taxonomy.get') : await call(ws, 'taxonomy.set', { names: (values.set as string).split(',').map((x) => x.trim()) })
  names.forEach((n, i) => console.log(`${i + 1}\t${n}`))
  ws.close()
}

async function cmdDrift(args: string[]): Promise<void> {
  const { values } = parse(args, { sae: { type: 'string', multiple: true }, match: { type: 'boolean' }, out: { type: 'string' }, backend: { type: 'string' } })
  requireOptions('drift', values, ['sae', 'out'])
  await initBackend(backendOption(values.backend))
  const r = await runInProcess('drift', 'run it again to start over.', (ctx) => computeDrift(values.sae as string[], { match: Boolean(values.match) }, ctx))
  await writeDrift(values.out as string, r)
  const T = r.steps.length
  const last = r.cosToPrevious.subarray((T - 1) * r.n)
  console.log(`${T} SAEs × ${r.n} latents → ${values.out as string}${r.matchMethod ? ` (matching: ${r.matchMethod})` : ''}`)
  if (T > 1) console.log(`mean cosine to the previous SAE at the last step: ${(last.reduce((a, b) => a + b, 0) / r.n).toFixed(4)}`)
}

async function cmdDemo(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, report: { type: 'string' }, small: { type: 'boolean' } })
  const { DEMO_SETTINGS, SMALL_DEMO_SETTINGS, runDemo } = await import('../core/demo')
  const here = dirname(fileURLToPath(import.meta.url))
  const ws = openWorkspace({ project: (values.project as string | undefined) ?? join(here, '../../projects/demo') })
  const t0 = performance.now()
  try {
    const stages = await runDemo(ws, { waitFor: (job) => runJob(ws, job), log: (m) => console.log(m) }, values.small ? SMALL_DEMO_SETTINGS : DEMO_SETTINGS)
    for (const s of stages) console.log(`${s.name.padEnd(14)} ${s.ran ? `${s.seconds.toFixed(1)} s` : 'already done'}`)
    console.log(`demo project ready in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${ws.requireProject().project.path}`)
    if (values.report) {
      const { writeSeriesReport } = await import('../core/demo-report')
      const r = await writeSeriesReport(ws.requireProject().project, (values.small ? SMALL_DEMO_SETTINGS : DEMO_SETTINGS).layer, values.report as string)
      console.log(`report: ${r.html} and ${r.json}`)
    }
  } finally {
    ws.close()
  }
}

async function cmdFormation(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, features: { type: 'string' }, out: { type: 'string' }, layer: { type: 'string' }, threshold: { type: 'string' }, backend: { type: 'string' } })
  requireOptions('formation', values, ['features', 'out'])
  if (!/^\d+(,\d+)*$/.test(values.features as string)) throw new CliError('--features needs feature ids like 3,17,42.')
  const ws = openWorkspace(values)
  const { project } = ws.requireProject()
  const saes = project.saes.list()
  const layers = [...new Set(saes.map((s) => s.layer))]
  const layer = intOption(values.layer, 'layer') ?? (layers.length === 1 ? layers[0] : undefined)
  if (layer === undefined) throw new CliError(layers.length ? `SAEs exist for layers ${layers.join(', ')}: choose one with --layer.` : 'No SAEs yet: run train-series first.')
  const series = layerSeries(project, layer).checkpoints
  ws.close()
  await initBackend(backendOption(values.backend))
  const threshold = values.threshold === undefined ? undefined : Number(values.threshold)
  const r = await computeFormation(series, { features: (values.features as string).split(',').map(Number), threshold })
  writeFileSync(values.out as string, JSON.stringify({ layer, ...r }, null, 2))
  for (const f of r.features) console.log(`feature ${f.feature}: forms at step ${f.formationStep.sae ?? 'never'} (M = ${f.m.sae.map((x) => x.toFixed(2)).join(' ')})`)
}

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  'import-sae': cmdImportSae,
  'export-neuronpedia': cmdExportNeuronpedia,
  'export-sae': cmdExportSae,
  'classify-language': cmdClassifyLanguage,
  formation: cmdFormation,
  demo: cmdDemo,
  geometry: cmdGeometry,
  drift: cmdDrift,
  taxonomy: cmdTaxonomy,
  'export-features': cmdExportFeatures,
  labels: cmdLabels,
  'import-features': cmdImportFeatures,
  train: cmdTrain,
  'train-series': cmdTrainSeries,
  harvest: cmdHarvest,
  'harvest-series': cmdHarvestSeries,
  'import-activations': cmdImportActivations,
  serve: cmdServe,
  project: cmdProject,
  checkpoints: cmdCheckpoints,
  verify: cmdVerify,
  jobs: cmdJobs
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE)
    return
  }
  if (command === '--version') {
    console.log(VERSION)
    return
  }
  const run = COMMANDS[command]
  if (!run) throw new CliError(`Unknown command "${command}". Run \`featuretrace help\` for usage.`)
  await run(args)
}

/** Runs a command line and turns failures into a message and an exit code (2: the user's input). */
export async function runCli(argv: string[]): Promise<void> {
  try {
    await main(argv)
  } catch (err) {
    const userFacing = err instanceof CliError || (err as Error).name === 'UserError'
    console.error(userFacing ? `featuretrace: ${(err as Error).message}` : err)
    process.exitCode = userFacing ? 2 : 1
  }
}

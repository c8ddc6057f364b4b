// The bundled demo: register resources/demo's checkpoint series in a project, then harvest, train the
// warm-started SAE series, compute feature statistics with languages, and feature dynamics — each a job
// with progress, each skipped when the project already has its result, so a second run returns at once.
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { CallInput, CallName, CallOutput, Job } from '../shared/api'
import { UserError } from '../shared/api'
import { callService, type Workspace } from './services'

/** What the demo pipeline runs; `small` is the reduced run of the test suite. */
export interface DemoSettings {
  layer: number
  context: number
  /** Harvested tokens per checkpoint. */
  maxTokens: number
  n: number
  k: number
  batchSize: number
  /** Tokens for the first SAE; each warm-started one takes warmTokenFraction of it. */
  tokens: number
  warmupSteps: number
  warmTokenFraction: number
  warmLrFactor: number
  /** Use this many checkpoints, spread from the first to the last (all when absent). */
  checkpoints?: number
  /** Tokens per checkpoint the SAE evaluation by splicing reads (the first windows of the harvest's corpus and seed); 0: no evaluation. */
  evaluateTokens: number
  /** Drop a document's last window when shorter than `context` (the harvest's dropShort). */
  dropShort?: boolean
}

/** A checkpoint series and the corpus its pipeline harvests: the bundled demo's, or another (bench/paper-run.ts). */
export interface SeriesSource {
  /** A folder of step subfolders (step1000, iter_0001000, …), each a Hugging Face checkpoint. */
  checkpoints: string
  /** JSON Lines corpus (FORMATS.md). */
  corpus: string
  /** Tokens the model trained on per step, for the tokens axis of the charts. */
  tokensPerStep: number
  /** SAELens' model_name in what FeatureTrace writes for other tools. */
  modelName: string
}

/** The bundled demo series in `demo` (resources/demo or a copy). */
export function demoSource(demo: string = demoDir()): SeriesSource {
  // The demo model trained on 16 sequences of 64 tokens per step (resources/demo/checkpoints/training-log.json).
  return { checkpoints: join(demo, 'checkpoints'), corpus: join(demo, 'corpus.jsonl'), tokensPerStep: 1024, modelName: DEMO_MODEL_NAME }
}

/** The demo model's name in what FeatureTrace writes for other tools (SAELens' model_name): its folder says none. */
export const DEMO_MODEL_NAME = 'featuretrace-demo'

export const DEMO_SETTINGS: DemoSettings = {
  layer: 2,
  context: 64,
  maxTokens: 32_768,
  n: 512,
  k: 16,
  batchSize: 1024,
  tokens: 600_000,
  warmupSteps: 50,
  // The demo's checkpoints are far apart (log-spaced from initialisation): warm starts need more room
  // than SAE-Track's 5% of the tokens at a tenth of the learning rate.
  warmTokenFraction: 0.5,
  warmLrFactor: 0.5,
  evaluateTokens: 1024
}

/** The test suite's reduced run: three checkpoints, fewer tokens, a smaller SAE. */
export const SMALL_DEMO_SETTINGS: DemoSettings = {
  ...DEMO_SETTINGS,
  maxTokens: 8192,
  n: 256,
  k: 8,
  batchSize: 512,
  tokens: 60_000,
  warmupSteps: 10,
  checkpoints: 3
}

/** resources/demo, found from this module whether it runs from src/ (tests) or out/main/ (built). */
export function demoDir(): string {
  if (process.env.FEATURETRACE_DEMO_DIR) return resolve(process.env.FEATURETRACE_DEMO_DIR)
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'resources/demo/checkpoints'))) return join(dir, 'resources/demo')
    dir = dirname(dir)
  }
  throw new UserError('The demo series (resources/demo/checkpoints) is missing from this installation; regenerate it with `npm run build:demo`.')
}

/** The example word-pair lists shipped with the demo (absolute paths), for the Geometry view's crystal form; none when absent. */
export function bundledPairLists(): string[] {
  try {
    const folder = join(demoDir(), 'pairs')
    return readdirSync(folder)
      .filter((f) => f.endsWith('.tsv'))
      .sort()
      .map((f) => join(folder, f))
  } catch {
    return []
  }
}

export interface DemoStage {
  name: 'register' | 'harvest' | 'train-series' | 'feature-stats' | 'dynamics' | 'evaluate'
  /** Whether it ran now (false: the project already had its result). */
  ran: boolean
  seconds: number
  job?: Job
}

export interface DemoHooks {
  /** Runs a started job to its end (the CLI draws a progress bar). */
  waitFor(job: Job): Promise<Job>
  log?(message: string): void
  /** Called as each stage that runs starts and ends (bench/paper-run.ts measures memory per stage). */
  stage?(name: DemoStage['name'], phase: 'start' | 'end'): void
}

/** Registers a series' checkpoints in the project in `ws` (the pipeline's first stage). */
export async function registerSeries(ws: Workspace, source: SeriesSource, hooks: Pick<DemoHooks, 'log'> = {}): Promise<void> {
  const r = await callService(ws, 'checkpoints.register', { folder: source.checkpoints, tokensPerStep: source.tokensPerStep })
  if (r.added.length === 0) throw new UserError(`No checkpoints found in ${source.checkpoints}: ${r.skipped.map((s) => s.reason).join('; ')}`)
  hooks.log?.(`registered ${r.added.length} checkpoints (steps ${r.added.map((c) => c.step).join(', ')})`)
}

/** Registers the demo series' checkpoints in the project in `ws` (the pipeline's first stage). */
export function registerDemoCheckpoints(ws: Workspace, demo: string, hooks: Pick<DemoHooks, 'log'> = {}): Promise<void> {
  return registerSeries(ws, demoSource(demo), hooks)
}

/** Runs whatever of the demo pipeline the project in `ws` lacks, on the series in `demo` (resources/demo or a copy). */
export function runDemo(ws: Workspace, hooks: DemoHooks, settings: DemoSettings = DEMO_SETTINGS, demo: string = demoDir()): Promise<DemoStage[]> {
  return runSeriesPipeline(ws, hooks, settings, demoSource(demo))
}

/**
 * The demo's pipeline on any series: register, harvest, the warm-started SAE series, feature statistics, dynamics
 * and (when settings.evaluateTokens > 0) evaluation by splicing — each a job, each skipped when the project already
 * has its result. Errors: UserError when a job fails or is cancelled (running again resumes).
 */
export async function runSeriesPipeline(ws: Workspace, hooks: DemoHooks, settings: DemoSettings, source: SeriesSource): Promise<DemoStage[]> {
  const stages: DemoStage[] = []
  const stage = async (name: DemoStage['name'], needed: boolean, work: () => Promise<Job | undefined>): Promise<void> => {
    const t0 = performance.now()
    if (!needed) {
      stages.push({ name, ran: false, seconds: 0 })
      return
    }
    hooks.log?.(`${name}…`)
    hooks.stage?.(name, 'start')
    const job = await work()
    hooks.stage?.(name, 'end')
    if (job && job.state !== 'done') {
      throw new UserError(`The demo's ${name} job ${job.state}${job.error ? `: ${job.error}` : ''}. Run the demo again to resume it.`)
    }
    stages.push({ name, ran: true, seconds: (performance.now() - t0) / 1000, job })
  }
  const start = async (request: CallInput<'jobs.start'>): Promise<Job> => hooks.waitFor(await callService(ws, 'jobs.start', request))
  // What the project has, read through the API as every door reads it.
  const call = <C extends CallName>(name: C, payload?: CallInput<C>): Promise<CallOutput<C>> => callService(ws, name, payload)

  await stage('register', (await call('checkpoints.list')).length === 0, async () => {
    await registerSeries(ws, source, hooks)
    return undefined
  })
  const all = (await callService(ws, 'checkpoints.list')).sort((a, b) => a.step - b.step)
  const want = Math.min(settings.checkpoints ?? all.length, all.length)
  const chosen =
    want >= all.length
      ? all
      : [...new Set(Array.from({ length: want }, (_, i) => Math.round((i * (all.length - 1)) / Math.max(1, want - 1))))].map((i) => all[i]!)
  const ids = chosen.map((c) => c.id)
  const { layer } = settings
  const harvested = new Set((await call('activations.list')).filter((s) => s.layer === layer).map((s) => s.checkpointId))
  await stage(
    'harvest',
    ids.some((id) => !harvested.has(id)),
    () =>
      start({
        kind: 'harvest',
        checkpointIds: ids,
        corpus: source.corpus,
        layer,
        context: settings.context,
        maxTokens: settings.maxTokens,
        seed: 0,
        dropShort: settings.dropShort ?? false
      })
  )
  const trained = new Set((await call('saes.list')).filter((s) => s.layer === layer).map((s) => s.checkpointId))
  await stage(
    'train-series',
    ids.some((id) => !trained.has(id)),
    () =>
      start({
        kind: 'train-series',
        checkpointIds: ids,
        layer,
        preset: 'sae-track',
        n: settings.n,
        k: settings.k,
        tokens: settings.tokens,
        batchSize: settings.batchSize,
        warmupSteps: settings.warmupSteps,
        warmTokenFraction: settings.warmTokenFraction,
        warmLrFactor: settings.warmLrFactor,
        seed: 0,
        modelName: source.modelName
      })
  )
  const withSets = new Set((await call('features.sets')).filter((s) => !s.superseded && s.layer === layer).map((s) => s.checkpointId))
  await stage(
    'feature-stats',
    ids.some((id) => !withSets.has(id)),
    () => start({ kind: 'feature-stats', checkpointIds: ids.filter((id) => !withSets.has(id)), layer, language: { rule: 'paper' } })
  )
  const run = await call('dynamics.run', { layer })
  const steps = (await call('saes.list'))
    .filter((s) => s.layer === layer)
    .map((s) => s.step)
    .sort((a, b) => a - b)
  await stage('dynamics', !run || JSON.stringify(run.steps) !== JSON.stringify(steps), () => start({ kind: 'dynamics', layer }))
  const evaluated = new Set((await call('saes.evaluations', { layer })).map((e) => e.checkpointId))
  await stage('evaluate', settings.evaluateTokens > 0 && ids.some((id) => !evaluated.has(id)), () =>
    start({ kind: 'evaluate-saes', checkpointIds: ids, layer, maxTokens: settings.evaluateTokens })
  )
  return stages
}

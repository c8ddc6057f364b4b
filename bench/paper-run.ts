// The paper-scale run (issue #17): a generated LLM-jp-3-1.8B-shaped series (bench/make_llmjp_series.py: 3 checkpoints,
// 24 blocks, random BF16 weights) through the demo's own pipeline (src/core/demo.ts, runSeriesPipeline: each stage a
// job in a worker process, as `featuretrace demo` and the app run it) — harvest layer 12 over 100k tokens, the
// warm-started SAE series at d_sae 32,768 and k 32, feature statistics, dynamics, and evaluation by splicing — with
// each stage's wall time and the peak resident memory of the whole process tree (this process and its job workers,
// /proc sampled every 250 ms).
// Run: npm run build && npx tsx bench/paper-run.ts [--tokens 100000] [--latents 32768] [--k 32] [--batch 4096]
//        [--evaluate-tokens 2048] [--checkpoints N] [--layers 24] [--keep] [--reuse-harvest DIR]
// --reuse-harvest DIR attaches the activation stores DIR/stepS/layerL of an earlier run (as `import-activations` does)
// instead of harvesting again, and runs the later stages in a fresh project.
// (the series is written to bench/.data/llmjp-series on first use, ~11 GB; appends to bench/results/paper-run.json)
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { registerSeries, runSeriesPipeline, type DemoSettings, type DemoStage } from '../src/core/demo'
import { nodeWorkerSpawner } from '../src/core/jobs/spawn'
import { callService, Workspace } from '../src/core/services'
import { arg, ROOT } from './lib'

const DATA = join(ROOT, 'bench', '.data')
const PYTHON = process.env.FEATURETRACE_PYTHON ?? '/usr/bin/python3'
const LAYERS = arg('--layers', 24)
const CHECKPOINTS = arg('--checkpoints', 3)
const SERIES = join(DATA, LAYERS === 24 && CHECKPOINTS === 3 ? 'llmjp-series' : `llmjp-series-${LAYERS}x${CHECKPOINTS}`)
const PROJECT = join(DATA, 'paper-project')
const TOKENS = arg('--tokens', 100_000)

const settings: DemoSettings = {
  layer: Math.min(12, LAYERS),
  context: 128,
  maxTokens: TOKENS,
  n: arg('--latents', 32_768),
  k: arg('--k', 32),
  batchSize: arg('--batch', 4096),
  // Every harvested token trains the first SAE once; the warm-started ones take half (SAE-Track's warm start, with the
  // demo's wider fraction: 5% of 100k tokens would be one step).
  tokens: TOKENS,
  warmupSteps: 5,
  warmTokenFraction: 0.5,
  warmLrFactor: 0.5,
  evaluateTokens: arg('--evaluate-tokens', 2048),
  dropShort: true
}

/** Resident bytes of this process and all its descendants, from /proc (Linux). */
function treeRss(): { total: number; largest: number } {
  const parent = new Map<number, number>()
  const rss = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      parent.set(Number(entry), Number(fields[1]))
      rss.set(Number(entry), Number(fields[21]) * 4096)
    } catch {
      // the process ended while we read
    }
  }
  const mine = new Set([process.pid])
  let grew = true
  while (grew) {
    grew = false
    for (const [pid, ppid] of parent) {
      if (!mine.has(pid) && mine.has(ppid)) {
        mine.add(pid)
        grew = true
      }
    }
  }
  let total = 0
  let largest = 0
  for (const pid of mine) {
    const r = rss.get(pid) ?? 0
    total += r
    largest = Math.max(largest, r)
  }
  return { total, largest }
}

function series(): string {
  const done = existsSync(SERIES) && readdirSync(SERIES).filter((f) => f.startsWith('iter_')).length === CHECKPOINTS
  if (!done) {
    console.log(`writing the series to ${SERIES} …`)
    const t0 = performance.now()
    execFileSync(PYTHON, [join(ROOT, 'bench/make_llmjp_series.py'), SERIES, '--checkpoints', String(CHECKPOINTS), '--layers', String(LAYERS)], {
      stdio: 'inherit'
    })
    console.log(`series written in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
  }
  return SERIES
}

/**
 * The demo corpus (the UDHR and bilingual lexicon sentences in English and Japanese, 174k tokens with the series' tokenizer) with consecutive documents
 * joined into documents of about 4,000 characters (the language tag kept where all were of one language): most demo documents are shorter than a 128-token
 * window, and a harvest never lets a window span documents, so the joined corpus gives full windows throughout.
 */
function corpus(): string {
  const file = join(DATA, 'paper-corpus.jsonl')
  if (existsSync(file)) return file
  const docs = readFileSync(join(ROOT, 'resources/demo/corpus.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { text: string; lang?: string })
  const out: { text: string; lang?: string }[] = []
  for (const d of docs) {
    const last = out.at(-1)
    if (last && last.text.length < 4000) {
      last.text += '\n' + d.text
      if (last.lang !== d.lang) delete last.lang
    } else out.push({ text: d.text, lang: d.lang })
  }
  writeFileSync(file, out.map((d) => JSON.stringify(d)).join('\n') + '\n')
  return file
}

const folder = series()
if (!process.argv.includes('--keep')) rmSync(PROJECT, { recursive: true, force: true })
const worker = join(ROOT, 'out/main/job-worker.js')
if (!existsSync(worker)) throw new Error('out/main/job-worker.js is missing: run `npm run build` first.')
const ws = new Workspace('cli', nodeWorkerSpawner(worker))
ws.open(PROJECT)
const reuseArg = process.argv.indexOf('--reuse-harvest')
const reused = reuseArg > 0 ? process.argv[reuseArg + 1]! : null
if (reused) {
  await registerSeries(ws, { checkpoints: folder, corpus: corpus(), tokensPerStep: 4_194_304, modelName: 'llm-jp-3-1.8b-shape-random' })
  for (const c of await callService(ws, 'checkpoints.list')) {
    const store = join(reused, `step${c.step}`, `layer${Math.min(12, LAYERS)}`)
    await callService(ws, 'activations.import', { path: store, checkpointId: c.id })
    console.log(`attached ${store}`)
  }
}

const GiB = 2 ** 30
const peaks = new Map<string, { total: number; largest: number; start: number; end?: number }>()
let current: string | null = null
const sampler = setInterval(() => {
  if (!current) return
  const p = peaks.get(current)!
  const r = treeRss()
  p.total = Math.max(p.total, r.total)
  p.largest = Math.max(p.largest, r.largest)
}, 250)
const loadBefore = loadavg()
const t0 = performance.now()
let stages: DemoStage[] = []
// A stage that fails still gets its row (time and peak until the failure) and the record is still written.
let failure: string | null = null
try {
  stages = await runSeriesPipeline(
    ws,
    {
      waitFor: async (job) => {
        let last = ''
        const ticker = setInterval(() => {
          const j = ws.requireProject().project.jobs.get(job.id)
          const line = `${(100 * j.fraction).toFixed(1)}% ${j.message ?? ''}${j.rate !== null ? ` (${j.rate.toFixed(0)} ${j.rateUnit ?? ''})` : ''}`
          if (line !== last) console.log(`  [${j.kind}] ${line}`)
          last = line
        }, 30_000)
        try {
          return await ws.requireProject().jobs.waitFor(job.id)
        } finally {
          clearInterval(ticker)
        }
      },
      log: (m) => console.log(`${new Date().toISOString().slice(11, 19)} ${m}`),
      stage: (name, phase) => {
        if (phase === 'start') {
          current = name
          peaks.set(name, { ...treeRss(), start: performance.now() })
        } else {
          peaks.get(name)!.end = performance.now()
          current = null
        }
      }
    },
    settings,
    { checkpoints: folder, corpus: corpus(), tokensPerStep: 4_194_304, modelName: 'llm-jp-3-1.8b-shape-random' }
  )
} catch (err) {
  failure = (err as Error).message
  console.error(failure)
} finally {
  clearInterval(sampler)
}
// Stages the pipeline never returned (it failed in one of them): their rows from the stage hooks' marks.
for (const [name, p] of peaks) {
  if (!stages.some((s) => s.name === name))
    stages.push({ name: name as DemoStage['name'], ran: true, seconds: ((p.end ?? performance.now()) - p.start) / 1000 })
}
const seconds = (performance.now() - t0) / 1000
const saes = await callService(ws, 'saes.list')
const evaluations = await callService(ws, 'saes.evaluations', { layer: settings.layer })
ws.close()

const rows = stages.map((s) => {
  const p = peaks.get(s.name)
  return {
    stage: s.name,
    ran: s.ran,
    failed: p !== undefined && p.end === undefined,
    seconds: s.seconds,
    peakTreeRssGiB: p ? p.total / GiB : null,
    peakProcessRssGiB: p ? p.largest / GiB : null,
    job: s.job ? { kind: s.job.kind, result: s.job.result, message: s.job.message } : null
  }
})
for (const r of rows) {
  console.log(
    `${r.stage.padEnd(14)} ${r.ran ? `${r.seconds.toFixed(1).padStart(8)} s` : '   (not run)'}  peak ${r.peakTreeRssGiB?.toFixed(2) ?? '-'} GiB (largest process ${r.peakProcessRssGiB?.toFixed(2) ?? '-'} GiB)`
  )
}
console.log(`total ${seconds.toFixed(0)} s`)
const record = {
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, memoryGiB: Math.round(totalmem() / GiB), node: process.version },
  commit: execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim(),
  load: { before: loadBefore, after: loadavg() },
  series: { folder, checkpoints: CHECKPOINTS, layers: LAYERS },
  /** The activation stores of an earlier run, attached instead of harvesting (--reuse-harvest); null: harvested here. */
  reusedHarvest: reused,
  /** Why the pipeline stopped, when it did not finish. */
  failure,
  settings,
  seconds,
  stages: rows,
  saes: saes.map((s) => ({
    step: s.step,
    layer: s.layer,
    n: s.n,
    k: s.k,
    tokens: s.tokens,
    steps: s.steps,
    fvu: s.fvu,
    l0: s.l0,
    dead: s.deadFraction,
    backend: s.backend
  })),
  evaluations
}
mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
const history = join(ROOT, 'bench/results/paper-run.json')
const previous = existsSync(history) ? (JSON.parse(readFileSync(history, 'utf8')) as unknown[]) : []
writeFileSync(history, JSON.stringify([...previous, record], null, 2) + '\n')
if (failure) process.exitCode = 1
console.log(`recorded in ${history}`)

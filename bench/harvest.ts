// Harvest throughput: FeatureTrace's forward pass on each engine against PyTorch on the same Pythia-70m-shaped model.
// Run: npx tsx bench/harvest.ts [--tokens 4096] [--engines ort,wasm,cpu]   (appends to bench/results/harvest.json)
// Threads: every core (os.availableParallelism()), or FEATURETRACE_THREADS; PyTorch is given the same number.
import { matmulGflops, ortMatmulGflops, ROOT } from './lib'
import { execFileSync } from 'node:child_process'
import { cpus, loadavg, totalmem } from 'node:os'
import { existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { harvest } from '../src/core/lm/harvest'
import { ortThreads } from '../src/core/ort/engine'
import { initBackend, type BackendName } from '../src/core/tf/backend'

const DATA = join(ROOT, 'bench', '.data')
const PYTHON = process.env.FEATURETRACE_PYTHON ?? '/usr/bin/python3'
const tokensArg = process.argv.indexOf('--tokens')
const TOKENS = tokensArg > 0 ? Number(process.argv[tokensArg + 1]) : 4096
const CONTEXT = 64
const BATCH = 16
const THREADS = ortThreads()
const enginesArg = process.argv.indexOf('--engines')
const ENGINES = (enginesArg > 0 ? process.argv[enginesArg + 1]!.split(',') : ['ort', 'wasm']) as BackendName[]

function model(): string {
  const dir = join(DATA, 'models', 'pythia-70m-shape')
  if (!existsSync(join(dir, 'model.safetensors')))
    execFileSync(PYTHON, [join(ROOT, 'tests/fixtures/make_tiny_models.py'), DATA, '--bench'], { stdio: 'inherit' })
  return dir
}

function corpus(): string {
  const file = join(DATA, 'bench-corpus.jsonl')
  if (existsSync(file)) return file
  mkdirSync(DATA, { recursive: true })
  const words = 'the cat sat on mat dog log language models learn features during training tokyo capital japan paris france'.split(' ')
  let seed = 1
  const rand = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32
  const docs = Array.from({ length: 400 }, () => ({ text: Array.from({ length: 200 }, () => words[Math.floor(rand() * words.length)]).join(' '), lang: 'en' }))
  writeFileSync(file, docs.map((d) => JSON.stringify(d)).join('\n') + '\n')
  return file
}

/** The pure-JS cpu backend is ~30× slower than wasm: give it fewer tokens so the run stays short. */
const tokensFor = (backend: BackendName): number => (backend === 'cpu' ? Math.min(TOKENS, 1024) : TOKENS)

async function run(
  backend: BackendName,
  dir: string,
  file: string
): Promise<{ backend: string; reason: string; tokens: number; tokensPerSecond: number; gflops: number; load: number[] }> {
  const choice = await initBackend(backend)
  const load = loadavg()
  const out = join(DATA, `store-${backend}-${Date.now()}`)
  const r = await harvest(
    {
      model: dir,
      corpus: file,
      layers: [6],
      out: () => out,
      context: CONTEXT,
      maxTokens: tokensFor(backend),
      dtype: 'f16',
      batchSequences: BATCH,
      dropShort: true
    },
    { signal: new AbortController().signal, progress: () => {} }
  )
  execFileSync('rm', ['-rf', out])
  return {
    backend,
    reason: choice.reason,
    tokens: tokensFor(backend),
    tokensPerSecond: r.tokensPerSecond ?? 0,
    gflops: backend === 'ort' ? await ortMatmulGflops() : await matmulGflops(),
    load
  }
}

const dir = model()
const file = corpus()
const loadBefore = loadavg()
const results = []
for (const b of ENGINES) results.push(await run(b, dir, file))
const torch = JSON.parse(
  execFileSync(PYTHON, [
    join(ROOT, 'bench/torch_forward.py'),
    dir,
    String(BATCH),
    String(CONTEXT),
    String(Math.ceil(TOKENS / (BATCH * CONTEXT))),
    '6',
    String(THREADS)
  ]).toString()
) as {
  tokens_per_s: number
  torch: string
  threads: number
  blas_gflops: number
}
const cpu = cpus()[0]?.model ?? 'unknown'
const record = {
  date: new Date().toISOString(),
  machine: { cpu, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, torch: torch.torch, torchThreads: torch.threads },
  // "-dirty" when the working tree differed from the commit (the run measured uncommitted code); results files aside.
  commit:
    execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim() +
    (execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ':!bench/results'], { cwd: ROOT }).toString().trim() ? '-dirty' : ''),
  threads: THREADS,
  load: { before: loadBefore, after: loadavg() },
  model: 'gpt_neox, d=512, 6 layers, 8 heads, d_ff=2048 (Pythia-70m shape, random weights), float32',
  workload: { tokens: TOKENS, context: CONTEXT, batchSequences: BATCH, layer: 6, storeDtype: 'f16' },
  tfjs: results,
  pytorch: { tokensPerSecond: torch.tokens_per_s, blasGflops1024: torch.blas_gflops },
  ratio: Object.fromEntries(results.map((r) => [r.backend, r.tokensPerSecond / torch.tokens_per_s]))
}
mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
const history = join(ROOT, 'bench/results/harvest.json')
const previous = existsSync(history) ? (JSON.parse(readFileSync(history, 'utf8')) as unknown[]) : []
writeFileSync(history, JSON.stringify([...previous, record], null, 2) + '\n')
console.log(
  `machine: ${cpu}, ${cpus().length} cores, Node ${process.version}, torch ${torch.torch} (${torch.threads} threads), load ${record.load.before[0]!.toFixed(2)} → ${record.load.after[0]!.toFixed(2)}`
)
for (const r of results) console.log(`${r.backend}: ${r.reason}`)
console.log("backend   tokens/s   vs PyTorch   matMul 1024² GFLOP/s (ort: onnxruntime's)")
for (const r of results)
  console.log(
    `${r.backend.padEnd(9)} ${r.tokensPerSecond.toFixed(0).padStart(8)}   ${(r.tokensPerSecond / torch.tokens_per_s).toFixed(3).padStart(9)}   ${r.gflops.toFixed(1).padStart(6)}`
  )
console.log(`pytorch   ${torch.tokens_per_s.toFixed(0).padStart(8)}       1.000   ${torch.blas_gflops.toFixed(1).padStart(6)}`)

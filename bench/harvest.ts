// Harvest throughput: FeatureTrace's forward pass on each engine against PyTorch on the same model: Pythia-70m's shape
// (default) or, with --shape llmjp, 12 blocks of LLM-jp-3-1.8B's shape in BF16, capturing layer 12.
// Run: npx tsx bench/harvest.ts [--shape pythia|llmjp] [--tokens 4096] [--engines ort,wasm,cpu]
// (appends to bench/results/harvest.json)
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
const shapeArg = process.argv.indexOf('--shape')
const SHAPE = shapeArg > 0 ? process.argv[shapeArg + 1]! : 'pythia'
/** Each benchmarked shape: the folder make_tiny_models.py writes, its flag, the layer captured and the batch shape. */
const SHAPES = {
  pythia: {
    folder: 'pythia-70m-shape',
    flags: ['--bench'],
    layer: 6,
    context: 64,
    batch: 16,
    description: 'gpt_neox, d=512, 6 layers, 8 heads, d_ff=2048 (Pythia-70m shape, random weights), float32'
  },
  llmjp: {
    folder: 'llm-jp-3-1.8b-shape-12',
    flags: ['--bench-llmjp', '--layers', '12'],
    layer: 12,
    context: 128,
    batch: 8,
    description:
      "llama, d=2048, 12 of LLM-jp-3-1.8B's 24 blocks, 16 heads (16 KV), d_ff=7168, vocab 99,487, no LM head " +
      '(LLM-jp-3-1.8B block shape, random weights N(0, 0.02²)), stored BF16, computed in float32 on both sides'
  }
} as const
if (!(SHAPE in SHAPES)) throw new Error(`--shape ${SHAPE}: expected one of ${Object.keys(SHAPES).join(', ')}`)
const S = SHAPES[SHAPE as keyof typeof SHAPES]
const CONTEXT = S.context
const BATCH = S.batch
const THREADS = ortThreads()
const enginesArg = process.argv.indexOf('--engines')
const ENGINES = (enginesArg > 0 ? process.argv[enginesArg + 1]!.split(',') : ['ort', 'wasm']) as BackendName[]

function model(): string {
  const dir = join(DATA, 'models', S.folder)
  if (!existsSync(join(dir, 'model.safetensors')))
    execFileSync(PYTHON, [join(ROOT, 'tests/fixtures/make_tiny_models.py'), DATA, ...S.flags], { stdio: 'inherit' })
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
): Promise<{
  backend: string
  reason: string
  tokens: number
  tokensPerSecond: number
  steadyTokensPerSecond: number | null
  seconds: number
  gflops: number
  load: number[]
  peakRssMiB: number
}> {
  const choice = await initBackend(backend)
  const load = loadavg()
  const out = join(DATA, `store-${backend}-${Date.now()}`)
  // Times of harvest's progress reports: the first says "loading", each later one follows a batch's forward and store
  // writes. From the end of the first batch to the last: tokens/s without loading and the first forward's warm-up.
  const marks: number[] = []
  const t0 = performance.now()
  const r = await harvest(
    {
      model: dir,
      corpus: file,
      layers: [S.layer],
      out: () => out,
      context: CONTEXT,
      maxTokens: tokensFor(backend),
      dtype: 'f16',
      batchSequences: BATCH,
      dropShort: true
    },
    { signal: new AbortController().signal, progress: () => marks.push(performance.now()) }
  )
  const seconds = (performance.now() - t0) / 1000
  execFileSync('rm', ['-rf', out])
  const batches = marks.length - 1
  return {
    backend,
    reason: choice.reason,
    tokens: tokensFor(backend),
    tokensPerSecond: r.tokensPerSecond ?? 0,
    steadyTokensPerSecond: batches >= 2 ? ((batches - 1) * BATCH * CONTEXT) / ((marks[batches]! - marks[1]!) / 1000) : null,
    seconds,
    // The process's peak so far (monotone over the engines run one after another in this process).
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
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
    String(S.layer),
    String(THREADS)
  ]).toString()
) as {
  tokens_per_s: number
  torch: string
  threads: number
  blas_gflops: number
  load_rss_mib: number
  peak_rss_mib: number
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
  shape: SHAPE,
  model: S.description,
  workload: { tokens: TOKENS, context: CONTEXT, batchSequences: BATCH, layer: S.layer, storeDtype: 'f16' },
  tfjs: results,
  pytorch: { tokensPerSecond: torch.tokens_per_s, blasGflops1024: torch.blas_gflops, loadRssMiB: torch.load_rss_mib, peakRssMiB: torch.peak_rss_mib },
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
console.log(`${S.description}; layer ${S.layer}, context ${CONTEXT}, ${BATCH} sequences per forward`)
console.log("backend   tokens/s   vs PyTorch   after 1st batch   matMul 1024² GFLOP/s (ort: onnxruntime's)   peak RSS MiB")
for (const r of results)
  console.log(
    `${r.backend.padEnd(9)} ${r.tokensPerSecond.toFixed(0).padStart(8)}   ${(r.tokensPerSecond / torch.tokens_per_s).toFixed(3).padStart(9)}   ${(r.steadyTokensPerSecond?.toFixed(0) ?? '–').padStart(15)}   ${r.gflops.toFixed(1).padStart(6)}   ${r.peakRssMiB.toFixed(0).padStart(6)}`
  )
console.log(
  `pytorch   ${torch.tokens_per_s.toFixed(0).padStart(8)}       1.000   ${''.padStart(15)}   ${torch.blas_gflops.toFixed(1).padStart(6)}   ${torch.peak_rss_mib.toFixed(0).padStart(6)}`
)

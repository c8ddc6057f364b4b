// SAE training throughput: FeatureTrace's sparse TopK step on each CPU engine against a PyTorch step
// written as EleutherAI's sparsify does it eagerly, on the same activations and the same number of
// threads. Appends to bench/results/train.json, with the machine's load (it is often shared).
// Run: npx tsx bench/train.ts [--steps 4] [--paper] [--engines ort,wasm] [--only-paper]
//   --paper adds d = 2048, n = 32768 at a small batch (512, or --paper-batch N); --only-paper runs just that size.
// Threads: every core (os.availableParallelism()), or FEATURETRACE_THREADS; PyTorch is given the same number.
import * as tf from '@tensorflow/tfjs-core'
import { arg, matmulGflops, ROOT } from './lib'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { SafetensorsFile, writeSafetensors } from '../src/core/io/safetensors'
import { ortThreads } from '../src/core/ort/engine'
import { Rng } from '../src/core/random'
import { hostThreads } from '../src/core/sae/host-kernel'
import { gradientsFor, optimizerFor, ortEngine, tfjsEncoder, type SaeEncoderEngine } from '../src/core/sae/sparse-host'
import { hostValues, unitRows, type SaeTensors } from '../src/core/sae/topk'
import { initBackend, type BackendName } from '../src/core/tf/backend'

const DATA = join(ROOT, 'bench', '.data')
const PYTHON = process.env.FEATURETRACE_PYTHON ?? '/usr/bin/python3'
const STEPS = arg('--steps', 4)
const THREADS = ortThreads()
const enginesArg = process.argv.indexOf('--engines')
const ENGINES = (enginesArg > 0 ? process.argv[enginesArg + 1]!.split(',') : ['ort', 'wasm']) as BackendName[]

interface Case {
  d: number
  n: number
  k: number
  batch: number
}

async function activations(c: Case, rows: number): Promise<string> {
  mkdirSync(DATA, { recursive: true })
  const file = join(DATA, `train-d${c.d}-rows${rows}.safetensors`)
  if (existsSync(file)) return file
  const rng = new Rng(5)
  const x = new Float32Array(rows * c.d)
  for (let i = 0; i < x.length; i++) x[i] = rng.gaussian()
  await writeSafetensors(file, { activations: { dtype: 'F32', shape: [rows, c.d], data: x } })
  return file
}

/** Seconds per step in each phase, averaged over the timed steps. */
interface Phases {
  encode: number
  hostLoops: number
  /** Adam and W_dec's renormalisation (one pass on the host engines). */
  adam: number
}

/** Wraps an engine's encode to add its time to `phases.encode` (the host loops are the rest of the gradient call). */
function timed(engine: SaeEncoderEngine, phases: Phases): () => void {
  const original = engine.encode
  engine.encode = async (...args) => {
    const t0 = performance.now()
    const r = await original.apply(engine, args)
    phases.encode += (performance.now() - t0) / 1000
    return r
  }
  return () => {
    engine.encode = original
  }
}

async function engineStep(c: Case, x: Float32Array, backend: BackendName): Promise<{ seconds: number; gflops: number; phases: Phases; peakRssGiB: number }> {
  await initBackend(backend)
  const rng = new Rng(1)
  const w = new Float32Array(c.n * c.d).map(() => rng.next() - 0.5)
  const Wdec = tf.tidy(() => unitRows(tf.tensor2d(w, [c.n, c.d])))
  const p: SaeTensors = {
    Wenc: tf.variable(tf.transpose(Wdec)),
    benc: tf.variable(tf.zeros([c.n])),
    Wdec: tf.variable(Wdec),
    bdec: tf.variable(tf.zeros([c.d]))
  }
  Wdec.dispose()
  const adam = optimizerFor(backend, p, { adamBeta1: 0.9, adamBeta2: 0.999, adamEps: 6.25e-10, decoderUnitNorm: true })
  const gradients = gradientsFor(backend)
  const phases: Phases = { encode: 0, hostLoops: 0, adam: 0 }
  const restore = timed(backend === 'ort' ? ortEngine : tfjsEncoder, phases)
  const run = async (i: number): Promise<void> => {
    const off = ((i * c.batch) % (x.length / c.d - c.batch)) * c.d
    const xb = tf.tensor2d(x.subarray(off, off + c.batch * c.d), [c.batch, c.d])
    let t = performance.now()
    const encodeBefore = phases.encode
    const r = await gradients(p, xb, { k: c.k, auxK: 0, auxAlpha: 0 }, null, 0)
    phases.hostLoops += (performance.now() - t) / 1000 - (phases.encode - encodeBefore)
    t = performance.now()
    await adam.apply(p, r.grads, i + 1, 1e-3)
    await r.loss.data()
    // Waits for the update to finish where it runs asynchronously (a device); on the host engines W_dec is
    // HostAdam's host copy already, so this reads nothing out of tfjs (training never reads it per step).
    await hostValues(p.Wdec)
    phases.adam += (performance.now() - t) / 1000
    tf.dispose([xb, r.loss, r.auxLoss, r.l0, r.fired, ...Object.values(r.grads)])
  }
  for (let i = 0; i < 2; i++) await run(i)
  for (const key of Object.keys(phases) as (keyof Phases)[]) phases[key] = 0
  const t0 = performance.now()
  for (let i = 0; i < STEPS; i++) await run(i + 2)
  const seconds = (performance.now() - t0) / 1000 / STEPS
  for (const key of Object.keys(phases) as (keyof Phases)[]) phases[key] /= STEPS
  restore()
  adam.dispose()
  tf.dispose([p.Wenc, p.benc, p.Wdec, p.bdec])
  // Useful work of one step: the dense encoder product plus the k-sparse decoder forward and backward products.
  const flops = 2 * c.batch * c.d * c.n + 8 * c.batch * c.k * c.d
  return { seconds, gflops: flops / seconds / 1e9, phases, peakRssGiB: process.resourceUsage().maxRSS / 2 ** 20 }
}

const cases: (Case & { label: string })[] = []
if (!process.argv.includes('--only-paper')) cases.push({ label: 'issue size', d: 512, n: 8192, k: 32, batch: 4096 })
if (process.argv.includes('--paper') || process.argv.includes('--only-paper'))
  cases.push({ label: 'paper size (Inaba et al.)', d: 2048, n: 32768, k: 32, batch: arg('--paper-batch', 512) })
const loadBefore = loadavg()
const results = []
for (const c of cases) {
  const rows = c.batch * (STEPS + 4)
  const file = await activations(c, rows)
  const f = await SafetensorsFile.open(file)
  const data = await f.readFloat32('activations')
  await f.close()
  console.log(`${c.label}: d=${c.d} n=${c.n} k=${c.k} batch=${c.batch}, ${THREADS} threads, load ${loadavg()[0]!.toFixed(2)}`)
  const torch = JSON.parse(
    execFileSync(PYTHON, [
      join(ROOT, 'bench/torch_train.py'),
      file,
      String(c.d),
      String(c.n),
      String(c.k),
      String(c.batch),
      String(STEPS),
      String(THREADS)
    ]).toString()
  ) as {
    tokens_per_s: number
    step_seconds: number
    blas_gflops: number
    torch: string
    threads: number
  }
  console.log(`  PyTorch: ${torch.tokens_per_s.toFixed(0)} tokens/s (${torch.step_seconds.toFixed(2)} s/step; BLAS ${torch.blas_gflops.toFixed(1)} GFLOP/s)`)
  const engines: Record<string, unknown> = {}
  for (const engine of ENGINES) {
    const r = await engineStep(c, data, engine)
    const matmul = await matmulGflops()
    const tokensPerSecond = c.batch / r.seconds
    engines[engine] = {
      tokensPerSecond,
      stepSeconds: r.seconds,
      usefulGflops: r.gflops,
      tfjsMatmulGflops: matmul,
      phases: r.phases,
      peakRssGiB: r.peakRssGiB,
      ratio: tokensPerSecond / torch.tokens_per_s
    }
    const ph = r.phases
    console.log(
      `  ${engine}: ${tokensPerSecond.toFixed(0)} tokens/s (${r.seconds.toFixed(2)} s/step, ${r.gflops.toFixed(1)} useful GFLOP/s), ratio ${(tokensPerSecond / torch.tokens_per_s).toFixed(3)}; ` +
        `encode ${ph.encode.toFixed(2)} s, host loops ${ph.hostLoops.toFixed(2)} s, Adam + renorm ${ph.adam.toFixed(2)} s; peak RSS ${r.peakRssGiB.toFixed(1)} GiB`
    )
  }
  results.push({
    ...c,
    engines,
    pytorch: {
      tokensPerSecond: torch.tokens_per_s,
      stepSeconds: torch.step_seconds,
      blasGflops: torch.blas_gflops,
      version: torch.torch,
      threads: torch.threads
    }
  })
}
const record = {
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
  commit: execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim(),
  threads: THREADS,
  /** Worker threads of the SAE step's host loops and Adam (src/core/sae/host-kernel.ts). */
  hostThreads: hostThreads(),
  /** 1-, 5- and 15-minute load averages before and after: the machine is often shared, and figures under load are provisional. */
  load: { before: loadBefore, after: loadavg() },
  steps: STEPS,
  results
}
mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
const history = join(ROOT, 'bench/results/train.json')
const previous = existsSync(history) ? (JSON.parse(readFileSync(history, 'utf8')) as unknown[]) : []
writeFileSync(history, JSON.stringify([...previous, record], null, 2) + '\n')

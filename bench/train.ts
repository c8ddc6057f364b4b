// SAE training throughput: FeatureTrace's sparse TopK step on tfjs against a PyTorch step written as
// EleutherAI's sparsify does it eagerly, on the same activations. Appends to bench/results/train.json.
// Run: npx tsx bench/train.ts [--steps 4] [--paper]   (--paper adds d = 2048, n = 32768 at a small batch)
import * as tf from '@tensorflow/tfjs-core'
import { arg, matmulGflops, ROOT } from './lib'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { SafetensorsFile, writeSafetensors } from '../src/core/io/safetensors'
import { Rng } from '../src/core/random'
import { gradientsFor, optimizerFor } from '../src/core/sae/sparse-host'
import { unitRows, type SaeTensors } from '../src/core/sae/topk'
import { initBackend, type BackendName } from '../src/core/tf/backend'

const DATA = join(ROOT, 'bench', '.data')
const PYTHON = process.env.FEATURETRACE_PYTHON ?? '/usr/bin/python3'
const STEPS = arg('--steps', 4)

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

async function tfjsStep(c: Case, x: Float32Array, backend: BackendName): Promise<{ seconds: number; gflops: number }> {
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
  const adam = optimizerFor(backend, p, { adamBeta1: 0.9, adamBeta2: 0.999, adamEps: 6.25e-10 })
  const gradients = gradientsFor(backend)
  const run = async (i: number): Promise<void> => {
    const off = ((i * c.batch) % (x.length / c.d - c.batch)) * c.d
    const xb = tf.tensor2d(x.subarray(off, off + c.batch * c.d), [c.batch, c.d])
    const r = await gradients(p, xb, { k: c.k, auxK: 0, auxAlpha: 0 }, null, 0)
    await adam.apply(p, r.grads, i + 1, 1e-3)
    const normed = unitRows(p.Wdec)
    p.Wdec.assign(normed)
    await r.loss.data()
    tf.dispose([xb, normed, r.loss, r.auxLoss, r.l0, r.fired, ...Object.values(r.grads)])
  }
  for (let i = 0; i < 2; i++) await run(i)
  const t0 = performance.now()
  for (let i = 0; i < STEPS; i++) await run(i + 2)
  const seconds = (performance.now() - t0) / 1000 / STEPS
  adam.dispose()
  tf.dispose([p.Wenc, p.benc, p.Wdec, p.bdec])
  // Useful work of one step: the dense encoder product plus the k-sparse decoder forward and backward products.
  const flops = 2 * c.batch * c.d * c.n + 8 * c.batch * c.k * c.d
  return { seconds, gflops: flops / seconds / 1e9 }
}

const cases: (Case & { label: string })[] = [{ label: 'issue size', d: 512, n: 8192, k: 32, batch: 4096 }]
if (process.argv.includes('--paper')) cases.push({ label: 'paper size (Inaba et al.)', d: 2048, n: 32768, k: 32, batch: 512 })
const results = []
for (const c of cases) {
  const rows = c.batch * (STEPS + 4)
  const file = await activations(c, rows)
  const f = await SafetensorsFile.open(file)
  const data = await f.readFloat32('activations')
  await f.close()
  const wasm = await tfjsStep(c, data, 'wasm')
  const wasmMatmul = await matmulGflops()
  const torch = JSON.parse(
    execFileSync(PYTHON, [join(ROOT, 'bench/torch_train.py'), file, String(c.d), String(c.n), String(c.k), String(c.batch), String(STEPS)]).toString()
  ) as {
    tokens_per_s: number
    step_seconds: number
    blas_gflops: number
    torch: string
    threads: number
  }
  const row = {
    ...c,
    wasm: { tokensPerSecond: c.batch / wasm.seconds, stepSeconds: wasm.seconds, usefulGflops: wasm.gflops, matmulGflops: wasmMatmul },
    pytorch: {
      tokensPerSecond: torch.tokens_per_s,
      stepSeconds: torch.step_seconds,
      blasGflops: torch.blas_gflops,
      version: torch.torch,
      threads: torch.threads
    },
    ratio: c.batch / wasm.seconds / torch.tokens_per_s
  }
  results.push(row)
  console.log(`${c.label}: d=${c.d} n=${c.n} k=${c.k} batch=${c.batch}`)
  console.log(
    `  tfjs wasm: ${row.wasm.tokensPerSecond.toFixed(0)} tokens/s (${wasm.seconds.toFixed(2)} s/step, ${wasm.gflops.toFixed(1)} useful GFLOP/s; wasm matMul ${wasmMatmul.toFixed(1)} GFLOP/s)`
  )
  console.log(`  PyTorch:   ${torch.tokens_per_s.toFixed(0)} tokens/s (${torch.step_seconds.toFixed(2)} s/step; BLAS ${torch.blas_gflops.toFixed(1)} GFLOP/s)`)
  console.log(`  ratio ${row.ratio.toFixed(3)}`)
}
const record = {
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
  steps: STEPS,
  results
}
mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
const history = join(ROOT, 'bench/results/train.json')
const previous = existsSync(history) ? (JSON.parse(readFileSync(history, 'utf8')) as unknown[]) : []
writeFileSync(history, JSON.stringify([...previous, record], null, 2) + '\n')

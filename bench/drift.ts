// Drift at SAE-Track's Pythia-410m scale and matching time. Appends to bench/results/drift.json.
// Run: npx tsx bench/drift.ts [--checkpoints 154] [--latents 65536] [--d 1024] [--keep]
// --keep leaves the generated series in bench/.data/drift-series, and a later run with --keep reuses it.
// The series is generated at f16 (the f32 series is ~41 GB; f16 halves it) with W_dec only in each
// sae_weights.safetensors, since drift reads nothing else.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { solveAssignment } from '../src/core/analysis/assignment'
import { computeDrift, matchRows } from '../src/core/analysis/drift'
import { toFloat16Bits, writeSafetensors } from '../src/core/io/safetensors'
import { Rng } from '../src/core/random'
import { initBackend } from '../src/core/tf/backend'
import { arg, ROOT } from './lib'

const T = arg('--checkpoints', 154)
const N = arg('--latents', 65536)
const D = arg('--d', 1024)
const dir = join(ROOT, 'bench', '.data', 'drift-series')

function gaussians(rng: Rng, count: number): Float32Array {
  return Float32Array.from({ length: count }, () => rng.gaussian())
}

let peakRss = 0
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100)

await initBackend('wasm')
// Matching time at 4,096 and 16,384 latents (d = 64): the final SAE a shuffled, perturbed copy.
const matching: { n: number; seconds: number; solveSeconds: number; recovered: number }[] = []
for (const n of [4096, 16384]) {
  const rng = new Rng(n)
  const d = 64
  const a = gaussians(rng, n * d)
  for (let i = 0; i < n; i++) {
    const row = a.subarray(i * d, (i + 1) * d)
    const s = Math.hypot(...row)
    for (let j = 0; j < d; j++) row[j]! /= s
  }
  const perm = rng.shuffle(Array.from({ length: n }, (_, i) => i))
  const b = new Float32Array(n * d)
  const noise = gaussians(rng, n * d)
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) b[perm[i]! * d + j] = a[i * d + j]! + 0.05 * noise[i * d + j]!
  const t0 = performance.now()
  const m = await matchRows(a, b, n, d)
  const seconds = (performance.now() - t0) / 1000
  const recovered = m.col.reduce((s, c, i) => s + (c === perm[i] ? 1 : 0), 0) / n
  // The solver alone, on the same costs.
  const cost = new Float32Array(n * n)
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let x = 0
      for (let k = 0; k < d; k++) x += a[i * d + k]! * b[j * d + k]!
      cost[i * n + j] = -x
    }
  const t1 = performance.now()
  solveAssignment(cost, n)
  matching.push({ n, seconds, solveSeconds: (performance.now() - t1) / 1000, recovered })
  console.log(`matching n=${n}: ${seconds.toFixed(1)} s (solver ${((performance.now() - t1) / 1000).toFixed(1)} s), recovered ${(100 * recovered).toFixed(2)}%`)
}

// The series (kept and reused with --keep, when one of the same size is there).
const keep = process.argv.includes('--keep')
const dirs: string[] = Array.from({ length: T }, (_, t) => join(dir, `step${t}`))
const reuse = keep && existsSync(join(dir, 'size.json')) && readFileSync(join(dir, 'size.json'), 'utf8') === JSON.stringify({ T, N, D })
const tg = performance.now()
if (!reuse) {
  if (!keep) rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const rng = new Rng(1)
  const base = gaussians(rng, N * D)
  const delta = gaussians(rng, N * D)
  const W = new Float32Array(N * D)
  for (let t = 0; t < T; t++) {
    const f = 0.3 * (1 - t / (T - 1))
    for (let i = 0; i < W.length; i++) W[i] = base[i]! + f * delta[i]!
    const sae = join(dir, `step${t}`)
    mkdirSync(sae)
    writeFileSync(join(sae, 'cfg.json'), JSON.stringify({ architecture: 'topk', d_in: D, d_sae: N, k: 32, featuretrace: { checkpoint_step: t } }))
    await writeSafetensors(join(sae, 'sae_weights.safetensors'), { W_dec: { dtype: 'F16', shape: [N, D], data: toFloat16Bits(W) } })
    if (t % 10 === 0) console.log(`generated ${t + 1}/${T}`)
  }
  writeFileSync(join(dir, 'size.json'), JSON.stringify({ T, N, D }))
}
const generateSeconds = reuse ? null : (performance.now() - tg) / 1000
const bytes = dirs.reduce((s, x) => s + statSync(join(x, 'sae_weights.safetensors')).size, 0)

// Reading the weights once, chunk by chunk (what any pass over the series must at least do).
const tr = performance.now()
const chunk = Buffer.alloc(64 * 2 ** 20)
for (const x of dirs) {
  const fd = openSync(join(x, 'sae_weights.safetensors'), 'r')
  while (readSync(fd, chunk, 0, chunk.length, null) > 0);
  closeSync(fd)
}
const readSeconds = (performance.now() - tr) / 1000

peakRss = 0
const td = performance.now()
const r = await computeDrift(dirs, { match: false }, { signal: new AbortController().signal, progress: () => {} })
const driftSeconds = (performance.now() - td) / 1000
clearInterval(sampler)
const record = {
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
  series: { checkpoints: T, latents: N, d: D, dtype: 'f16', gib: bytes / 2 ** 30, generateSeconds },
  readOnceSeconds: readSeconds,
  driftSeconds,
  ratio: driftSeconds / readSeconds,
  driftPeakRssGiB: peakRss / 2 ** 30,
  check: { meanCosToFinalFirst: r.cosToFinal.subarray(0, N).reduce((a, b) => a + b, 0) / N },
  matching
}
console.log(JSON.stringify(record, null, 2))
const history = join(ROOT, 'bench/results/drift.json')
const previous = existsSync(history) ? (JSON.parse(readFileSync(history, 'utf8')) as unknown[]) : []
writeFileSync(history, JSON.stringify([...previous, record], null, 2) + '\n')
if (!keep) rmSync(dir, { recursive: true, force: true })

// The geometry studies at paper scale: the galaxy of an SAE with d = 2,048 and n = 32,768; spectral
// clustering of 16,384 features; co-occurrence counting over 1M tokens with 32,768 latents.
// Appends to bench/results/geometry.json.
// Run: npx tsx bench/geometry.ts [--d 2048] [--latents 32768] [--spectral 16384] [--k 8] [--tokens 1000000]
//      [--cooc-latents 32768] [--eigen-d 4096] [--only galaxy|spectral|cooc|eigen]
// `eigen` (only when asked for with --only eigen) times all eigenvalues of a random symmetric d × d matrix.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { adjustedMutualInfo, spectralClustering } from '../src/core/analysis/geometry/cluster'
import { galaxyOfCloud } from '../src/core/analysis/geometry/galaxy'
import { affinityFromCounts, cooccurrence } from '../src/core/analysis/geometry/lobes'
import { symmetricEigenvalues } from '../src/core/analysis/geometry/linalg'
import { Rng } from '../src/core/random'
import { initBackend } from '../src/core/tf/backend'
import { arg, matmulGflops, ROOT } from './lib'

const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null
const D = arg('--d', 2048)
const N = arg('--latents', 32768)
const S = arg('--spectral', 16384)
const K = arg('--k', 8)
const TOKENS = arg('--tokens', 1_000_000)
const C = arg('--cooc-latents', 32768)
const EIGEN_D = arg('--eigen-d', 4096)
const TOPK = 32
const BLOCK = 256

const seconds = (t0: number): number => (performance.now() - t0) / 1000

await initBackend('wasm')
const result: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
  backend: 'wasm',
  matmulGflops1024: await matmulGflops(1024)
}
console.log(`wasm matMul: ${(result.matmulGflops1024 as number).toFixed(1)} GFLOP/s`)

/**
 * Synthetic TopK codes: each token's k latents drawn from a Zipf-like frequency law (as SAE feature
 * densities are), most of them from the lobe of the token's document, so blocks have lobe structure.
 */
function blockFirings(tokens: number, n: number, lobes: number, rng: Rng): { fired: Uint8Array; T: number; truth: Int32Array } {
  const T = Math.floor(tokens / BLOCK)
  const fired = new Uint8Array(T * n)
  const perLobe = Math.floor(n / lobes)
  // Inverse-CDF sampling of rank r ∝ 1/(r + 10) within a lobe.
  const weights = Float64Array.from({ length: perLobe }, (_, r) => 1 / (r + 10))
  const cdf = new Float64Array(perLobe)
  weights.reduce((s, w, i) => (cdf[i] = s + w), 0)
  const total = cdf[perLobe - 1]!
  const draw = (): number => {
    const u = rng.next() * total
    let lo = 0
    let hi = perLobe - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid]! < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  for (let t = 0; t < T; t++) {
    const lobe = rng.int(lobes)
    for (let tok = 0; tok < BLOCK; tok++) {
      for (let j = 0; j < TOPK; j++) {
        const l = rng.next() < 0.8 ? lobe : rng.int(lobes)
        fired[t * n + l * perLobe + draw()] = 1
      }
    }
  }
  return { fired, T, truth: Int32Array.from({ length: n }, (_, f) => Math.min(lobes - 1, Math.floor(f / perLobe))) }
}

if (!only || only === 'galaxy') {
  // A decoder whose rows have a power-law covariance spectrum (α = 0.45, the paper's middle layers).
  const rng = new Rng(1)
  const sd = Float64Array.from({ length: D }, (_, j) => Math.pow(j + 1, -0.45 / 2))
  const X = new Float32Array(N * D)
  for (let i = 0; i < N; i++) for (let j = 0; j < D; j++) X[i * D + j] = rng.gaussian() * sd[j]!
  const stages: Record<string, number> = {}
  let last = performance.now()
  const t0 = performance.now()
  const g = galaxyOfCloud(
    X,
    N,
    D,
    {},
    {
      signal: new AbortController().signal,
      progress: (p) => {
        const now = performance.now()
        stages[p.message ?? ''] = (now - last) / 1000
        last = now
      }
    }
  )
  const total = seconds(t0)
  // Each stage's time is logged when the next starts: shift the labels by one.
  const names = Object.keys(stages)
  const timing = Object.fromEntries(names.slice(0, -1).map((name, i) => [name, stages[names[i + 1]!]]))
  result.galaxy = {
    n: N,
    d: D,
    seconds: total,
    stages: timing,
    alpha: g.alpha,
    alpha_ci: g.alpha_ci,
    planted_alpha: 0.45,
    clustering_entropy: g.clustering_entropy,
    clustering_entropy_ci: g.clustering_entropy_ci
  }
  console.log(`galaxy n=${N} d=${D}: ${total.toFixed(1)} s ${JSON.stringify(timing)}; α = ${g.alpha.toFixed(4)} (planted 0.45)`)
}

if (!only || only === 'spectral') {
  // Phi affinity of S features from synthetic block firings with K planted lobes (the ~4k blocks of 1M tokens).
  const rng = new Rng(2)
  const { fired, T, truth } = blockFirings(TOKENS, S, K, rng)
  const features = Array.from({ length: S }, (_, f) => f)
  let t0 = performance.now()
  const { n11, ni } = cooccurrence(fired, T, S, features)
  const countSeconds = seconds(t0)
  t0 = performance.now()
  const A = affinityFromCounts(n11, ni, T, 'phi')
  const affinitySeconds = seconds(t0)
  t0 = performance.now()
  const r = spectralClustering(A, S, K, { seed: 0 })
  const spectralSeconds = seconds(t0)
  const fires = ni.reduce((c, x) => c + (x > 0 ? 1 : 0), 0)
  const ami = adjustedMutualInfo(
    truth.filter((_, f) => ni[f]! > 0),
    r.labels.filter((_, f) => ni[f]! > 0)
  )
  result.spectral = {
    features: S,
    k: K,
    blocks: T,
    countSeconds,
    affinitySeconds,
    spectralSeconds,
    iterations: r.iterations,
    residual: r.residual,
    firingFeatures: fires,
    amiToPlanted: ami
  }
  console.log(
    `spectral ${S} features, k=${K}: ${spectralSeconds.toFixed(1)} s (${r.iterations} iterations, residual ${r.residual.toExponential(1)}), AMI to planted lobes ${ami.toFixed(3)}`
  )
}

if (!only || only === 'cooc') {
  const rng = new Rng(3)
  let t0 = performance.now()
  const { fired, T } = blockFirings(TOKENS, C, 16, rng)
  const generateSeconds = seconds(t0)
  let active = 0
  for (let i = 0; i < fired.length; i++) active += fired[i]!
  const features = Array.from({ length: C }, (_, f) => f)
  t0 = performance.now()
  const { ni } = cooccurrence(fired, T, C, features)
  const countSeconds = seconds(t0)
  result.cooccurrence = {
    tokens: T * BLOCK,
    blocks: T,
    latents: C,
    k: TOPK,
    meanFiringPerBlock: active / T,
    generateSeconds,
    countSeconds,
    increments: null as number | null
  }
  // Σ |set|² / 2: the pair increments the counter does.
  let inc = 0
  for (let t = 0; t < T; t++) {
    let c = 0
    for (let f = 0; f < C; f++) c += fired[t * C + f]!
    inc += (c * (c + 1)) / 2
  }
  ;(result.cooccurrence as { increments: number }).increments = inc
  console.log(
    `co-occurrence: ${T} blocks × ${C} latents (mean ${(active / T).toFixed(0)} firing per block): ${countSeconds.toFixed(1)} s, ${(inc / countSeconds / 1e6).toFixed(0)} M pair increments/s; ${ni.length} counts`
  )
}

if (only === 'eigen') {
  const rng = new Rng(4)
  const A = new Float64Array(EIGEN_D * EIGEN_D)
  for (let i = 0; i < EIGEN_D; i++) for (let j = 0; j <= i; j++) A[i * EIGEN_D + j] = A[j * EIGEN_D + i] = rng.gaussian()
  const t0 = performance.now()
  const e = symmetricEigenvalues(A, EIGEN_D)
  result.eigen = { d: EIGEN_D, seconds: seconds(t0), largest: e[0], smallest: e[EIGEN_D - 1] }
  console.log(`all eigenvalues at d=${EIGEN_D}: ${seconds(t0).toFixed(1)} s`)
}

// The kernel's peak resident size: every stage is synchronous, so a sampling timer would never run.
const peakRss = process.resourceUsage().maxRSS * 1024
result.peakRssGiB = peakRss / 2 ** 30
const file = join(ROOT, 'bench', 'results', 'geometry.json')
const all = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as unknown[]) : []
all.push(result)
writeFileSync(file, JSON.stringify(all, null, 2) + '\n')
console.log(`peak RSS ${(peakRss / 2 ** 30).toFixed(1)} GiB → ${file}`)

// The galaxy scale of the feature cloud (METHODS.md §3, Li et al. 2024): the eigen-spectrum of the
// covariance of decoder rows with its power-law exponent α, the clustering entropy of the cloud, and its
// first three principal components for a 3-D view.
import * as tf from '@tensorflow/tfjs-core'
import { EigenvalueDecomposition, Matrix } from 'ml-matrix'
import { UserError } from '../../../shared/api'
import type { GalaxyResult } from '../../../shared/geometry'
import type { JobContext } from '../../jobs/job'
import { JobCancelled } from '../../jobs/job'
import { transpose } from '../../matrix'
import { Rng } from '../../random'
import { Sae } from '../../sae/sae'
import { covariance, olsFit, symmetricEigenvalues, tidyData, topEigenpairs } from './linalg'

export interface GalaxyOptions {
  /** Ranks (1-based, inclusive) of the power-law fit; default 11–150. */
  ranks?: [number, number]
  /** Points subsampled for the clustering entropy (5,000). */
  entropySample?: number
  /** PCA dimensions for the clustering entropy (100). */
  entropyDims?: number
  bootstraps?: number
  /** Points kept for the 3-D principal-component view. */
  viewPoints?: number
  seed?: number
}

/** The eigenvalue power law of a galaxy result. */
export type PowerLaw = Pick<GalaxyResult, 'alpha' | 'alpha_ci' | 'ranks' | 'r2'>
/** The clustering entropy of a galaxy result. */
export type ClusteringEntropy = Pick<
  GalaxyResult,
  'clustering_entropy' | 'clustering_entropy_ci' | 'gaussian_entropy' | 'knn_entropy' | 'sample' | 'dims' | 'bootstraps'
>

/** α = −slope of log10 λ against log10 rank over the given ranks, with the slope's 95% t interval. */
export function powerLaw(eigenvalues: ArrayLike<number>, ranks: [number, number] = [11, 150]): PowerLaw {
  const hi = Math.min(ranks[1], eigenvalues.length)
  const lo = ranks[0]
  if (hi - lo + 1 < 3) throw new UserError(`The power-law fit needs ranks ${lo}–${ranks[1]}, but the cloud has only ${eigenvalues.length} dimensions.`)
  const x: number[] = []
  const y: number[] = []
  for (let r = lo; r <= hi; r++) {
    const v = eigenvalues[r - 1]!
    if (!(v > 0)) continue
    x.push(Math.log10(r))
    y.push(Math.log10(v))
  }
  const fit = olsFit(x, y)
  const alpha = -fit.slope
  return { alpha, alpha_ci: [alpha - fit.slopeHalfWidth, alpha + fit.slopeHalfWidth], ranks: [lo, hi], r2: fit.r2 }
}

/** ψ(1) = −γ (Euler–Mascheroni). */
const DIGAMMA_1 = -0.5772156649015329

/** Eigenvalues (descending) of the covariance (ddof = 1) of rows `idx` of Y [·, q]. */
function sampleCovEigenvalues(Y: Float64Array, q: number, idx: ArrayLike<number>): number[] {
  const m = idx.length
  const mean = new Float64Array(q)
  for (let p = 0; p < m; p++) for (let j = 0; j < q; j++) mean[j] = mean[j]! + Y[idx[p]! * q + j]!
  for (let j = 0; j < q; j++) mean[j] = mean[j]! / m
  // Accumulated in a flat array: ml-matrix's get/set per element is far too slow for 5,000 × 100².
  const acc = new Float64Array(q * q)
  const row = new Float64Array(q)
  for (let p = 0; p < m; p++) {
    for (let j = 0; j < q; j++) row[j] = Y[idx[p]! * q + j]! - mean[j]!
    for (let a = 0; a < q; a++) {
      const ra = row[a]!
      const base = a * q
      for (let b = a; b < q; b++) acc[base + b]! += ra * row[b]!
    }
  }
  const C = new Matrix(q, q)
  for (let a = 0; a < q; a++) {
    for (let b = a; b < q; b++) {
      const v = acc[a * q + b]! / (m - 1)
      C.set(a, b, v)
      C.set(b, a, v)
    }
  }
  return new EigenvalueDecomposition(C, { assumeSymmetric: true }).realEigenvalues.sort((a, b) => b - a)
}

/** Euclidean distances between all rows of Y [m, q], [m, m] (a tfjs matMul for the Gram matrix). */
function pairwiseDistances(Y: Float64Array, m: number, q: number): Float32Array {
  const G = tf.tidy(() => {
    const y = Float32Array.from(Y)
    return tf.matMul(tf.tensor2d(y, [m, q]), tf.tensor2d(transpose(y, m, q), [q, m]))
  })
  const g = G.dataSync() as Float32Array
  G.dispose()
  const sq = new Float64Array(m)
  for (let i = 0; i < m; i++) {
    let s = 0
    for (let j = 0; j < q; j++) s += Y[i * q + j]! ** 2
    sq[i] = s
  }
  const D = new Float32Array(m * m)
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) D[i * m + j] = i === j ? 0 : Math.sqrt(Math.max(0, sq[i]! + sq[j]! - 2 * g[i * m + j]!))
  return D
}

/**
 * The kNN (Kozachenko–Leonenko) entropy of a bootstrap resample `idx` of the rows of Y, as METHODS.md
 * states it: H = q·mean ln(ρ_i + 0.01) + mean_j ln λ_j + ln(m − 1) − ψ(1), ρ_i the distance to the
 * nearest other point of the resample (0 for a point drawn twice), λ the resample's covariance eigenvalues.
 */
export function knnEntropy(Y: Float64Array, q: number, D: Float32Array, mAll: number, idx: ArrayLike<number>): number {
  const m = idx.length
  const count = new Uint32Array(mAll)
  for (let p = 0; p < m; p++) count[idx[p]!] = count[idx[p]!]! + 1
  const unique: number[] = []
  for (let i = 0; i < mAll; i++) if (count[i]! > 0) unique.push(i)
  const nearest = new Float64Array(mAll).fill(Infinity)
  for (const i of unique) {
    if (count[i]! > 1) {
      nearest[i] = 0
      continue
    }
    let best = Infinity
    const row = i * mAll
    for (const j of unique) if (j !== i && D[row + j]! < best) best = D[row + j]!
    nearest[i] = best
  }
  let sumLogRho = 0
  for (let p = 0; p < m; p++) sumLogRho += Math.log(nearest[idx[p]!]! + 0.01)
  const lambdas = sampleCovEigenvalues(Y, q, idx)
  const meanLogLambda = lambdas.reduce((s, l) => s + Math.log(Math.max(l, 1e-300)), 0) / q
  return (q * sumLogRho) / m + meanLogLambda + Math.log(m - 1) - DIGAMMA_1
}

/** The z-scored, PCA-projected subsample the clustering entropy is measured on: Y [m, q]. */
export function entropyProjection(X: Float32Array, n: number, d: number, sample: number, dims: number, rng: Rng): { Y: Float64Array; m: number; q: number } {
  const m = Math.min(sample, n)
  const rows = rng.shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, m)
  const Z = new Float32Array(m * d)
  for (let p = 0; p < m; p++) Z.set(X.subarray(rows[p]! * d, (rows[p]! + 1) * d), p * d)
  for (let j = 0; j < d; j++) {
    let mu = 0
    for (let p = 0; p < m; p++) mu += Z[p * d + j]!
    mu /= m
    let v = 0
    for (let p = 0; p < m; p++) v += (Z[p * d + j]! - mu) ** 2
    // StandardScaler's convention: population std, and a constant column is left at 0.
    const sd = Math.sqrt(v / m)
    for (let p = 0; p < m; p++) Z[p * d + j] = sd > 0 ? (Z[p * d + j]! - mu) / sd : 0
  }
  const q = Math.min(dims, d, m - 1)
  const z = tf.tensor2d(Z, [m, d])
  const zt = tf.tensor2d(transpose(Z, m, d), [d, m])
  // Top q principal directions of the sample: subspace iteration on Z'Z, never forming the d × d matrix.
  // A few iterations, as scikit-learn's randomized PCA does (7 power iterations): the entropy needs the
  // subspace, not converged individual eigenvectors.
  const top = topEigenpairs((V, b) => tidyData(() => tf.matMul(zt, tf.matMul(z, tf.tensor2d(V, [d, b])))), d, q, {
    maxIterations: 20,
    tolerance: 1e-5,
    seed: 7
  })
  const proj = tidyData(() => tf.matMul(z, tf.tensor2d(Float32Array.from(top.vectors), [d, q])))
  tf.dispose([z, zt])
  return { Y: Float64Array.from(proj), m, q }
}

/** Gaussian entropy of the projected sample minus the mean bootstrap kNN entropy, with a 95% percentile interval. */
export function clusteringEntropy(X: Float32Array, n: number, d: number, opts: GalaxyOptions = {}, signal?: AbortSignal): ClusteringEntropy {
  const rng = new Rng(opts.seed ?? 0)
  const { Y, m, q } = entropyProjection(X, n, d, opts.entropySample ?? 5000, opts.entropyDims ?? 100, rng)
  const all = Array.from({ length: m }, (_, i) => i)
  const lambdas = sampleCovEigenvalues(Y, q, all)
  const gaussian = (q / 2) * (1 + Math.log(2 * Math.PI)) + 0.5 * lambdas.reduce((s, l) => s + Math.log(Math.max(l, 1e-300)), 0)
  const D = pairwiseDistances(Y, m, q)
  const B = opts.bootstraps ?? 30
  const hs: number[] = []
  for (let b = 0; b < B; b++) {
    if (signal?.aborted) throw new JobCancelled()
    const idx = Int32Array.from({ length: m }, () => rng.int(m))
    hs.push(knnEntropy(Y, q, D, m, idx))
  }
  const knn = hs.reduce((s, h) => s + h, 0) / B
  const clustering = hs.map((h) => gaussian - h).sort((a, b) => a - b)
  return {
    clustering_entropy: gaussian - knn,
    clustering_entropy_ci: [quantile(clustering, 0.025), quantile(clustering, 0.975)],
    gaussian_entropy: gaussian,
    knn_entropy: knn,
    sample: m,
    dims: q,
    bootstraps: B
  }
}

/** Linear-interpolated quantile of sorted values (numpy's default). */
export function quantile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  const h = (sorted.length - 1) * p
  const lo = Math.floor(h)
  const hi = Math.min(sorted.length - 1, lo + 1)
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!)
}

/** Everything the galaxy scale reports for one point cloud X [n, d] (decoder rows). */
export function galaxyOfCloud(X: Float32Array, n: number, d: number, opts: GalaxyOptions = {}, ctx?: Pick<JobContext, 'signal' | 'progress'>): GalaxyResult {
  const report = (fraction: number, message: string): void => ctx?.progress({ fraction, rate: null, rateUnit: null, etaSeconds: null, message })
  report(0, 'covariance')
  const { cov, mean } = covariance(X, n, d)
  if (ctx?.signal.aborted) throw new JobCancelled()
  report(0.2, 'eigenvalues')
  const eigenvalues = symmetricEigenvalues(cov, d)
  const fit = powerLaw(eigenvalues, opts.ranks)
  if (ctx?.signal.aborted) throw new JobCancelled()
  report(0.6, 'principal components')
  const c = tf.tensor2d(Float32Array.from(cov), [d, d])
  const pcs = topEigenpairs((V, b) => tidyData(() => tf.matMul(c, tf.tensor2d(V, [d, b]))), d, Math.min(3, d), { tolerance: 1e-6, maxIterations: 200 })
  c.dispose()
  const total = eigenvalues.reduce((s, v) => s + Math.max(0, v), 0)
  const viewRng = new Rng((opts.seed ?? 0) + 1)
  const features = viewRng
    .shuffle(Array.from({ length: n }, (_, i) => i))
    .slice(0, Math.min(n, opts.viewPoints ?? 3000))
    .sort((a, b) => a - b)
  const m = pcs.values.length
  const points = features.map((i) => {
    const p: [number, number, number] = [0, 0, 0]
    for (let c2 = 0; c2 < m; c2++) {
      let s = 0
      for (let j = 0; j < d; j++) s += (X[i * d + j]! - mean[j]!) * pcs.vectors[j * m + c2]!
      p[c2] = s
    }
    return p
  })
  report(0.7, 'clustering entropy')
  const entropy = clusteringEntropy(X, n, d, opts, ctx?.signal)
  report(1, 'done')
  return {
    n,
    d,
    eigenvalues: Array.from(eigenvalues),
    ...fit,
    ...entropy,
    pcs: { explained: Array.from(pcs.values, (v) => v / total), features, points }
  }
}

/** The galaxy of one SAE on disk: its decoder rows W_dec [d_sae, d_in]. */
export async function galaxyOfSae(dir: string, opts: GalaxyOptions = {}, ctx?: Pick<JobContext, 'signal' | 'progress'>): Promise<GalaxyResult> {
  const sae = await Sae.load(dir)
  if (sae.n < 2) throw new UserError(`${dir}: an SAE with ${sae.n} latent has no point cloud to analyse.`)
  return galaxyOfCloud(sae.weights.W_dec, sae.n, sae.d, opts, ctx)
}

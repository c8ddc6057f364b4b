// Clustering and its scores, shared by the lobe and crystal scales: spectral clustering on a precomputed
// affinity, k-means, adjusted mutual information (scikit-learn's definition), silhouette, balanced accuracy.
import * as tf from '@tensorflow/tfjs-core'
import { kmeans as mlKmeans } from 'ml-kmeans'
import type { AmiTest } from '../../../shared/geometry'
import { Rng } from '../../random'
import { lnGamma, tidyData, topEigenpairs } from './linalg'

/** Rows of the affinity kept per tensor: a 16,384² f32 affinity is 1 GiB, held in chunks for the whole solve. */
const OPERATOR_ROWS = 2048

/**
 * k-means (k-means++ seeding, ml-kmeans) restarted `restarts` times with different seeds; the labelling
 * with the lowest inertia wins, as scikit-learn's n_init does.
 */
export function kmeans(points: Float64Array, n: number, dim: number, k: number, opts: { restarts?: number; seed?: number } = {}): Int32Array {
  const data = Array.from({ length: n }, (_, i) => Array.from(points.subarray(i * dim, (i + 1) * dim)))
  let best: Int32Array | null = null
  let bestInertia = Infinity
  for (let r = 0; r < (opts.restarts ?? 10); r++) {
    const res = mlKmeans(data, k, { initialization: 'kmeans++', seed: (opts.seed ?? 0) * 1000 + r + 1, maxIterations: 300 })
    let inertia = 0
    for (let i = 0; i < n; i++) {
      const c = res.centroids[res.clusters[i]!]!
      for (let j = 0; j < dim; j++) inertia += (data[i]![j]! - c[j]!) ** 2
    }
    if (inertia < bestInertia) {
      bestInertia = inertia
      best = Int32Array.from(res.clusters)
    }
  }
  return best!
}

export interface SpectralResult {
  labels: Int32Array
  /** The embedding's eigenvalues of D^-1/2 A D^-1/2 (1 = the trivial one), descending. */
  eigenvalues: number[]
  iterations: number
  residual: number
}

/**
 * Spectral clustering on a precomputed affinity A [n, n] (symmetric, non-negative; its diagonal is
 * ignored, as scipy's Laplacian ignores it): the top-k eigenvectors of D^-1/2 A D^-1/2 (the bottom of the
 * normalised Laplacian) by block subspace iteration, each row divided by √degree as scikit-learn's
 * spectral_embedding does, then k-means. A node of degree 0 gets degree 1 (scipy's convention).
 */
export function spectralClustering(
  A: Float32Array,
  n: number,
  k: number,
  opts: { seed?: number; tolerance?: number; maxIterations?: number; signal?: AbortSignal } = {}
): SpectralResult {
  const deg = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    let s = 0
    const row = i * n
    for (let j = 0; j < n; j++) if (j !== i) s += A[row + j]!
    deg[i] = s > 0 ? s : 1
  }
  const isq = deg.map((x) => 1 / Math.sqrt(x))
  const chunks: { start: number; rows: number; t: tf.Tensor2D }[] = []
  for (let start = 0; start < n; start += OPERATOR_ROWS) {
    const rows = Math.min(OPERATOR_ROWS, n - start)
    const block = A.slice(start * n, (start + rows) * n)
    for (let r = 0; r < rows; r++) block[r * n + start + r] = 0
    chunks.push({ start, rows, t: tf.tensor2d(block, [rows, n]) })
  }
  try {
    // Subspace iteration on M = D^-1/2 A D^-1/2 itself (no shift: shifting by +1 to make it positive squeezes
    // the eigenvalue ratios towards 1 and measured 200 iterations unconverged at 2,048 features). A negative
    // eigenvalue of large magnitude may occupy a slot of the oversampled block, but Rayleigh–Ritz ranks by value.
    const top = topEigenpairs(
      (V, b) => {
        const scaled = new Float32Array(n * b)
        for (let i = 0; i < n; i++) for (let c = 0; c < b; c++) scaled[i * b + c] = V[i * b + c]! * isq[i]!
        const out = new Float32Array(n * b)
        const v = tf.tensor2d(scaled, [n, b])
        for (const ch of chunks) {
          const part = tf.matMul(ch.t, v)
          out.set(part.dataSync() as Float32Array, ch.start * b)
          part.dispose()
        }
        v.dispose()
        for (let i = 0; i < n; i++) for (let c = 0; c < b; c++) out[i * b + c] = out[i * b + c]! * isq[i]!
        return out
      },
      n,
      k,
      { seed: opts.seed ?? 0, tolerance: opts.tolerance ?? 1e-5, maxIterations: opts.maxIterations ?? 200, oversample: Math.max(10, k), signal: opts.signal }
    )
    const emb = new Float64Array(n * k)
    for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) emb[i * k + c] = top.vectors[i * k + c]! * isq[i]!
    return { labels: kmeans(emb, n, k, k, { seed: opts.seed ?? 0 }), eigenvalues: Array.from(top.values), iterations: top.iterations, residual: top.residual }
  } finally {
    for (const ch of chunks) ch.t.dispose()
  }
}

function relabel(labels: ArrayLike<number>): { ids: Int32Array; count: number } {
  const map = new Map<number, number>()
  const ids = new Int32Array(labels.length)
  for (let i = 0; i < labels.length; i++) {
    let v = map.get(labels[i]!)
    if (v === undefined) map.set(labels[i]!, (v = map.size))
    ids[i] = v
  }
  return { ids, count: map.size }
}

function entropyOf(counts: ArrayLike<number>, n: number): number {
  let h = 0
  for (let i = 0; i < counts.length; i++) if (counts[i]! > 0) h -= (counts[i]! / n) * Math.log(counts[i]! / n)
  return h
}

/** E[MI] under the permutation model, given the two labellings' cluster sizes (Vinh et al. 2010). */
export function expectedMutualInformation(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  const lnFact = (x: number): number => lnGamma(x + 1)
  let emi = 0
  const lnN = lnFact(n)
  for (let i = 0; i < a.length; i++) {
    const ai = a[i]!
    for (let j = 0; j < b.length; j++) {
      const bj = b[j]!
      const fixed = lnFact(ai) + lnFact(bj) + lnFact(n - ai) + lnFact(n - bj) - lnN
      for (let nij = Math.max(1, ai + bj - n); nij <= Math.min(ai, bj); nij++) {
        const lnP = fixed - lnFact(nij) - lnFact(ai - nij) - lnFact(bj - nij) - lnFact(n - ai - bj + nij)
        emi += (nij / n) * Math.log((n * nij) / (ai * bj)) * Math.exp(lnP)
      }
    }
  }
  return emi
}

export interface AmiParts {
  mi: number
  emi: number
  hTrue: number
  hPred: number
}

function amiParts(x: ArrayLike<number>, y: ArrayLike<number>): AmiParts & { single: boolean } {
  const n = x.length
  const a = relabel(x)
  const b = relabel(y)
  const ca = new Float64Array(a.count)
  const cb = new Float64Array(b.count)
  const joint = new Map<number, number>()
  for (let i = 0; i < n; i++) {
    ca[a.ids[i]!] = ca[a.ids[i]!]! + 1
    cb[b.ids[i]!] = cb[b.ids[i]!]! + 1
    const key = a.ids[i]! * b.count + b.ids[i]!
    joint.set(key, (joint.get(key) ?? 0) + 1)
  }
  let mi = 0
  for (const [key, nij] of joint) {
    const i = Math.floor(key / b.count)
    const j = key % b.count
    mi += (nij / n) * Math.log((n * nij) / (ca[i]! * cb[j]!))
  }
  return {
    mi: Math.max(0, mi),
    emi: expectedMutualInformation(ca, cb, n),
    hTrue: entropyOf(ca, n),
    hPred: entropyOf(cb, n),
    single: (a.count === 1 && b.count === 1) || n === 0
  }
}

function amiFrom(p: AmiParts): number {
  const normalizer = (p.hTrue + p.hPred) / 2
  let den = normalizer - p.emi
  den = den < 0 ? Math.min(den, -Number.EPSILON) : Math.max(den, Number.EPSILON)
  return (p.mi - p.emi) / den
}

/** Adjusted mutual information with the arithmetic-mean normaliser (scikit-learn's default). */
export function adjustedMutualInfo(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new Error(`adjustedMutualInfo: ${x.length} and ${y.length} labels`)
  const p = amiParts(x, y)
  return p.single ? 1 : amiFrom(p)
}

/** AMI with a permutation null. The marginals (so E[MI] and both entropies) do not change under permutation. */
export function amiPermutationTest(x: ArrayLike<number>, y: ArrayLike<number>, permutations: number, seed = 0): AmiTest {
  const base = amiParts(x, y)
  const ami = base.single ? 1 : amiFrom(base)
  const rng = new Rng(seed)
  const perm = Array.from(y)
  const nulls: number[] = []
  const n = x.length
  for (let p = 0; p < permutations; p++) {
    rng.shuffle(perm)
    const joint = new Map<string, number>()
    const ca = new Map<number, number>()
    const cb = new Map<number, number>()
    for (let i = 0; i < n; i++) {
      const key = `${x[i]!}|${perm[i]!}`
      joint.set(key, (joint.get(key) ?? 0) + 1)
      ca.set(x[i]!, (ca.get(x[i]!) ?? 0) + 1)
      cb.set(perm[i]!, (cb.get(perm[i]!) ?? 0) + 1)
    }
    let mi = 0
    for (const [key, nij] of joint) {
      const [i, j] = key.split('|').map(Number) as [number, number]
      mi += (nij / n) * Math.log((n * nij) / (ca.get(i)! * cb.get(j)!))
    }
    nulls.push(amiFrom({ ...base, mi: Math.max(0, mi) }))
  }
  const mean = nulls.reduce((s, v) => s + v, 0) / Math.max(1, nulls.length)
  const sd = Math.sqrt(nulls.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, nulls.length - 1))
  return { ami, null_mean: mean, null_sd: sd, z: sd > 0 ? (ami - mean) / sd : 0, permutations }
}

/** Mean silhouette (Euclidean) of points [n, dim] with labels; 0 for a singleton's own score, as scikit-learn. */
export function silhouetteScore(points: Float64Array, n: number, dim: number, labels: ArrayLike<number>): number {
  const { ids, count } = relabel(labels)
  if (count < 2 || count > n - 1) throw new Error(`silhouette needs 2 to n − 1 labels, got ${count}`)
  const size = new Float64Array(count)
  for (let i = 0; i < n; i++) size[ids[i]!] = size[ids[i]!]! + 1
  let total = 0
  const sums = new Float64Array(count)
  for (let i = 0; i < n; i++) {
    sums.fill(0)
    for (let j = 0; j < n; j++) {
      if (j === i) continue
      let s = 0
      for (let c = 0; c < dim; c++) s += (points[i * dim + c]! - points[j * dim + c]!) ** 2
      sums[ids[j]!] = sums[ids[j]!]! + Math.sqrt(s)
    }
    const own = ids[i]!
    if (size[own]! <= 1) continue
    const a = sums[own]! / (size[own]! - 1)
    let b = Infinity
    for (let c = 0; c < count; c++) if (c !== own && size[c]! > 0) b = Math.min(b, sums[c]! / size[c]!)
    total += (b - a) / Math.max(a, b)
  }
  return total / n
}

/** Mean recall over the classes present in y_true (scikit-learn's balanced_accuracy_score). */
export function balancedAccuracy(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number {
  const hit = new Map<number, number>()
  const all = new Map<number, number>()
  for (let i = 0; i < yTrue.length; i++) {
    all.set(yTrue[i]!, (all.get(yTrue[i]!) ?? 0) + 1)
    if (yTrue[i] === yPred[i]) hit.set(yTrue[i]!, (hit.get(yTrue[i]!) ?? 0) + 1)
  }
  let s = 0
  for (const [c, cnt] of all) s += (hit.get(c) ?? 0) / cnt
  return s / all.size
}

/**
 * Multinomial logistic regression with an L2 penalty (scikit-learn's default objective, C = 1:
 * Σ cross-entropy + ½‖W‖²), fitted by full-batch Adam in tfjs with the gradient written out (the tfjs
 * build here registers no autodiff kernels): ∂/∂W = Xᵀ(P − Y) + W, ∂/∂b = Σ(P − Y), both divided by N.
 * Returns the predicted class of each test row.
 */
export function logisticRegression(
  train: Float32Array,
  yTrain: Int32Array,
  test: Float32Array,
  dim: number,
  classes: number,
  opts: { steps?: number; lr?: number } = {}
): Int32Array {
  const nTrain = yTrain.length
  const nTest = test.length / dim
  const lr = opts.lr ?? 0.05
  const xtData = new Float32Array(dim * nTrain)
  for (let i = 0; i < nTrain; i++) for (let j = 0; j < dim; j++) xtData[j * nTrain + i] = train[i * dim + j]!
  const x = tf.tensor2d(train, [nTrain, dim])
  const xt = tf.tensor2d(xtData, [dim, nTrain])
  const y = tf.oneHot(tf.tensor1d(yTrain, 'int32'), classes)
  let W: tf.Tensor = tf.zeros([dim, classes])
  let b: tf.Tensor = tf.zeros([classes])
  let mW: tf.Tensor = tf.zerosLike(W)
  let vW: tf.Tensor = tf.zerosLike(W)
  let mb: tf.Tensor = tf.zerosLike(b)
  let vb: tf.Tensor = tf.zerosLike(b)
  const beta1 = 0.9
  const beta2 = 0.999
  try {
    for (let s = 1; s <= (opts.steps ?? 300); s++) {
      const next = tf.tidy(() => {
        const err = tf.sub(tf.softmax(tf.add(tf.matMul(x, W as tf.Tensor2D), b)), y)
        const gW = tf.div(tf.add(tf.matMul(xt, err as tf.Tensor2D), W), nTrain)
        const gb = tf.div(tf.sum(err, 0), nTrain)
        const c1 = 1 - beta1 ** s
        const c2 = 1 - beta2 ** s
        const m1 = tf.add(tf.mul(beta1, mW), tf.mul(1 - beta1, gW))
        const v1 = tf.add(tf.mul(beta2, vW), tf.mul(1 - beta2, tf.square(gW)))
        const m2 = tf.add(tf.mul(beta1, mb), tf.mul(1 - beta1, gb))
        const v2 = tf.add(tf.mul(beta2, vb), tf.mul(1 - beta2, tf.square(gb)))
        const W1 = tf.sub(W, tf.div(tf.mul(lr / c1, m1), tf.add(tf.sqrt(tf.div(v1, c2)), 1e-8)))
        const b1 = tf.sub(b, tf.div(tf.mul(lr / c1, m2), tf.add(tf.sqrt(tf.div(v2, c2)), 1e-8)))
        return [W1, b1, m1, v1, m2, v2] as tf.Tensor[]
      })
      tf.dispose([W, b, mW, vW, mb, vb])
      ;[W, b, mW, vW, mb, vb] = next as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]
    }
    return tidyData<Int32Array>(() => tf.argMax(tf.add(tf.matMul(tf.tensor2d(test, [nTest, dim]), W as tf.Tensor2D), b), 1))
  } finally {
    tf.dispose([W, b, mW, vW, mb, vb, x, xt, y])
  }
}

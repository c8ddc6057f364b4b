// The crystal scale of the feature cloud (METHODS.md §3): word-pair difference vectors from a checkpoint's
// activations, LDA on the pair types to remove distractor directions (word length above all), and the
// search for parallelograms and trapezoids among pairs of the same type.
import * as tf from '@tensorflow/tfjs-core'
import { CholeskyDecomposition, EigenvalueDecomposition, inverse, Matrix } from 'ml-matrix'
import { UserError } from '../../../shared/api'
import type { CrystalResult, Quadruplet } from '../../../shared/geometry'
import type { JobContext } from '../../jobs/job'
import { JobCancelled } from '../../jobs/job'
import { CheckpointFolder } from '../../lm/checkpoint'
import { loadModel } from '../../lm/model'
import { Rng } from '../../random'
import { silhouetteScore } from './cluster'
import type { WordPair } from './pairs'

export { readPairs, type WordPair } from './pairs'

/**
 * The residual stream after block `layer` at the last token of each word, each word run on its own
 * (after the model's BOS where it has one, with `prefix` in front: " " by default, the form a word takes
 * inside a sentence for byte-level BPE tokenizers). [words, d].
 */
export async function wordActivations(
  modelDir: string,
  layer: number,
  words: string[],
  opts: { prefix?: string; signal?: AbortSignal } = {}
): Promise<Float32Array> {
  const checkpoint = CheckpointFolder.open(modelDir)
  const tokenizer = checkpoint.tokenizer()
  let model: Awaited<ReturnType<typeof loadModel>>
  try {
    model = await loadModel(checkpoint, layer)
  } finally {
    await checkpoint.close()
  }
  const d = model.dModel
  const out = new Float32Array(words.length * d)
  try {
    for (const [w, word] of words.entries()) {
      if (opts.signal?.aborted) throw new JobCancelled()
      const ids = tokenizer.encode((opts.prefix ?? ' ') + word)
      if (tokenizer.bos !== null) ids.unshift(tokenizer.bos)
      if (ids.length === 0) throw new UserError(`"${word}" tokenises to nothing; remove it from the pair list.`)
      // Not inside tf.tidy: the model caches rotary tables and masks across calls.
      const input = tf.tensor2d([ids], [1, ids.length], 'int32')
      const states = model.hiddenStates(input, [layer])
      const last = tf.slice(states[0]!, [0, ids.length - 1, 0], [1, 1, d])
      out.set(last.dataSync() as Float32Array, w * d)
      tf.dispose([input, last, ...states])
    }
  } finally {
    model.dispose()
  }
  return out
}

/**
 * S_W's diagonal gets this × its mean eigenvalue by default. With fewer pairs than dimensions an unshrunk
 * LDA can collapse every type onto a point, making any pairs look parallel; 0.1 keeps it honest on the
 * demo lists while a planted distractor (far larger within-type variance) is still removed.
 */
export const DEFAULT_SHRINKAGE = 0.1

export interface Lda {
  /** [d, q] row-major: the discriminant directions, most discriminating first, scaled so wᵀ S_W w = 1. */
  directions: Float64Array
  q: number
  /** Between/within-class variance ratio of each direction. */
  eigenvalues: number[]
}

/**
 * Linear discriminant analysis, S_B w = λ S_W w, in the span of the centred data (outside it both
 * scatters vanish), with `shrinkage` × its mean eigenvalue added to S_W's diagonal so it stays invertible
 * with few pairs per type. Solved by Cholesky whitening and a symmetric EVD.
 */
export function lda(X: Float64Array, N: number, d: number, labels: ArrayLike<number>, opts: { shrinkage?: number } = {}): Lda {
  const classes = [...new Set(Array.from(labels))].sort((a, b) => a - b)
  const C = classes.length
  if (C < 2) throw new UserError('LDA needs pairs of at least two types.')
  const mu = new Float64Array(d)
  for (let i = 0; i < N; i++) for (let j = 0; j < d; j++) mu[j] = mu[j]! + X[i * d + j]! / N
  // An orthonormal basis of the centred data's span, from the N × N Gram matrix.
  const Xc = new Matrix(N, d)
  for (let i = 0; i < N; i++) for (let j = 0; j < d; j++) Xc.set(i, j, X[i * d + j]! - mu[j]!)
  const gram = new EigenvalueDecomposition(Xc.mmul(Xc.transpose()), { assumeSymmetric: true })
  const gVals = gram.realEigenvalues
  const top = Math.max(...gVals)
  const keep = gVals.map((v, i) => [v, i] as const).filter(([v]) => v > 1e-10 * top)
  const r = keep.length
  const basis = new Matrix(d, r) // columns: Xcᵀ u / √λ
  const XcT = Xc.transpose()
  keep.forEach(([v, i], c) => {
    const u = gram.eigenvectorMatrix.getColumnVector(i)
    const col = XcT.mmul(u).div(Math.sqrt(v))
    for (let j = 0; j < d; j++) basis.set(j, c, col.get(j, 0))
  })
  const Z = Xc.mmul(basis) // N × r coordinates
  const Sw = new Matrix(r, r)
  const Sb = new Matrix(r, r)
  for (const cls of classes) {
    const rows = Array.from(labels).flatMap((l, i) => (l === cls ? [i] : []))
    const m = new Float64Array(r)
    for (const i of rows) for (let c = 0; c < r; c++) m[c] = m[c]! + Z.get(i, c) / rows.length
    for (let a = 0; a < r; a++) for (let b = 0; b < r; b++) Sb.set(a, b, Sb.get(a, b) + rows.length * m[a]! * m[b]!)
    for (const i of rows) for (let a = 0; a < r; a++) for (let b = 0; b < r; b++) Sw.set(a, b, Sw.get(a, b) + (Z.get(i, a) - m[a]!) * (Z.get(i, b) - m[b]!))
  }
  const shrink = (opts.shrinkage ?? DEFAULT_SHRINKAGE) * (Sw.trace() / r)
  for (let a = 0; a < r; a++) Sw.set(a, a, Sw.get(a, a) + shrink)
  const chol = new CholeskyDecomposition(Sw)
  if (!chol.isPositiveDefinite()) throw new UserError('LDA: the within-type scatter is singular; add more pairs per type or raise the shrinkage.')
  const Linv = inverse(chol.lowerTriangularMatrix)
  const M = Linv.mmul(Sb).mmul(Linv.transpose())
  const evd = new EigenvalueDecomposition(M.add(M.transpose()).div(2), { assumeSymmetric: true })
  const order = evd.realEigenvalues.map((v, i) => [v, i] as const).sort((x, y) => y[0] - x[0])
  const q = Math.min(C - 1, r)
  const W = basis.mmul(Linv.transpose()).mmul(evd.eigenvectorMatrix) // d × r, columns in evd order
  const directions = new Float64Array(d * q)
  for (let c = 0; c < q; c++) for (let j = 0; j < d; j++) directions[j * q + c] = W.get(j, order[c]![1])
  return { directions, q, eigenvalues: order.slice(0, q).map((o) => o[0]) }
}

/** Rows of X [N, d] projected on the first `q` of the directions [d, Q]. */
export function project(X: Float64Array | Float32Array, N: number, d: number, directions: Float64Array, Q: number, q: number): Float64Array {
  const out = new Float64Array(N * q)
  for (let i = 0; i < N; i++)
    for (let c = 0; c < q; c++) {
      let s = 0
      for (let j = 0; j < d; j++) s += X[i * d + j]! * directions[j * Q + c]!
      out[i * q + c] = s
    }
  return out
}

export interface CrystalOptions {
  shrinkage?: number
  /** Cosine above which two differences count as parallel (0.9). */
  parallel?: number
  /** Length ratio at or above which parallel differences form a parallelogram, below it a trapezoid (0.8). */
  parallelogramRatio?: number
  /** Quadruplets reported (20). */
  top?: number
  /** Seed of the shuffled-type control. */
  seed?: number
}

function cosine(a: Float64Array, b: Float64Array): number {
  let ab = 0
  let aa = 0
  let bb = 0
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!
    aa += a[i]! * a[i]!
    bb += b[i]! * b[i]!
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0
}

function norm(a: Float64Array): number {
  return Math.sqrt(a.reduce((s, v) => s + v * v, 0))
}

/** Top two principal directions of the rows of V [W, d] (centred), [d, 2]. */
function topTwoDirections(V: Float64Array, Wn: number, d: number): Float64Array {
  const M = new Matrix(Wn, d)
  const mu = new Float64Array(d)
  for (let i = 0; i < Wn; i++) for (let j = 0; j < d; j++) mu[j] = mu[j]! + V[i * d + j]! / Wn
  for (let i = 0; i < Wn; i++) for (let j = 0; j < d; j++) M.set(i, j, V[i * d + j]! - mu[j]!)
  const g = new EigenvalueDecomposition(M.mmul(M.transpose()), { assumeSymmetric: true })
  const order = g.realEigenvalues.map((v, i) => [v, i] as const).sort((x, y) => y[0] - x[0])
  const out = new Float64Array(d * 2)
  for (let c = 0; c < 2; c++) {
    const col = M.transpose().mmul(g.eigenvectorMatrix.getColumnVector(order[c]![1]))
    const n = Math.sqrt(col.to1DArray().reduce((s, v) => s + v * v, 0)) || 1
    for (let j = 0; j < d; j++) out[j * 2 + c] = col.get(j, 0) / n
  }
  return out
}

/** Crystals from word vectors [words, d] and the pairs over them. */
export function crystalsFromVectors(
  words: string[],
  vectors: Float32Array | Float64Array,
  d: number,
  pairs: WordPair[],
  opts: CrystalOptions = {}
): CrystalResult {
  const index = new Map(words.map((w, i) => [w, i]))
  const types = [...new Set(pairs.map((p) => p.type))]
  const P = pairs.length
  const diffs = new Float64Array(P * d)
  const labels = new Int32Array(P)
  pairs.forEach((p, i) => {
    const a = index.get(p.a)!
    const b = index.get(p.b)!
    for (let j = 0; j < d; j++) diffs[i * d + j] = vectors[b * d + j]! - vectors[a * d + j]!
    labels[i] = types.indexOf(p.type)
  })
  const fit = lda(diffs, P, d, labels, { shrinkage: opts.shrinkage })
  const silhouette: CrystalResult['silhouette'] = []
  for (let q = 1; q <= fit.q; q++) {
    const Y = project(diffs, P, d, fit.directions, fit.q, q)
    silhouette.push({ components: q, score: types.length >= 2 && types.length < P ? silhouetteScore(Y, P, q, labels) : NaN })
  }
  // Parallelism needs a plane at least: the sweep chooses among 2…C−1 components when there are that many.
  const eligible = silhouette.filter((s) => s.components >= Math.min(2, fit.q))
  const best = eligible.reduce((a, b) => (b.score > a.score ? b : a), eligible[0]!)
  const q = best.components
  const after = project(diffs, P, d, fit.directions, fit.q, q)
  const wordsAfter = project(vectors, words.length, d, fit.directions, fit.q, Math.min(2, fit.q))
  const pcs = topTwoDirections(Float64Array.from(vectors), words.length, d)
  const wordsBefore = project(vectors, words.length, d, pcs, 2, 2)
  const parallel = opts.parallel ?? 0.9
  const ratioMin = opts.parallelogramRatio ?? 0.8
  const all: Quadruplet[] = []
  let sumBefore = 0
  let sumAfter = 0
  let parBefore = 0
  let parAfter = 0
  let candidates = 0
  const planeAfter = (w: number): [number, number] => (fit.q >= 2 ? [wordsAfter[w * 2]!, wordsAfter[w * 2 + 1]!] : [wordsAfter[w]!, 0])
  for (let i = 0; i < P; i++) {
    for (let j = i + 1; j < P; j++) {
      if (labels[i] !== labels[j]) continue
      candidates++
      const di = diffs.subarray(i * d, (i + 1) * d)
      const dj = diffs.subarray(j * d, (j + 1) * d)
      const ai = after.subarray(i * q, (i + 1) * q)
      const aj = after.subarray(j * q, (j + 1) * q)
      const cb = cosine(di, dj)
      const ca = cosine(ai, aj)
      sumBefore += cb
      sumAfter += ca
      if (cb >= parallel) parBefore++
      if (ca < parallel) continue
      parAfter++
      const ratio = Math.min(norm(ai), norm(aj)) / Math.max(norm(ai), norm(aj))
      const ws = [pairs[i]!.a, pairs[i]!.b, pairs[j]!.a, pairs[j]!.b] as [string, string, string, string]
      const ids = ws.map((w) => index.get(w)!)
      all.push({
        type: pairs[i]!.type,
        words: ws,
        kind: ratio >= ratioMin ? 'parallelogram' : 'trapezoid',
        cos_before: cb,
        cos_after: ca,
        length_ratio: ratio,
        plane_before: ids.map((w) => [wordsBefore[w * 2]!, wordsBefore[w * 2 + 1]!]),
        plane_after: ids.map(planeAfter)
      })
    }
  }
  all.sort((x, y) => y.cos_after * y.length_ratio - x.cos_after * x.length_ratio)
  const rng = new Rng(opts.seed ?? 0)
  let nullSum = 0
  const shuffles = 5
  for (let s = 0; s < shuffles; s++) {
    const shuffled = Int32Array.from(rng.shuffle(Array.from(labels)))
    const f = lda(diffs, P, d, shuffled, { shrinkage: opts.shrinkage })
    const Y = project(diffs, P, d, f.directions, f.q, Math.min(q, f.q))
    const qq = Math.min(q, f.q)
    let same = 0
    let par = 0
    for (let i = 0; i < P; i++)
      for (let j = i + 1; j < P; j++) {
        if (shuffled[i] !== shuffled[j]) continue
        same++
        if (cosine(Y.subarray(i * qq, (i + 1) * qq), Y.subarray(j * qq, (j + 1) * qq)) >= parallel) par++
      }
    nullSum += same ? par / same : 0
  }
  return {
    pairs: P,
    types,
    d,
    silhouette,
    components: q,
    lda_eigenvalues: fit.eigenvalues,
    mean_cos_before: candidates ? sumBefore / candidates : NaN,
    mean_cos_after: candidates ? sumAfter / candidates : NaN,
    parallel_before: candidates ? parBefore / candidates : 0,
    parallel_after: candidates ? parAfter / candidates : 0,
    parallel_after_null: nullSum / shuffles,
    counts: { parallelogram: all.filter((x) => x.kind === 'parallelogram').length, trapezoid: all.filter((x) => x.kind === 'trapezoid').length, candidates },
    quadruplets: all.slice(0, opts.top ?? 20)
  }
}

/** Crystals of one checkpoint: its activations at layer `layer` for every word of the pair lists. */
export async function crystalsOfCheckpoint(
  modelDir: string,
  layer: number,
  pairs: WordPair[],
  opts: CrystalOptions & { prefix?: string } = {},
  ctx?: Pick<JobContext, 'signal' | 'progress'>
): Promise<CrystalResult & { layer: number }> {
  const words = [...new Set(pairs.flatMap((p) => [p.a, p.b]))]
  ctx?.progress({ fraction: 0, rate: null, rateUnit: null, etaSeconds: null, message: `activations of ${words.length} words` })
  const vectors = await wordActivations(modelDir, layer, words, { prefix: opts.prefix, signal: ctx?.signal })
  const d = vectors.length / words.length
  const r = crystalsFromVectors(words, vectors, d, pairs, opts)
  ctx?.progress({ fraction: 1, rate: null, rateUnit: null, etaSeconds: null, message: 'done' })
  return { layer, ...r }
}

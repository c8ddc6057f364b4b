// Linear algebra the geometry studies share: covariance of a point cloud, all eigenvalues of a symmetric
// matrix, the top eigenpairs of a large symmetric operator, and ordinary least squares with a t interval.
import * as tf from '@tensorflow/tfjs-core'
import { EigenvalueDecomposition, Matrix } from 'ml-matrix'
import jStat from 'jstat'
import { JobCancelled } from '../../jobs/job'
import { Rng } from '../../random'

/**
 * The data of the tensor `f` builds, with everything else `f` made disposed. Typed arrays are never
 * returned from tf.tidy itself: tidy walks its result element by element looking for tensors.
 */
export function tidyData<T extends Float32Array | Int32Array = Float32Array>(f: () => tf.Tensor): T {
  const t = tf.tidy(f)
  const data = t.dataSync() as T
  t.dispose()
  return data
}

/** Rows of `rowsPerChunk` keep the transposed copy and the tensors of one step small. */
const CHUNK_ROWS = 4096

/**
 * Centred covariance (ddof = 1) of n points in R^d, [d, d] row-major. The sum of outer products runs as
 * tfjs matMuls (f32, one chunk of rows at a time, accumulated in f64): at n = 32,768, d = 2,048 that is
 * 275 GFLOP, far beyond plain JS loops. The transposed operand is built here because tfjs-wasm is much
 * slower when matMul transposes internally.
 */
export function covariance(X: Float32Array, n: number, d: number): { cov: Float64Array; mean: Float64Array } {
  if (n < 2) throw new Error(`covariance needs at least 2 points, got ${n}`)
  const mean = new Float64Array(d)
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] = mean[j]! + X[i * d + j]!
  for (let j = 0; j < d; j++) mean[j] = mean[j]! / n
  const cov = new Float64Array(d * d)
  for (let r0 = 0; r0 < n; r0 += CHUNK_ROWS) {
    const rows = Math.min(CHUNK_ROWS, n - r0)
    const xc = new Float32Array(rows * d)
    const xt = new Float32Array(d * rows)
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < d; j++) {
        const v = X[(r0 + i) * d + j]! - mean[j]!
        xc[i * d + j] = v
        xt[j * rows + i] = v
      }
    }
    const part = tf.tidy(() => tf.matMul(tf.tensor2d(xt, [d, rows]), tf.tensor2d(xc, [rows, d])))
    const data = part.dataSync()
    part.dispose()
    for (let i = 0; i < d * d; i++) cov[i] = cov[i]! + data[i]!
  }
  for (let i = 0; i < d * d; i++) cov[i] = cov[i]! / (n - 1)
  return { cov, mean }
}

/**
 * Every eigenvalue of a symmetric matrix [d, d], descending: Householder reduction to tridiagonal form,
 * then implicit QL without eigenvectors. Written here because ml-matrix's EVD (which always forms the
 * eigenvectors) measured 11.4 s at d = 1,024 on this machine, so minutes at 2,048 and ~12 min at 4,096;
 * this path is O(4/3 d^3) on flat typed arrays. The input is not modified.
 */
export function symmetricEigenvalues(A: Float64Array, d: number): Float64Array {
  const a = Float64Array.from(A)
  const diag = new Float64Array(d)
  const off = new Float64Array(d)
  const p = new Float64Array(d)
  // Both triangles are kept up to date so every inner loop reads a row contiguously.
  for (let i = d - 1; i >= 1; i--) {
    const l = i - 1
    const ri = i * d
    let h = 0
    if (l > 0) {
      let scale = 0
      for (let k = 0; k <= l; k++) scale += Math.abs(a[ri + k]!)
      if (scale === 0) {
        off[i] = a[ri + l]!
      } else {
        for (let k = 0; k <= l; k++) {
          a[ri + k] = a[ri + k]! / scale
          h += a[ri + k]! * a[ri + k]!
        }
        const f = a[ri + l]!
        const g = f >= 0 ? -Math.sqrt(h) : Math.sqrt(h)
        off[i] = scale * g
        h -= f * g
        a[ri + l] = f - g
        // p = A u / h, K = u'p / 2h, q = p - K u; A -= u q' + q u'
        let upSum = 0
        for (let j = 0; j <= l; j++) {
          const rj = j * d
          let s = 0
          for (let k = 0; k <= l; k++) s += a[rj + k]! * a[ri + k]!
          p[j] = s / h
          upSum += p[j]! * a[ri + j]!
        }
        const K = upSum / (h + h)
        for (let j = 0; j <= l; j++) p[j] = p[j]! - K * a[ri + j]!
        for (let j = 0; j <= l; j++) {
          const rj = j * d
          const uj = a[ri + j]!
          const qj = p[j]!
          for (let k = 0; k <= l; k++) a[rj + k] = a[rj + k]! - (uj * p[k]! + qj * a[ri + k]!)
        }
      }
    } else {
      off[i] = a[ri + l]!
    }
  }
  for (let i = 0; i < d; i++) diag[i] = a[i * d + i]!
  for (let i = 1; i < d; i++) off[i - 1] = off[i]!
  off[d - 1] = 0
  tridiagonalQL(diag, off)
  return diag.sort().reverse()
}

/** Eigenvalues of a symmetric tridiagonal matrix (diagonal, sub-diagonal in e[0..n-2]) in place in d. */
function tridiagonalQL(dg: Float64Array, e: Float64Array): void {
  const n = dg.length
  for (let l = 0; l < n; l++) {
    let iter = 0
    let m: number
    do {
      for (m = l; m < n - 1; m++) {
        const dd = Math.abs(dg[m]!) + Math.abs(dg[m + 1]!)
        if (Math.abs(e[m]!) <= Number.EPSILON * dd) break
      }
      if (m !== l) {
        if (iter++ === 60) throw new Error('tridiagonal QL did not converge in 60 iterations')
        let g = (dg[l + 1]! - dg[l]!) / (2 * e[l]!)
        let r = Math.hypot(g, 1)
        g = dg[m]! - dg[l]! + e[l]! / (g + (g >= 0 ? Math.abs(r) : -Math.abs(r)))
        let s = 1
        let c = 1
        let p = 0
        let i: number
        let underflow = false
        for (i = m - 1; i >= l; i--) {
          const f = s * e[i]!
          const b = c * e[i]!
          r = Math.hypot(f, g)
          e[i + 1] = r
          if (r === 0) {
            dg[i + 1] = dg[i + 1]! - p
            e[m] = 0
            underflow = true
            break
          }
          s = f / r
          c = g / r
          g = dg[i + 1]! - p
          r = (dg[i]! - g) * s + 2 * c * b
          p = s * r
          dg[i + 1] = g + p
          g = c * r - b
        }
        if (underflow) continue
        dg[l] = dg[l]! - p
        e[l] = g
        e[m] = 0
      }
    } while (m !== l)
  }
}

/** A block of b vectors in R^d, stored [d, b] row-major (so a tfjs matMul takes it as is). */
export type Block = Float32Array

/** Orthonormalises the columns of a [d, b] block in place (modified Gram–Schmidt, twice, in f64). */
export function orthonormalize(V: Float64Array, d: number, b: number): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < b; j++) {
      for (let q = 0; q < j; q++) {
        let dot = 0
        for (let i = 0; i < d; i++) dot += V[i * b + j]! * V[i * b + q]!
        for (let i = 0; i < d; i++) V[i * b + j] = V[i * b + j]! - dot * V[i * b + q]!
      }
      let norm = 0
      for (let i = 0; i < d; i++) norm += V[i * b + j]! ** 2
      norm = Math.sqrt(norm)
      // A column that collapsed is replaced by a fresh direction orthogonal to the earlier ones on the next pass.
      const inv = norm > 1e-300 ? 1 / norm : 0
      for (let i = 0; i < d; i++) V[i * b + j] = inv ? V[i * b + j]! * inv : i === j % d ? 1 : 0
    }
  }
}

export interface TopEigen {
  /** Descending. */
  values: Float64Array
  /** [d, m] row-major: column j is the eigenvector of values[j]. */
  vectors: Float64Array
  iterations: number
  /** Largest residual ‖A v − λ v‖ / |λ_1| of the returned pairs. */
  residual: number
}

/**
 * The m largest eigenpairs of a symmetric operator by block subspace iteration with Rayleigh–Ritz
 * (block of m + oversample vectors). `apply` multiplies the operator by a [d, b] block. Used where only
 * a few eigenvectors of a large matrix are needed (spectral embeddings of 16k features, PCA of a sample),
 * which a full EVD would waste O(d^3) on.
 */
export function topEigenpairs(
  apply: (V: Float32Array, b: number) => Float32Array,
  d: number,
  m: number,
  opts: { oversample?: number; maxIterations?: number; tolerance?: number; seed?: number; signal?: AbortSignal } = {}
): TopEigen {
  const b = Math.min(d, m + (opts.oversample ?? Math.max(5, Math.ceil(m / 4))))
  const maxIt = opts.maxIterations ?? 300
  const tol = opts.tolerance ?? 1e-6
  const rng = new Rng(opts.seed ?? 1)
  let Q = Float64Array.from({ length: d * b }, () => rng.gaussian())
  orthonormalize(Q, d, b)
  let values = new Float64Array(m)
  let vectors = new Float64Array(d * m)
  let residual = Infinity
  let it = 0
  for (it = 1; it <= maxIt; it++) {
    if (opts.signal?.aborted) throw new JobCancelled()
    const Z64 = Float64Array.from(apply(Float32Array.from(Q), b))
    // H = Q' Z (b × b), symmetrised.
    const h = new Float64Array(b * b)
    for (let i = 0; i < d; i++) {
      const row = i * b
      for (let p = 0; p < b; p++) {
        const qp = Q[row + p]!
        for (let q = 0; q < b; q++) h[p * b + q]! += qp * Z64[row + q]!
      }
    }
    const H = new Matrix(b, b)
    for (let p = 0; p < b; p++)
      for (let q = p; q < b; q++) {
        const v = (h[p * b + q]! + h[q * b + p]!) / 2
        H.set(p, q, v)
        H.set(q, p, v)
      }
    const evd = new EigenvalueDecomposition(H, { assumeSymmetric: true })
    const order = evd.realEigenvalues.map((v, i) => [v, i] as const).sort((x, y) => y[0] - x[0])
    // U with its columns in descending order, flat [c][p] (ml-matrix's get() in the inner loop is slow).
    const U = new Float64Array(b * b)
    for (let c = 0; c < b; c++) for (let p = 0; p < b; p++) U[c * b + p] = evd.eigenvectorMatrix.get(p, order[c]![1])
    // Ritz vectors X = Q U and A X = Z U, in descending order.
    const X = new Float64Array(d * b)
    const AX = new Float64Array(d * b)
    for (let i = 0; i < d; i++) {
      const row = i * b
      for (let c = 0; c < b; c++) {
        let sx = 0
        let sz = 0
        const uc = c * b
        for (let p = 0; p < b; p++) {
          const u = U[uc + p]!
          sx += Q[row + p]! * u
          sz += Z64[row + p]! * u
        }
        X[row + c] = sx
        AX[row + c] = sz
      }
    }
    values = Float64Array.from(order.slice(0, m).map((o) => o[0]))
    residual = 0
    const top = Math.max(Math.abs(values[0]!), 1e-300)
    for (let c = 0; c < m; c++) {
      let r = 0
      for (let i = 0; i < d; i++) r += (AX[i * b + c]! - values[c]! * X[i * b + c]!) ** 2
      residual = Math.max(residual, Math.sqrt(r) / top)
    }
    vectors = new Float64Array(d * m)
    for (let i = 0; i < d; i++) for (let c = 0; c < m; c++) vectors[i * m + c] = X[i * b + c]!
    if (residual < tol) break
    Q = AX
    orthonormalize(Q, d, b)
  }
  return { values, vectors, iterations: Math.min(it, maxIt), residual }
}

export interface LineFit {
  slope: number
  intercept: number
  /** Half-width of the 95% interval of the slope (t-distribution, n − 2 degrees of freedom). */
  slopeHalfWidth: number
  r2: number
}

/** Ordinary least squares y = a + b x, with the 95% interval of the slope. */
export function olsFit(x: ArrayLike<number>, y: ArrayLike<number>): LineFit {
  const n = x.length
  if (n < 3) throw new Error(`olsFit needs at least 3 points, got ${n}`)
  let mx = 0
  let my = 0
  for (let i = 0; i < n; i++) {
    mx += x[i]!
    my += y[i]!
  }
  mx /= n
  my /= n
  let sxx = 0
  let sxy = 0
  let syy = 0
  for (let i = 0; i < n; i++) {
    sxx += (x[i]! - mx) ** 2
    sxy += (x[i]! - mx) * (y[i]! - my)
    syy += (y[i]! - my) ** 2
  }
  const slope = sxy / sxx
  const intercept = my - slope * mx
  const sse = Math.max(0, syy - slope * sxy)
  const se = Math.sqrt(sse / (n - 2) / sxx)
  const t = jStat.studentt.inv(0.975, n - 2)
  return { slope, intercept, slopeHalfWidth: t * se, r2: syy > 0 ? 1 - sse / syy : 1 }
}

/** ln Γ(x). */
export function lnGamma(x: number): number {
  return jStat.gammaln(x)
}

/** Unit-normalised rows `features` of W_dec [n, d]. */
export function unitRows(W: Float32Array, d: number, features: ArrayLike<number>): Float32Array {
  const out = new Float32Array(features.length * d)
  for (let c = 0; c < features.length; c++) {
    const f = features[c]!
    let s = 0
    for (let j = 0; j < d; j++) s += W[f * d + j]! ** 2
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0
    for (let j = 0; j < d; j++) out[c * d + j] = W[f * d + j]! * inv
  }
  return out
}

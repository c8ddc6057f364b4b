// The galaxy scale on generated clouds of known spectrum, against numpy/scipy (Debian's python3).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clusteringEntropy, galaxyOfCloud, knnEntropy, powerLaw } from '../../src/core/analysis/geometry/galaxy'
import { covariance, symmetricEigenvalues } from '../../src/core/analysis/geometry/linalg'
import { Rng } from '../../src/core/random'
import { initBackend } from '../../src/core/tf/backend'
import { geometryRef } from '../fixtures/geometry-refs'
import { tempDir } from '../helpers'

/** n Gaussian points in R^d whose covariance has eigenvalues rank^−α, in a random orthonormal basis when `rotate`. */
function powerLawCloud(n: number, d: number, alpha: number, seed: number): Float32Array {
  const rng = new Rng(seed)
  const sd = Float64Array.from({ length: d }, (_, j) => Math.pow(j + 1, -alpha / 2))
  const X = new Float32Array(n * d)
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) X[i * d + j] = rng.gaussian() * sd[j]!
  return X
}

describe('galaxy: the eigen-spectrum of a cloud and its power law', () => {
  let t: ReturnType<typeof tempDir>
  beforeAll(async () => {
    t = tempDir()
    await initBackend('wasm')
  })
  afterAll(() => t.cleanup())

  it.each([0.3, 0.6, 1.0])('recovers α = %s within 0.05 (n = 32,768, d = 512)', (alpha) => {
    const n = 32768
    const d = 512
    const { cov } = covariance(powerLawCloud(n, d, alpha, 11), n, d)
    const fit = powerLaw(symmetricEigenvalues(cov, d))
    expect(Math.abs(fit.alpha - alpha)).toBeLessThan(0.05)
    expect(fit.alpha_ci[0]).toBeLessThan(fit.alpha)
    expect(fit.alpha_ci[1]).toBeGreaterThan(fit.alpha)
    expect(fit.ranks).toEqual([11, 150])
  })

  it('gives α ≈ 0 for an isotropic cloud, and the eigenvalues, α and its interval numpy/scipy give on the same points', () => {
    const n = 32768
    const d = 512
    const X = powerLawCloud(n, d, 0, 5)
    const file = join(t.dir, 'iso.f32')
    writeFileSync(file, Buffer.from(X.buffer))
    const { cov } = covariance(X, n, d)
    const eig = symmetricEigenvalues(cov, d)
    const fit = powerLaw(eig)
    expect(Math.abs(fit.alpha)).toBeLessThan(0.07)
    const ref = geometryRef<{ eigenvalues: number[]; alpha: number; alpha_ci: [number, number] }>({ task: 'spectrum', file, n, d })
    let worst = 0
    for (let i = 0; i < d; i++) worst = Math.max(worst, Math.abs(eig[i]! - ref.eigenvalues[i]!) / ref.eigenvalues[0]!)
    expect(worst).toBeLessThan(1e-5)
    expect(fit.alpha).toBeCloseTo(ref.alpha, 4)
    expect(fit.alpha_ci[0]).toBeCloseTo(ref.alpha_ci[0], 4)
    expect(fit.alpha_ci[1]).toBeCloseTo(ref.alpha_ci[1], 4)
  })

  it('the kNN entropy of a bootstrap resample equals the numpy formula', () => {
    const rng = new Rng(3)
    const m = 300
    const q = 6
    const Y = Float64Array.from({ length: m * q }, () => rng.gaussian())
    const D = new Float32Array(m * m)
    for (let i = 0; i < m; i++)
      for (let j = 0; j < m; j++) {
        let s = 0
        for (let c = 0; c < q; c++) s += (Y[i * q + c]! - Y[j * q + c]!) ** 2
        D[i * m + j] = Math.sqrt(s)
      }
    const idx = Int32Array.from({ length: m }, () => rng.int(m))
    const ours = knnEntropy(Y, q, D, m, idx)
    const rows = Array.from({ length: m }, (_, i) => Array.from(Y.subarray(i * q, (i + 1) * q)))
    const ref = geometryRef<{ H: number }>({ task: 'knn_entropy', Y: rows, idx: Array.from(idx) })
    expect(Math.abs(ours - ref.H)).toBeLessThan(1e-4)
  })

  it('a clustered cloud has a higher clustering entropy than a Gaussian one, each inside its bootstrap interval', () => {
    const n = 3000
    const d = 64
    const rng = new Rng(8)
    const gaussian = Float32Array.from({ length: n * d }, () => rng.gaussian())
    const centres = Array.from({ length: 20 }, () => Float64Array.from({ length: d }, () => 3 * rng.gaussian()))
    const clustered = new Float32Array(n * d)
    for (let i = 0; i < n; i++) {
      const c = centres[i % 20]!
      for (let j = 0; j < d; j++) clustered[i * d + j] = c[j]! + 0.3 * rng.gaussian()
    }
    const opts = { entropySample: 1500, entropyDims: 30, bootstraps: 10 }
    const g = clusteringEntropy(gaussian, n, d, opts)
    const c = clusteringEntropy(clustered, n, d, opts)
    expect(c.clustering_entropy).toBeGreaterThan(g.clustering_entropy + 5)
    for (const r of [g, c]) {
      expect(r.clustering_entropy_ci[0]).toBeLessThanOrEqual(r.clustering_entropy)
      expect(r.clustering_entropy_ci[1]).toBeGreaterThanOrEqual(r.clustering_entropy)
      expect(r.dims).toBe(30)
    }
  })

  it('galaxyOfCloud reports the principal components of an elongated cloud, largest first', () => {
    const n = 2000
    const d = 40
    const X = powerLawCloud(n, d, 1.5, 4)
    const r = galaxyOfCloud(X, n, d, { entropySample: 500, entropyDims: 10, bootstraps: 5, ranks: [2, 30] })
    expect(r.eigenvalues).toHaveLength(d)
    expect(r.pcs.points).toHaveLength(n)
    expect(r.pcs.explained[0]).toBeGreaterThan(r.pcs.explained[1]!)
    // The first PC is the first axis (the largest variance): its coordinate is x_0 up to sign.
    const corr = r.pcs.points.reduce((s, p, i) => s + p[0] * X[i * d]!, 0)
    const norm = Math.sqrt(r.pcs.points.reduce((s, p) => s + p[0] ** 2, 0) * r.pcs.features.reduce((s, i) => s + X[i * d]! ** 2, 0))
    expect(Math.abs(corr / norm)).toBeGreaterThan(0.99)
  })
})

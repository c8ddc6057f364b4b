// The lobe scale on planted co-activation groups; affinities, AMI and silhouette against scikit-learn.
import { describe, beforeAll, expect, it } from 'vitest'
import { adjustedMutualInfo, silhouetteScore, spectralClustering } from '../../src/core/analysis/geometry/cluster'
import { AFFINITY_METRICS, affinityFromCounts, cooccurrence, lobesFromFirings, type BlockFirings } from '../../src/core/analysis/geometry/lobes'
import { Rng } from '../../src/core/random'
import { initBackend } from '../../src/core/tf/backend'
import { geometryRef } from '../fixtures/geometry-refs'

/** T blocks over `groups` planted groups of `size` features: each block activates one group (features fire w.p. 0.6), the rest fire w.p. 0.05. */
function planted(T: number, groups: number, size: number, seed: number): { firings: BlockFirings; truth: Int32Array } {
  const rng = new Rng(seed)
  const n = groups * size
  const fired = new Uint8Array(T * n)
  const groupOf = new Int32Array(T)
  for (let t = 0; t < T; t++) {
    const g = rng.int(groups)
    groupOf[t] = g
    for (let f = 0; f < n; f++) fired[t * n + f] = rng.next() < (Math.floor(f / size) === g ? 0.6 : 0.05) ? 1 : 0
  }
  const truth = Int32Array.from({ length: n }, (_, f) => Math.floor(f / size))
  return {
    firings: {
      blocks: T,
      features: n,
      fired,
      doc: Int32Array.from({ length: T }, (_, t) => t),
      lang: Array.from(groupOf, (g) => ['en', 'ja', 'de', 'fr'][g % 4]!),
      source: Array.from({ length: T }, (_, t) => (t % 2 ? 'wiki' : 'web'))
    },
    truth
  }
}

describe('lobes', () => {
  beforeAll(async () => {
    await initBackend('wasm')
  })

  it('the five affinities equal scikit-learn / numpy to 1e-6 (a never-firing and an always-firing feature included)', () => {
    const rng = new Rng(2)
    const T = 120
    const n = 25
    const fired = new Uint8Array(T * n)
    for (let t = 0; t < T; t++) for (let f = 0; f < n; f++) fired[t * n + f] = f === 0 ? 1 : f === 1 ? 0 : rng.next() < 0.1 + f / 40 ? 1 : 0
    const features = Array.from({ length: n }, (_, f) => f)
    const rows = Array.from({ length: T }, (_, t) => Array.from(fired.subarray(t * n, (t + 1) * n)))
    const ref = geometryRef<Record<string, number[][]>>({ task: 'affinities', fired: rows })
    for (const metric of AFFINITY_METRICS) {
      const { n11, ni } = cooccurrence(fired, T, n, features)
      const A = affinityFromCounts(n11, ni, T, metric)
      let worst = 0
      // (1, 1) compares a never-firing feature with itself: 0/0, which scipy calls similarity 1 for Jaccard.
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== 1 || j !== 1) worst = Math.max(worst, Math.abs(A[i * n + j]! - ref[metric]![i]![j]!))
      expect(worst, metric).toBeLessThan(1e-6)
    }
  })

  it('AMI equals scikit-learn adjusted_mutual_info_score to 1e-6', () => {
    const rng = new Rng(4)
    const pairs: [number[], number[]][] = []
    for (const [n, ka, kb] of [
      [40, 2, 3],
      [500, 4, 4],
      [3000, 8, 5],
      [200, 1, 3],
      [60, 10, 10]
    ] as const) {
      const a = Array.from({ length: n }, () => rng.int(ka))
      // b agrees with a most of the time, so AMI is far from 0.
      const b = a.map((x) => (rng.next() < 0.7 ? x % kb : rng.int(kb)))
      pairs.push([a, b])
    }
    const ref = geometryRef<{ ami: number[] }>({ task: 'ami', pairs })
    pairs.forEach(([a, b], i) => expect(Math.abs(adjustedMutualInfo(a, b) - ref.ami[i]!)).toBeLessThan(1e-6))
  })

  it('silhouette equals scikit-learn silhouette_score', () => {
    const rng = new Rng(6)
    const n = 90
    const pts = Float64Array.from({ length: n * 3 }, (_, i) => rng.gaussian() + (Math.floor(i / 3) % 3) * 2)
    const labels = Array.from({ length: n }, (_, i) => i % 3)
    const ref = geometryRef<{ silhouette: number }>({
      task: 'silhouette',
      points: Array.from({ length: n }, (_, i) => Array.from(pts.subarray(i * 3, i * 3 + 3))),
      labels
    })
    expect(Math.abs(silhouetteScore(pts, n, 3, labels) - ref.silhouette)).toBeLessThan(1e-9)
  })

  it.each(['phi', 'jaccard', 'overlap'] as const)('spectral clustering on %s recovers planted co-activation groups (AMI ≥ 0.9)', (metric) => {
    const { firings, truth } = planted(400, 4, 30, 9)
    const features = Array.from({ length: firings.features }, (_, f) => f)
    const { n11, ni } = cooccurrence(firings.fired, firings.blocks, firings.features, features)
    const A = affinityFromCounts(n11, ni, firings.blocks, metric)
    const r = spectralClustering(A, firings.features, 4, { seed: 1 })
    expect(adjustedMutualInfo(truth, r.labels)).toBeGreaterThanOrEqual(0.9)
    expect(r.eigenvalues[0]).toBeCloseTo(1, 4)
  })

  it('the whole lobe analysis: lobes found, decoder geometry that follows them is detected, random vectors are not', async () => {
    const groups = 4
    const size = 40
    const { firings, truth } = planted(500, groups, size, 12)
    const n = firings.features
    // Decoder rows: a shared direction per lobe plus noise, shuffled so train and test hold every lobe.
    const d = 32
    const rng = new Rng(13)
    const order = rng.shuffle(Array.from({ length: n }, (_, i) => i))
    const centre = Array.from({ length: groups }, () => Float64Array.from({ length: d }, () => rng.gaussian()))
    const W = new Float32Array(n * d)
    const fired = new Uint8Array(firings.fired.length)
    const truthShuffled = new Int32Array(n)
    for (let f = 0; f < n; f++) {
      const src = order[f]!
      truthShuffled[f] = truth[src]!
      for (let j = 0; j < d; j++) W[f * d + j] = centre[truth[src]!]![j]! + 0.7 * rng.gaussian()
      for (let t = 0; t < firings.blocks; t++) fired[t * n + f] = firings.fired[t * n + src]!
    }
    const r = await lobesFromFirings({ ...firings, fired }, W, d, { ks: [4], metric: 'phi', permutations: 50, mapPoints: 60 })
    const c = r.clusterings[0]!
    expect(adjustedMutualInfo(truthShuffled, c.labels)).toBeGreaterThanOrEqual(0.9)
    expect(c.ami.ami).toBeGreaterThan(0.5)
    expect(c.ami.z).toBeGreaterThan(10)
    expect(c.balanced_accuracy).toBeGreaterThan(0.9)
    expect(c.balanced_accuracy_null).toBeLessThan(0.6)
    // Blocks were drawn per group and tagged by group: each language's blocks are won by one lobe.
    for (const row of c.winners.by_lang.counts) expect(Math.max(...row) / row.reduce((a, b) => a + b, 0)).toBeGreaterThan(0.9)
    expect(r.map.xy).toHaveLength(60)
  })
})

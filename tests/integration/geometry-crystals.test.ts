// The crystal scale: planted parallelograms hidden by a distractor direction are found after LDA; LDA
// against scikit-learn; pair lists.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { crystalsFromVectors, lda, readPairs, type WordPair } from '../../src/core/analysis/geometry/crystals'
import { Rng } from '../../src/core/random'
import { geometryRef } from '../fixtures/geometry-refs'
import { tempDir } from '../helpers'

/**
 * Words as vectors in R^d: each pair (a, b) of type t has b − a = v_t + 6·(len(b) − len(a))·u + noise, u a
 * distractor direction standing for word length, so raw differences of one type point every which way.
 */
function plantedWords(d: number, perType: number, seed: number): { words: string[]; vectors: Float64Array; pairs: WordPair[] } {
  const rng = new Rng(seed)
  const unit = (): Float64Array => {
    const v = Float64Array.from({ length: d }, () => rng.gaussian())
    const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0))
    return v.map((x) => x / n)
  }
  const u = unit()
  const types = ['country-capital', 'singular-plural', 'en-ja']
  const relation = types.map(() => unit().map((x) => 3 * x))
  const words: string[] = []
  const rows: Float64Array[] = []
  const pairs: WordPair[] = []
  types.forEach((type, t) => {
    for (let i = 0; i < perType; i++) {
      const lenA = 3 + rng.int(8)
      const lenB = 3 + rng.int(8)
      const a = Float64Array.from({ length: d }, (_, j) => 2 * rng.gaussian() + 6 * lenA * u[j]!)
      const b = a.map((x, j) => x + relation[t]![j]! + 6 * (lenB - lenA) * u[j]! + 0.05 * rng.gaussian())
      words.push(`${type}-a${i}`, `${type}-b${i}`)
      rows.push(a, b)
      pairs.push({ type, a: `${type}-a${i}`, b: `${type}-b${i}` })
    }
  })
  const vectors = new Float64Array(rows.length * d)
  rows.forEach((r, i) => vectors.set(r, i * d))
  return { words, vectors, pairs }
}

describe('crystals', () => {
  let t: ReturnType<typeof tempDir>
  beforeAll(() => {
    t = tempDir()
  })
  afterAll(() => t.cleanup())

  it('finds the planted parallelograms after LDA removes the distractor direction, and not before', () => {
    const d = 48
    const { words, vectors, pairs } = plantedWords(d, 12, 21)
    const r = crystalsFromVectors(words, vectors, d, pairs)
    expect(r.types).toHaveLength(3)
    expect(r.silhouette.map((s) => s.components)).toEqual([1, 2])
    expect(r.components).toBe(2)
    expect(r.parallel_before).toBeLessThan(0.5)
    expect(r.mean_cos_before).toBeLessThan(0.3)
    expect(r.parallel_after).toBeGreaterThan(0.9)
    // LDA fitted on shuffled types does not make the shuffled groups parallel: the planted structure is real.
    expect(r.parallel_after_null).toBeLessThan(0.5)
    expect(r.mean_cos_after).toBeGreaterThan(0.9)
    expect(r.counts.parallelogram).toBeGreaterThan(0)
    const best = r.quadruplets[0]!
    expect(best.kind).toBe('parallelogram')
    expect(best.cos_after).toBeGreaterThan(0.99)
    expect(best.cos_before).toBeLessThan(best.cos_after)
    // Both words of each pair come from one planted type, named in the quadruplet.
    for (const w of best.words) expect(w.startsWith(best.type)).toBe(true)
    expect(best.plane_before).toHaveLength(4)
    expect(best.plane_after).toHaveLength(4)
  })

  it('LDA directions equal scikit-learn LinearDiscriminantAnalysis(solver="eigen") up to scale', () => {
    const rng = new Rng(5)
    const d = 6
    const N = 240
    const means = [0, 1, 2].map(() => Float64Array.from({ length: d }, () => 2 * rng.gaussian()))
    const X = new Float64Array(N * d)
    const y = new Int32Array(N)
    for (let i = 0; i < N; i++) {
      y[i] = i % 3
      for (let j = 0; j < d; j++) X[i * d + j] = means[i % 3]![j]! + rng.gaussian() * (1 + j / 3)
    }
    const ours = lda(X, N, d, y, { shrinkage: 0 })
    const ref = geometryRef<{ scalings: number[][] }>({
      task: 'lda',
      X: Array.from({ length: N }, (_, i) => Array.from(X.subarray(i * d, (i + 1) * d))),
      y: Array.from(y)
    })
    expect(ours.q).toBe(2)
    for (let c = 0; c < 2; c++) {
      const a = Array.from({ length: d }, (_, j) => ours.directions[j * 2 + c]!)
      const b = ref.scalings.map((row) => row[c]!)
      const cos = a.reduce((s, x, j) => s + x * b[j]!, 0) / Math.sqrt(a.reduce((s, x) => s + x * x, 0) * b.reduce((s, x) => s + x * x, 0))
      expect(Math.abs(cos)).toBeGreaterThan(1 - 1e-9)
    }
  })

  it('reads two- and three-column pair lists and says which line is wrong', () => {
    const two = join(t.dir, 'country-capital.tsv')
    writeFileSync(two, '# country → capital\nFrance\tParis\n\nJapan\tTokyo\n')
    expect(readPairs(two)).toEqual([
      { type: 'country-capital', a: 'France', b: 'Paris' },
      { type: 'country-capital', a: 'Japan', b: 'Tokyo' }
    ])
    const three = join(t.dir, 'mixed.tsv')
    writeFileSync(three, 'plural\tcat\tcats\nen-ja\tdog\t犬\n')
    expect(readPairs(three).map((p) => p.type)).toEqual(['plural', 'en-ja'])
    const bad = join(t.dir, 'bad.tsv')
    writeFileSync(bad, 'cat\tcats\njust-one-word\n')
    expect(() => readPairs(bad)).toThrow(/bad\.tsv, line 2/)
  })
})

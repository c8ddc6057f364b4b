// The greedy matching drift uses above 16,384 latents (most real SAEs), against the exact one on sizes both
// can do: a valid one-to-one partial matching, the planted pairing found where it is clear, and a total
// cosine within the factor 2 of the optimum that greedy matching guarantees (in practice much closer).
import { beforeAll, describe, expect, it } from 'vitest'
import { exactMatch, greedyMatch } from '../../src/core/analysis/drift'
import { Rng } from '../../src/core/random'
import { initBackend } from '../../src/core/tf/backend'

/** n unit rows of width d, and the same rows permuted with noise: `b[perm[i]]` is `a[i]` plus noise. */
function planted(n: number, d: number, noise: number, seed: number): { a: Float32Array; b: Float32Array; perm: Int32Array } {
  const rng = new Rng(seed)
  const unit = (v: Float32Array): Float32Array => {
    const norm = Math.hypot(...v)
    return v.map((x) => x / norm)
  }
  const rows = Array.from({ length: n }, () => unit(Float32Array.from({ length: d }, () => rng.gaussian())))
  const perm = Int32Array.from(rng.shuffle(Array.from({ length: n }, (_, i) => i)))
  const a = new Float32Array(n * d)
  const b = new Float32Array(n * d)
  rows.forEach((r, i) => {
    a.set(r, i * d)
    b.set(unit(r.map((x) => x + noise * rng.gaussian())), perm[i]! * d)
  })
  return { a, b, perm }
}

const total = (cos: Float32Array, col: Int32Array): number => cos.reduce((s, c, i) => s + (col[i] === -1 ? 0 : c), 0)

describe('greedy matching against the exact one', () => {
  beforeAll(async () => {
    await initBackend('cpu')
  })

  for (const [n, d] of [
    [64, 16],
    [256, 32],
    [1024, 48]
  ] as const) {
    it(`n = ${n}: a valid matching, the planted pairing where it is clear, within 2× of the optimum where it is not`, async () => {
      // Clear: little noise, the planted pairing is the optimum and greedy finds it too.
      const clear = planted(n, d, 0.05, n)
      const exact = await exactMatch(clear.a, clear.b, n, d)
      const greedy = await greedyMatch(clear.a, clear.b, n, d)
      expect([...exact.col]).toEqual([...clear.perm])
      expect([...greedy.col]).toEqual([...clear.perm])
      expect(greedy.method).toBe('greedy-top32')

      // Unclear: so much noise that many rows are nearer another row's partner.
      const noisy = planted(n, d, 1.5, n + 1)
      const e = await exactMatch(noisy.a, noisy.b, n, d)
      const g = await greedyMatch(noisy.a, noisy.b, n, d)
      const used = [...g.col].filter((c) => c !== -1)
      expect(new Set(used).size).toBe(used.length)
      expect(used.every((c) => c >= 0 && c < n)).toBe(true)
      expect(new Set(e.col).size).toBe(n)
      // Cosines reported are those of the pairs chosen.
      for (let i = 0; i < n; i += Math.ceil(n / 16)) {
        if (g.col[i] === -1) continue
        let dot = 0
        for (let j = 0; j < d; j++) dot += noisy.a[i * d + j]! * noisy.b[g.col[i]! * d + j]!
        expect(g.cos[i]).toBeCloseTo(dot, 5)
      }
      const optimum = total(e.cos, e.col)
      const found = total(g.cos, g.col)
      expect(found).toBeLessThanOrEqual(optimum + 1e-3)
      expect(found).toBeGreaterThanOrEqual(optimum / 2)
      // What it costs in practice: within a few per cent of the optimum, most rows matched as the optimum does.
      expect(found / optimum).toBeGreaterThan(0.9)
      expect([...g.col].filter((c, i) => c === e.col[i]).length / n).toBeGreaterThan(0.5)
    })
  }
})

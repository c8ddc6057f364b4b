// κ against scikit-learn's cohen_kappa_score and an independent numpy Fleiss' κ (Debian's python3).
import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { agreementOf, cohensKappa, fleissKappa } from '../../src/core/analysis/agreement'
import { Rng } from '../../src/core/random'
import { PYTHON } from '../fixtures/tiny-models'

const CATS = ['Token-level', 'Concept-level (synonymy)', 'Concept-level (semantic similarity)', 'Uninterpretable']

function raters(count: number, items: number, seed: number): string[][] {
  const rng = new Rng(seed)
  const truth = Array.from({ length: items }, () => CATS[rng.int(4)]!)
  return Array.from({ length: count }, () => truth.map((t) => (rng.next() < 0.7 ? t : CATS[rng.int(4)]!)))
}

function python(code: string, data: unknown): number {
  return Number(execFileSync(PYTHON, ['-c', code], { input: JSON.stringify(data) }).toString())
}

describe("Cohen's and Fleiss' κ", () => {
  it("Cohen's κ equals scikit-learn's cohen_kappa_score", () => {
    for (const seed of [1, 2, 3]) {
      const [a, b] = raters(2, 80, seed) as [string[], string[]]
      const ref = python('import json,sys; from sklearn.metrics import cohen_kappa_score; d=json.load(sys.stdin); print(cohen_kappa_score(d[0], d[1]))', [a, b])
      expect(cohensKappa(a, b)).toBeCloseTo(ref, 10)
    }
  })

  it("Fleiss' κ equals a direct numpy computation", () => {
    const code = `
import json, sys, numpy as np
d = json.load(sys.stdin); cats = sorted({c for r in d for c in r}); N, m = len(d), len(d[0])
M = np.array([[r.count(c) for c in cats] for r in d], float)
P = ((M * (M - 1)).sum(1) / (m * (m - 1))).mean(); pj = M.sum(0) / (N * m); Pe = (pj ** 2).sum()
print((P - Pe) / (1 - Pe))`
    for (const seed of [4, 5]) {
      const r = raters(4, 60, seed)
      const items = r[0]!.map((_, i) => r.map((x) => x[i]!))
      expect(fleissKappa(items)).toBeCloseTo(python(code, items), 10)
    }
  })

  it('compares only features every annotator labelled', () => {
    const labels = [
      { feature: 1, annotator: 'ana', category: 'Token-level' },
      { feature: 1, annotator: 'ben', category: 'Token-level' },
      { feature: 2, annotator: 'ana', category: 'Uninterpretable' },
      { feature: 2, annotator: 'ben', category: 'Token-level' },
      { feature: 3, annotator: 'ana', category: 'Token-level' }
    ]
    expect(agreementOf(labels)).toMatchObject({ annotators: ['ana', 'ben'], items: 2, statistic: 'cohen' })
    expect(agreementOf(labels.slice(0, 1))).toMatchObject({ annotators: ['ana'], statistic: null, kappa: null })
  })
})

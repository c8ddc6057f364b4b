// κ against scikit-learn's cohen_kappa_score and, for Fleiss' κ, the worked example of Fleiss (1971).
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

  // Fleiss (1971), "Measuring nominal scale agreement among many raters", Psychological Bulletin 76(5), Table 1:
  // 30 patients, 6 psychiatrists each, 5 diagnoses (depression, personality disorder, schizophrenia, neurosis,
  // other); counts per patient. The paper gives p_j = .144 .144 .167 .306 .239, P̄ = .556, P̄e = .220, κ = .430.
  const FLEISS_1971 = [
    [0, 0, 0, 6, 0],
    [0, 3, 0, 0, 3],
    [0, 1, 4, 0, 1],
    [0, 0, 0, 0, 6],
    [0, 3, 0, 3, 0],
    [2, 0, 4, 0, 0],
    [0, 0, 4, 0, 2],
    [2, 0, 3, 1, 0],
    [2, 0, 0, 4, 0],
    [0, 0, 0, 0, 6],
    [1, 0, 0, 5, 0],
    [1, 1, 0, 4, 0],
    [0, 3, 3, 0, 0],
    [1, 0, 0, 5, 0],
    [0, 2, 0, 3, 1],
    [0, 0, 5, 0, 1],
    [3, 0, 0, 1, 2],
    [5, 1, 0, 0, 0],
    [0, 2, 0, 4, 0],
    [1, 0, 2, 0, 3],
    [0, 0, 0, 0, 6],
    [0, 1, 0, 5, 0],
    [0, 2, 0, 1, 3],
    [2, 0, 0, 4, 0],
    [1, 0, 0, 4, 1],
    [0, 5, 0, 1, 0],
    [4, 0, 0, 0, 2],
    [0, 2, 0, 4, 0],
    [1, 0, 5, 0, 0],
    [0, 0, 0, 0, 6]
  ]
  const DIAGNOSES = ['depression', 'personality disorder', 'schizophrenia', 'neurosis', 'other']
  /** Each patient's six diagnoses, from the table's counts. */
  const ratings = FLEISS_1971.map((counts) => counts.flatMap((c, j) => Array.from({ length: c }, () => DIAGNOSES[j]!)))

  it("Fleiss' κ is Fleiss' own worked example: κ = .430 on his Table 1", () => {
    expect(ratings.every((r) => r.length === 6)).toBe(true)
    expect(fleissKappa(ratings).toFixed(3)).toBe('0.430')
  })

  it("agreement over six annotators' labels of Fleiss' 30 patients is his κ, named Fleiss'", () => {
    const annotators = ['a', 'b', 'c', 'd', 'e', 'f']
    const labels = ratings.flatMap((r, feature) => r.map((category, k) => ({ feature, annotator: annotators[k]!, category })))
    const agreement = agreementOf(labels)
    expect(agreement).toMatchObject({ annotators, items: 30, statistic: 'fleiss' })
    expect(agreement.kappa!.toFixed(3)).toBe('0.430')
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

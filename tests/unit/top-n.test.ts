// The N best of a stream (feature statistics' top examples): a heap that keeps what a stable sort by descending
// score would keep, in the same order, and makes an item only when it gets in.
import { describe, expect, it } from 'vitest'
import { TopN } from '../../src/core/analysis/top-n'
import { Rng } from '../../src/core/random'

/** The reference: keep everything, stable-sort by descending score, take the first n. */
function reference(scores: number[], n: number): number[] {
  return scores
    .map((score, i) => ({ score, i }))
    .sort((a, b) => b.score - a.score)
    .slice(0, n)
    .map((x) => x.i)
}

describe('TopN', () => {
  it('keeps what a stable sort keeps, ties included, best first', () => {
    const rng = new Rng(11)
    for (const n of [1, 3, 20]) {
      for (let trial = 0; trial < 50; trial++) {
        // Few distinct scores, so ties are common.
        const scores = Array.from({ length: rng.int(120) }, () => rng.int(9) / 2)
        const top = new TopN<number>(n)
        scores.forEach((s, i) => top.offer(s, () => i))
        expect(top.sorted().map((x) => x.item)).toEqual(reference(scores, n))
      }
    }
  })

  it('makes an item only when it gets in', () => {
    const top = new TopN<string>(2)
    let made = 0
    for (const s of [5, 4, 3, 6, 1, 5]) top.offer(s, () => `${s}:${++made}`)
    expect(top.sorted()).toEqual([
      { score: 6, item: '6:3' },
      { score: 5, item: '5:1' }
    ])
    expect(made).toBe(3)
  })
})

// Neighbours by activation correlation from sparse codes equal numpy's np.corrcoef on the dense matrix (zeros
// included), top positive r per latent (tests/fixtures/logit_effects_ref.py).
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { activationCorrelations, SparseRowsBuilder } from '../../src/core/analysis/correlations'
import { Rng } from '../../src/core/random'
import { PYTHON } from '../fixtures/tiny-models'
import { REPO } from '../helpers'

describe('activation correlations', () => {
  it('equal numpy’s Pearson r over the dense activations, top 5 positive per latent', () => {
    const rng = new Rng(11)
    const n = 40
    const rows = 300
    const k = 4
    // TopK-like codes: k latents per row, some with value 0 (not firing); latents 0–3 tend to fire together.
    const b = new SparseRowsBuilder()
    const entries: [number, number, number][] = []
    for (let r = 0; r < rows; r++) {
      const chosen = new Set<number>()
      if (rng.next() < 0.3) [0, 1, 2].forEach((j) => chosen.add(j + (rng.next() < 0.5 ? 0 : 1)))
      while (chosen.size < k) chosen.add(Math.floor(rng.next() * (n - 5))) // latents 35–39 never fire
      const ids = Int32Array.from(chosen)
      const vals = Float32Array.from(ids, () => (rng.next() < 0.1 ? 0 : rng.next() * 3))
      b.addRow(vals, ids, 0, k)
      ids.forEach((j, q) => vals[q]! > 0 && entries.push([r, j, vals[q]!]))
    }
    const got = activationCorrelations(b.build(), n, 5)
    const ref = JSON.parse(
      execFileSync(PYTHON, [join(REPO, 'tests/fixtures/logit_effects_ref.py')], {
        input: JSON.stringify({ kind: 'corr', rows, n, entries, top: 5 })
      }).toString()
    ) as { top: [number, number][][] }
    for (let i = 0; i < n; i++) {
      expect(got[i]!.map((x) => x.feature)).toEqual(ref.top[i]!.map(([j]) => j))
      got[i]!.forEach((x, q) => expect(x.r).toBeCloseTo(ref.top[i]![q]![1], 6))
    }
    // Latents that co-fire find each other; latents that never fire have no neighbours.
    expect(got[0]!.map((x) => x.feature)).toContain(1)
    expect(got[37]).toEqual([])
    expect(got.filter((l) => l.length === 5).length).toBeGreaterThan(20)
  })
})

// Dead and dense latents and the latent-density histogram of each SAE (saes.quality), against numpy's histogram
// of log10 density over the same edges (Debian's python3).
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Project } from '../../src/core/project'
import type { FeatureRecord } from '../../src/core/store/feature-blobs'
import { Rng } from '../../src/core/random'
import { tempDir } from '../helpers'

function records(densities: number[]): FeatureRecord[] {
  return densities.map((density, feature) => ({
    feature,
    density,
    maxAct: density > 0 ? 1 : 0,
    meanAct: density > 0 ? 0.5 : null,
    dead: density === 0,
    langClass: null,
    langCounts: null,
    topTokens: '',
    histogram: null,
    neighbours: [],
    examples: []
  }))
}

function numpyHistogram(values: number[], lo: number, width: number, bins: number): number[] {
  const script = `
import json, sys, numpy as np
d = np.array(json.load(sys.stdin), dtype=np.float64)
lo, w, n = ${lo}, ${width}, ${bins}
edges = lo + w * np.arange(n + 1)
live = d[d > 0]
print(json.dumps({"counts": np.histogram(np.log10(live), bins=edges)[0].tolist(), "dead": int((d == 0).sum()), "dense": int((d > 0.1).sum())}))
`
  const r = spawnSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(values), encoding: 'utf8' })
  if (r.status !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout).counts as number[]
}

describe('saes.quality', () => {
  let t: ReturnType<typeof tempDir>
  let p: Project | undefined
  afterEach(() => {
    p?.close()
    p = undefined
    t.cleanup()
  })

  it('counts dead and dense latents and bins live ones by log10 density as numpy does, over shared edges', () => {
    t = tempDir()
    p = Project.open(join(t.dir, 'p'))
    const rng = new Rng(7)
    // Log-uniform densities between 10^-4.3 and 1, some dead, a few dense.
    const series = [0, 1000].map((step, s) => {
      const densities = Array.from({ length: 400 }, (_, i) => (i % (7 + s) === 0 ? 0 : 10 ** (-4.3 * rng.next())))
      const c = p!.checkpoints.addWeightless(step, 16, { test: true })
      const sae = p!.saes.upsert({
        checkpointId: c.id,
        layer: 2,
        path: join(t.dir, `sae-${step}`),
        preset: 'inaba2025',
        d: 16,
        n: densities.length,
        k: 4,
        warmStarted: s > 0,
        tokens: 1000,
        steps: 10,
        fvu: 0.2,
        explainedVariance: 0.8,
        cosine: 0.9,
        l0: 4,
        deadFraction: 0,
        backend: null
      })
      p!.features.writeSaeSet(
        { name: `step ${step} · layer 2`, saeId: sae.id, checkpointId: c.id, layer: 2 },
        ['a'],
        records(densities),
        s === 0 ? { logitNote: null, rows: 6400, heldOut: true } : undefined
      )
      return { step, densities }
    })
    const q = p.features.quality(2)
    expect(q.map((x) => x.step)).toEqual([0, 1000])
    expect(q[0]).toMatchObject({ rows: 6400, heldOutOnly: true, latents: 400, denseThreshold: 0.1 })
    // Statistics written without the row count (as before migration 12) say so rather than guess.
    expect(q[1]).toMatchObject({ rows: null, heldOutOnly: null })
    const lowest = Math.min(...series.flatMap((s) => s.densities.filter((d) => d > 0).map(Math.log10)))
    for (const [i, s] of series.entries()) {
      const h = q[i]!.histogram
      expect(h.width).toBe(0.2)
      expect(h.lo).toBeLessThanOrEqual(lowest)
      expect(h.lo).toBeGreaterThan(lowest - 0.2)
      expect(h.lo + h.counts.length * h.width).toBeCloseTo(0, 9)
      expect([h.lo, h.counts.length]).toEqual([q[0]!.histogram.lo, q[0]!.histogram.counts.length])
      expect(h.counts).toEqual(numpyHistogram(s.densities, h.lo, h.width, h.counts.length))
      expect(q[i]!.dead).toBe(s.densities.filter((d) => d === 0).length)
      expect(q[i]!.dead).toBeGreaterThan(0)
      expect(q[i]!.dense).toBe(s.densities.filter((d) => d > 0.1).length)
      expect(q[i]!.dense).toBeGreaterThan(0)
      expect(h.counts.reduce((a, b) => a + b, 0)).toBe(400 - q[i]!.dead)
    }
  })

  it('answers nothing for a layer without statistics', () => {
    t = tempDir()
    p = Project.open(join(t.dir, 'p'))
    expect(p.features.quality(3)).toEqual([])
  })
})

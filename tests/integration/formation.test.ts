// The formation measure on a generated series whose features form at planted checkpoints.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { computeFormation, VARIANTS, type FormationCheckpoint } from '../../src/core/analysis/formation'
import { ActivationStoreWriter } from '../../src/core/io/activation-store'
import { writeSafetensors } from '../../src/core/io/safetensors'
import { tryOrt } from '../../src/core/ort/engine'
import { Rng } from '../../src/core/random'
import { initBackend } from '../../src/core/tf/backend'
import { tempDir } from '../helpers'

const d = 16
const n = 24
const steps = [0, 10, 100, 1000]
/** Feature f forms at checkpoint index FORMS_AT[f]; every other feature is there from the start. */
const FORMS_AT: Record<number, number> = { 0: 0, 1: 1, 2: 2, 3: 3 }

function unit(v: Float32Array): Float32Array {
  const s = Math.hypot(...v)
  return v.map((x) => x / s)
}

describe('feature formation', () => {
  let t: ReturnType<typeof tempDir>
  const series: FormationCheckpoint[] = []
  beforeAll(async () => {
    await initBackend('cpu')
    t = tempDir()
    const rng = new Rng(5)
    const D = Array.from({ length: n }, () => unit(Float32Array.from({ length: d }, () => rng.gaussian())))
    const R = 600
    const active = Array.from({ length: R }, () => [rng.int(n), rng.int(n)] as const)
    const coef = Array.from({ length: R }, () => [1 + rng.next(), 1 + rng.next()] as const)
    // One SAE for every checkpoint: the planted dictionary itself (encoder = decoder transposed).
    const sae = join(t.dir, 'sae')
    mkdirSync(sae)
    writeFileSync(join(sae, 'cfg.json'), JSON.stringify({ architecture: 'topk', d_in: d, d_sae: n, k: 2, featuretrace: { input_scaling: 'none' } }))
    const Wdec = new Float32Array(n * d)
    const Wenc = new Float32Array(d * n)
    D.forEach((row, i) => row.forEach((v, j) => ((Wdec[i * d + j] = v), (Wenc[j * n + i] = v))))
    await writeSafetensors(join(sae, 'sae_weights.safetensors'), {
      W_enc: { dtype: 'F32', shape: [d, n], data: Wenc },
      W_dec: { dtype: 'F32', shape: [n, d], data: Wdec },
      b_enc: { dtype: 'F32', shape: [n], data: new Float32Array(n) },
      b_dec: { dtype: 'F32', shape: [d], data: new Float32Array(d) }
    })
    for (const [ti, step] of steps.entries()) {
      // Before a feature forms, its component in a token is an unrelated random direction.
      const out = join(t.dir, `acts-${step}`)
      const w = ActivationStoreWriter.begin(out, {
        model: 'planted',
        modelType: 'planted',
        checkpointStep: step,
        layer: 1,
        finalNorm: false,
        d,
        dtype: 'f32',
        context: 8,
        bos: false,
        seed: 0,
        corpus: 'planted',
        maxTokens: null,
        dropShort: false,
        createdBy: 'test'
      })
      if ('complete' in w) throw new Error('unexpected')
      for (let r = 0; r < R; r += 8) {
        const acts = new Float32Array(8 * d)
        for (let q = 0; q < 8; q++) {
          for (let a = 0; a < 2; a++) {
            const f = active[r + q]![a]!
            const formed = ti >= (FORMS_AT[f] ?? 0)
            const dir = formed ? D[f]! : unit(Float32Array.from({ length: d }, () => rng.gaussian()))
            for (let j = 0; j < d; j++) acts[q * d + j]! += coef[r + q]![a]! * dir[j]!
          }
          for (let j = 0; j < d; j++) acts[q * d + j]! += 0.01 * rng.gaussian()
        }
        await w.appendSequence(acts, r / 8, [0, 1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7, 8])
      }
      await w.finish([], (id) => `t${id}`)
      series.push({ step, sae, activations: out })
    }
  })
  afterAll(() => t.cleanup())

  it('finds each feature forming at its planted checkpoint', async () => {
    const r = await computeFormation(series, { features: [0, 1, 2, 3], threshold: 0.2 })
    expect(r.steps).toEqual(steps)
    expect(r.randomPositions).toHaveLength(100)
    for (const f of r.features) {
      expect(f.positions).toHaveLength(25)
      expect(f.formationStep.sae, `feature ${f.feature}: M = ${f.m.sae.map((x) => x.toFixed(2)).join(' ')}`).toBe(steps[FORMS_AT[f.feature]!])
      // Formed: the top positions share their SAE code far more than random positions do.
      expect(f.m.sae.at(-1)!).toBeGreaterThan(0.3)
      expect(f.m.jaccard.at(-1)!).toBeGreaterThan(0.1)
      expect(f.m.weightedJaccard.at(-1)!).toBeGreaterThan(0.1)
      expect(f.m.raw.at(-1)!).toBeGreaterThan(f.m.raw[0]! - (FORMS_AT[f.feature] === 0 ? 1 : 0))
    }
    // Before forming, M stays near zero.
    expect(Math.abs(r.features[3]!.m.sae[0]!)).toBeLessThan(0.15)
  })

  it('gives the same positions and M on the ort engine, whose onnxruntime encoder encodes every row', async (test) => {
    const why = await tryOrt()
    if (why !== null) test.skip(`onnxruntime cannot load here: ${why}`)
    const features = [0, 1, 2, 3]
    const reference = await computeFormation(series, { features, threshold: 0.2 })
    expect((await initBackend('ort')).name).toBe('ort')
    try {
      const r = await computeFormation(series, { features, threshold: 0.2 })
      expect(r.randomPositions).toEqual(reference.randomPositions)
      for (const [i, f] of r.features.entries()) {
        const ref = reference.features[i]!
        expect(f.positions).toEqual(ref.positions)
        expect(f.formationStep).toEqual(ref.formationStep)
        for (const v of VARIANTS) f.m[v].forEach((x, t) => expect(x).toBeCloseTo(ref.m[v][t]!, 5))
      }
    } finally {
      await initBackend('cpu')
    }
  })

  it('refuses features that do not exist', async () => {
    await expect(computeFormation(series, { features: [99] })).rejects.toThrow(/Feature 99 does not exist: the SAEs have 24 latents/)
  })
})

describe('PCA trajectory', () => {
  it('matches numpy SVD coordinates up to sign', async () => {
    const { pca2 } = await import('../../src/core/analysis/dynamics')
    const { execFileSync } = await import('node:child_process')
    const { PYTHON } = await import('../fixtures/tiny-models')
    const rng = new Rng(2)
    const X = Array.from({ length: 6 }, (_, t) => Float64Array.from({ length: 10 }, (_, j) => Math.sin(t * (j + 1)) + 0.1 * rng.gaussian()))
    const ours = pca2(X)
    const ref = JSON.parse(
      execFileSync(
        PYTHON,
        [
          '-c',
          'import json,sys,numpy as np; X=np.array(json.load(sys.stdin)); C=X-X.mean(0); U,S,Vt=np.linalg.svd(C,full_matrices=False); print(json.dumps((U[:,:2]*S[:2]).tolist()))'
        ],
        {
          input: JSON.stringify(X.map((x) => Array.from(x)))
        }
      ).toString()
    ) as number[][]
    for (const c of [0, 1]) {
      const sign = Math.sign(ours[0]![c]!) === Math.sign(ref[0]![c]!) ? 1 : -1
      for (let t = 0; t < 6; t++) expect(ours[t]![c]! * sign).toBeCloseTo(ref[t]![c]!, 6)
    }
  })
})

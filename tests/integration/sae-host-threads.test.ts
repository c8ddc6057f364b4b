// The SAE step's host loops split over worker threads (host-kernel.ts) against the same step on one thread:
// three training steps with AuxK on a small SAE must give bit-identical losses, top-k indices, gradients and
// weights after Adam, whichever engine ran the dense part; and each step's gradients must equal the all-tfjs
// ones (topk.ts's lossAndGradients, the GPU path) within float tolerance.
import * as tf from '@tensorflow/tfjs-core'
import { afterAll, describe, expect, it } from 'vitest'
import { Rng } from '../../src/core/random'
import { evenRanges, HostKernel, weightedRanges } from '../../src/core/sae/host-kernel'
import { lossAndGradientsHost, ortEngine, tfjsEncoder, type SaeEncoderEngine } from '../../src/core/sae/sparse-host'
import { HostAdam, lossAndGradients, PARAM_NAMES, type SaeTensors } from '../../src/core/sae/topk'
import { initBackend } from '../../src/core/tf/backend'

// 150 tokens: four whole blocks of 32 and a partial one; a third of the latents dead, so AuxK runs every step.
const [d, n, B] = [24, 200, 150]
const cfg = { k: 5, auxK: 16, auxAlpha: 1 / 32 }
const settings = { beta1: 0.9, beta2: 0.999, eps: 1e-8, decoderUnitNorm: true }

function params(): SaeTensors {
  const rng = new Rng(7)
  const W = Float32Array.from({ length: n * d }, () => rng.gaussian() / Math.sqrt(d))
  const Wdec = tf.tensor2d(W, [n, d])
  const p = {
    Wenc: tf.variable(tf.transpose(Wdec)),
    benc: tf.variable(tf.tensor1d(Float32Array.from({ length: n }, () => 0.05 * rng.gaussian()))),
    Wdec: tf.variable(Wdec),
    bdec: tf.variable(tf.tensor1d(Float32Array.from({ length: d }, () => 0.1 * rng.gaussian())))
  }
  Wdec.dispose()
  return p
}

interface Trace {
  losses: number[]
  indices: Int32Array[]
  grads: Record<string, Float32Array>[]
  weights: Record<string, Float32Array>
}

/** Three steps (gradients, then HostAdam with W_dec renormalised) on `kernel`, recording what each gave. */
async function train(kernel: HostKernel, engine: SaeEncoderEngine): Promise<Trace> {
  const p = params()
  const adam = new HostAdam(p, settings, kernel)
  const trace: Trace = { losses: [], indices: [], grads: [], weights: {} }
  const recording: SaeEncoderEngine = {
    name: engine.name,
    async encode(...args) {
      const r = await engine.encode(...args)
      trace.indices.push(Int32Array.from(r.indices), Int32Array.from(r.aux?.indices ?? []))
      return r
    }
  }
  const rng = new Rng(3)
  const dead = tf.tensor1d(Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0)))
  for (let step = 1; step <= 3; step++) {
    const x = tf.tensor2d(
      Float32Array.from({ length: B * d }, () => rng.gaussian() + 0.5),
      [B, d]
    )
    const r = await lossAndGradientsHost(p, x, cfg, dead, Math.ceil(n / 3), recording, kernel)
    // Against the all-tfjs gradients (topk.ts, the GPU path) at every step: the reused buffers hold this step's
    // gradients only, the rows of latents used in an earlier step and not in this one back at zero.
    const ref = lossAndGradients(p, x, cfg, dead, Math.ceil(n / 3))
    for (const key of ['loss', 'auxLoss'] as const) {
      const [got, want] = [(await r[key].data())[0]!, (await ref[key].data())[0]!]
      expect(Math.abs(got - want), `${key} at step ${step}`).toBeLessThan(1e-5 * want)
    }
    for (const name of PARAM_NAMES) {
      const want = await ref.grads[name].data()
      const got = await r.grads[name].data()
      const scale = Math.max(...Array.from(want, Math.abs))
      let worst = 0
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i]! - got[i]!))
      expect(worst / scale, `${name} at step ${step}`).toBeLessThan(1e-5)
    }
    tf.dispose([ref.loss, ref.auxLoss, ref.l0, ref.fired, ...Object.values(ref.grads)])
    trace.losses.push((await r.loss.data())[0]!, (await r.auxLoss.data())[0]!, (await r.l0.data())[0]!)
    const g: Record<string, Float32Array> = { fired: (await r.fired.data()) as Float32Array }
    for (const name of PARAM_NAMES) g[name] = Float32Array.from(await r.grads[name].data())
    trace.grads.push(g)
    await adam.apply(p, r.grads, step, 1e-2)
    tf.dispose([x, r.loss, r.auxLoss, r.l0, r.fired, ...Object.values(r.grads)])
  }
  for (const name of PARAM_NAMES) trace.weights[name] = Float32Array.from(await p[name].data())
  tf.dispose([dead, ...Object.values(p)])
  return trace
}

const one = new HostKernel(1)
const three = new HostKernel(3, { minWork: 0 })
afterAll(async () => {
  await three.close()
})

describe.each([
  ['tfjs', tfjsEncoder],
  ['ort', ortEngine]
] as const)('the host loops on three threads, dense part on %s', (_name, engine) => {
  it('equal the one-thread step bit for bit over 3 steps with AuxK (losses, indices, gradients, weights after Adam), and the all-tfjs gradients at every step', async () => {
    await initBackend('ort')
    const before = three.dispatched
    const a = await train(one, engine)
    const b = await train(three, engine)
    // Every kind of task was split: decode, variance and scatter per step, Adam per parameter.
    expect(three.dispatched - before).toBeGreaterThanOrEqual(3 * (3 * 3 + 4 * 3))
    expect(one.dispatched).toBe(0)
    expect(b.losses).toEqual(a.losses)
    expect(a.losses[0]).toBeGreaterThan(0)
    expect(a.losses[1], 'AuxK loss').toBeGreaterThan(0)
    expect(b.indices).toEqual(a.indices)
    expect(a.indices[1]!.length, 'AuxK picked latents').toBe(B * cfg.auxK)
    for (let s = 0; s < 3; s++) {
      for (const [name, g] of Object.entries(a.grads[s]!)) {
        expect(
          g.some((v) => v !== 0),
          `${name} gradient of step ${s + 1}`
        ).toBe(true)
        expect(b.grads[s]![name], `${name} gradient of step ${s + 1}`).toEqual(g)
      }
    }
    for (const name of PARAM_NAMES) expect(b.weights[name], name).toEqual(a.weights[name])
    // Adam moved W_dec and kept its rows at unit norm.
    const w = b.weights.Wdec!
    for (let r = 0; r < n; r++) expect(Math.hypot(...w.subarray(r * d, (r + 1) * d))).toBeCloseTo(1, 5)
  }, 120_000)
})

describe('the splits', () => {
  it('cover the range once, contiguously, with balanced weights', () => {
    expect(evenRanges(10, 3)).toEqual([
      [0, 3],
      [3, 6],
      [6, 10]
    ])
    expect(evenRanges(2, 4)).toEqual([
      [0, 1],
      [1, 2]
    ])
    const weights = [1, 1, 1, 9, 1, 1, 1, 1, 1, 1, 1, 1]
    const r = weightedRanges(weights, 3)
    expect(r[0]![0]).toBe(0)
    expect(r.at(-1)![1]).toBe(weights.length)
    for (let i = 1; i < r.length; i++) expect(r[i]![0]).toBe(r[i - 1]![1])
    // Each range ends where the running sum first reaches its share (20/3, 40/3): the heavy latent ends the first.
    expect(r).toEqual([
      [0, 4],
      [4, 6],
      [6, 12]
    ])
  })
})

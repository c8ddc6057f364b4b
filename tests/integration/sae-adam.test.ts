// HostAdam (host loops, host copies of the parameters, W_dec renormalised in the same pass) against Adam
// in tfjs kernels followed by tfjs's unitRows (the GPU path), and against a float64 Adam written out here.
import * as tf from '@tensorflow/tfjs-core'
import { describe, expect, it } from 'vitest'
import { Rng } from '../../src/core/random'
import { Adam, HostAdam, hostValues, PARAM_NAMES, type AdamSettings, type Gradients, type SaeTensors } from '../../src/core/sae/topk'
import { initBackend } from '../../src/core/tf/backend'

const [d, n] = [6, 10]
const settings: AdamSettings = { beta1: 0.9, beta2: 0.999, eps: 1e-8, decoderUnitNorm: true }

function params(rng: Rng): SaeTensors {
  const t = (shape: number[]): tf.Variable =>
    tf.variable(
      tf.tensor(
        Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.gaussian()),
        shape
      )
    )
  return { Wenc: t([d, n]), benc: t([n]), Wdec: t([n, d]), bdec: t([d]) }
}

function gradients(rng: Rng): Gradients {
  const t = (shape: number[]): tf.Tensor =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.gaussian()),
      shape
    )
  return { Wenc: t([d, n]), benc: t([n]), Wdec: t([n, d]), bdec: t([d]) }
}

describe.each(['wasm', 'cpu'] as const)('HostAdam on %s', (backend) => {
  it('equals tfjs Adam + unitRows and a float64 Adam over 4 steps, also when a parameter is assigned from outside', async () => {
    await initBackend(backend)
    const a = params(new Rng(1))
    const b = params(new Rng(1))
    const start = Object.fromEntries(await Promise.all(PARAM_NAMES.map(async (k) => [k, Float64Array.from(await a[k].data())]))) as Record<string, Float64Array>
    const host = new HostAdam(a, settings)
    const device = new Adam(b, settings)
    const rng = new Rng(2)
    // The float64 reference: Adam with bias correction (Kingma & Ba 2015), then W_dec rows to unit norm.
    const ref = { w: start, m: {} as Record<string, Float64Array>, v: {} as Record<string, Float64Array> }
    for (const k of PARAM_NAMES) {
      ref.m[k] = new Float64Array(start[k]!.length)
      ref.v[k] = new Float64Array(start[k]!.length)
    }
    for (let t = 1; t <= 4; t++) {
      const g = gradients(rng)
      if (t === 3) {
        // Someone else assigns W_enc: HostAdam must not keep updating its stale host copy.
        const moved = tf.mul(a.Wenc, 0.5)
        a.Wenc.assign(moved)
        b.Wenc.assign(moved)
        ref.w.Wenc = ref.w.Wenc!.map((x) => Math.fround(x * 0.5))
        moved.dispose()
      }
      for (const k of PARAM_NAMES) {
        const gk = await g[k].data()
        const w = ref.w[k]!
        for (let i = 0; i < w.length; i++) {
          ref.m[k]![i] = 0.9 * ref.m[k]![i]! + 0.1 * gk[i]!
          ref.v[k]![i] = 0.999 * ref.v[k]![i]! + 0.001 * gk[i]! ** 2
          w[i] = w[i]! - (0.01 * (ref.m[k]![i]! / (1 - 0.9 ** t))) / (Math.sqrt(ref.v[k]![i]! / (1 - 0.999 ** t)) + 1e-8)
        }
      }
      for (let r = 0; r < n; r++) {
        const row = ref.w.Wdec!.subarray(r * d, (r + 1) * d)
        const norm = Math.hypot(...row)
        for (let i = 0; i < d; i++) row[i]! /= norm
      }
      await host.apply(a, g, t, 0.01)
      await device.apply(b, g, t, 0.01)
      tf.dispose(Object.values(g))
    }
    for (const k of PARAM_NAMES) {
      const fromHost = await a[k].data()
      const fromDevice = await b[k].data()
      const mirrored = await hostValues(a[k])
      for (let i = 0; i < fromHost.length; i++) {
        expect(fromHost[i]).toBeCloseTo(ref.w[k]![i]!, 5)
        expect(fromDevice[i]).toBeCloseTo(ref.w[k]![i]!, 5)
        expect(mirrored[i]).toBe(fromHost[i])
      }
    }
    device.dispose()
    tf.dispose([...Object.values(a), ...Object.values(b)])
  })
})

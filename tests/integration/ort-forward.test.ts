// The onnxruntime answers to a forward pass's requests (ort/engine.ts: dense products with their fused activation,
// attention cores) against tfjs's own (tf/products.ts runSync, tf/activations.ts: tested against PyTorch in
// model-config.test.ts), each on random inputs. The whole forward pass on ort is in forward.test.ts.
import * as tf from '@tensorflow/tfjs-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ACTIVATIONS } from '../../src/core/lm/model-config'
import { causalMask } from '../../src/core/lm/model'
import { OrtDenseProducts, productGraph } from '../../src/core/ort/engine'
import { Rng } from '../../src/core/random'
import { initBackend } from '../../src/core/tf/backend'
import { attention, ortProducts, product, runAsync, runSync, type Forward } from '../../src/core/tf/products'

function relativeError(got: Float32Array, want: Float32Array): number {
  let scale = 0
  let err = 0
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!))
    err = Math.max(err, Math.abs(got[i]! - want[i]!))
  }
  return err / scale
}

const rng = new Rng(7)
const random = (shape: number[], scale = 1): tf.Tensor =>
  tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * rng.gaussian()),
    shape
  )

let engine: OrtDenseProducts
beforeAll(async () => {
  await initBackend('wasm')
  engine = new OrtDenseProducts()
})
afterAll(() => engine.release())

/** The request's answer from runSync (tfjs) and from onnxruntime (runAsync with ortProducts). */
async function both(f: () => Forward<tf.Tensor>): Promise<{ ort: Float32Array; tfjs: Float32Array; shape: number[] }> {
  const want = runSync(f())
  const got = await runAsync(f(), ortProducts(engine))
  expect(got.shape).toEqual(want.shape)
  const out = { ort: (await got.data()) as Float32Array, tfjs: (await want.data()) as Float32Array, shape: got.shape }
  tf.dispose([got, want])
  return out
}

describe('onnxruntime answers a forward pass as tfjs does', () => {
  it.each(ACTIVATIONS)('a dense product with bias and %s fused equals tfjs matMul + bias + ACTIVATION_FNS to 1e-5', async (act) => {
    const x = random([37, 24]) as tf.Tensor2D
    const w = random([24, 50], 0.5)
    const b = random([50], 0.5)
    const { ort, tfjs } = await both(() => product(x, w, b, act))
    expect(relativeError(ort, tfjs)).toBeLessThan(1e-5)
    expect(productGraph(24, 50, true, act).nodes[0]!.op).toBe('Gemm')
    tf.dispose([x, w, b])
  })

  it('a dense product without bias or activation equals tfjs matMul to 1e-6', async () => {
    const x = random([5, 64]) as tf.Tensor2D
    const w = random([64, 3])
    const { ort, tfjs, shape } = await both(() => product(x, w))
    expect(shape).toEqual([5, 3])
    expect(relativeError(ort, tfjs)).toBeLessThan(1e-6)
    tf.dispose([x, w])
  })

  it('the attention core (causal mask, scale) equals tfjs softmax(q·kᵀ·scale + mask)·v to 1e-5', async () => {
    const [BH, T, hd] = [6, 11, 8]
    const q = random([BH, T, hd]) as tf.Tensor3D
    const k = random([BH, T, hd]) as tf.Tensor3D
    const v = random([BH, T, hd]) as tf.Tensor3D
    const mask = causalMask(T)
    const { ort, tfjs } = await both(() => attention(q, k, v, 0.37, mask))
    expect(relativeError(ort, tfjs)).toBeLessThan(1e-5)
    // The first query sees only the first key: its output is v's first row.
    expect(Array.from(ort.subarray(0, hd)).map((x) => x.toFixed(5))).toEqual(Array.from((await v.data()).subarray(0, hd)).map((x) => x.toFixed(5)))
    tf.dispose([q, k, v, mask])
  })

  it('refuses a weight whose rows are not the activation width, naming both shapes', async () => {
    const x = random([4, 6]) as tf.Tensor2D
    const w = random([5, 2])
    await expect(runAsync(product(x, w), ortProducts(engine))).rejects.toThrow('A dense product of x [4,6] needs w [6, out]; it was given w [5,2].')
    tf.dispose([x, w])
  })
})

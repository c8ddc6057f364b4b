// FeatureTrace's tfjs forward passes against the independent PyTorch reference, every layer, each architecture
// and each config layout and variant (RoPE scaling types, rope_parameters, biases, activations, GPT-2 scaling keys).
import * as tf from '@tensorflow/tfjs-core'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { SafetensorsFile } from '../../src/core/io/safetensors'
import { loadModel } from '../../src/core/lm/model'
import { initBackend, type BackendName } from '../../src/core/tf/backend'
import { MODEL_NAMES, tinyModels, VARIANT_MODEL_NAMES } from '../fixtures/tiny-models'

let root: string
beforeAll(() => {
  root = tinyModels()
})

async function reference(
  name: string
): Promise<{ ids: Int32Array; shape: number[]; hidden: (L: number) => Promise<Float32Array>; final: () => Promise<Float32Array>; close: () => Promise<void> }> {
  const f = await SafetensorsFile.open(join(root, 'references', `${name}.safetensors`))
  return {
    ids: await f.readInt32('input_ids'),
    shape: f.info('input_ids').shape,
    hidden: (L) => f.readFloat32(`hidden.${L}`),
    final: () => f.readFloat32('final_norm'),
    close: () => f.close()
  }
}

function relativeError(got: Float32Array, want: Float32Array): number {
  let scale = 0
  let err = 0
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!))
    err = Math.max(err, Math.abs(got[i]! - want[i]!))
  }
  return err / scale
}

describe.each(['cpu', 'wasm'] as BackendName[])('forward pass on tfjs %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend)
  })

  it.each([...MODEL_NAMES, ...VARIANT_MODEL_NAMES])('%s matches the PyTorch reference at every layer to 1e-4 of the activation scale', async (name) => {
    const ref = await reference(name)
    const before = tf.memory().numTensors
    const model = await loadModel(join(root, 'models', name))
    const layers = Array.from({ length: model.layers + 1 }, (_, i) => i)
    const ids = tf.tensor2d(ref.ids, ref.shape as [number, number], 'int32')
    const states = model.hiddenStates(ids, layers)
    const normed = model.hiddenStates(ids, [model.layers], { finalNorm: true })
    for (const L of layers) {
      const err = relativeError((await states[L]!.data()) as Float32Array, await ref.hidden(L))
      expect(err, `${name} layer ${L}`).toBeLessThan(1e-4)
    }
    expect(relativeError((await normed[0]!.data()) as Float32Array, await ref.final())).toBeLessThan(1e-4)
    tf.dispose([...states, ...normed, ids])
    model.dispose()
    expect(tf.memory().numTensors).toBe(before)
    await ref.close()
  })
})

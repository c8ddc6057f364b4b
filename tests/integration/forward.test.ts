// FeatureTrace's tfjs forward passes against the independent PyTorch reference, every layer, each architecture
// and each config layout and variant (RoPE scaling types, rope_parameters, biases, activations, GPT-2 scaling keys);
// and the same forward pass with its dense products on onnxruntime (the ort engine) against both the reference and
// the all-wasm path.
import * as tf from '@tensorflow/tfjs-core'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ActivationStore } from '../../src/core/io/activation-store'
import { SafetensorsFile } from '../../src/core/io/safetensors'
import { harvest } from '../../src/core/lm/harvest'
import { CheckpointFolder } from '../../src/core/lm/checkpoint'
import { lmHeadName, loadModel, readModelSpec, weightPlanFor } from '../../src/core/lm/model'
import { OrtDenseProducts } from '../../src/core/ort/engine'
import { initBackend, type BackendName } from '../../src/core/tf/backend'
import { HostWeight, ortProducts, type AsyncProducts } from '../../src/core/tf/products'
import { MODEL_NAMES, tinyModels, VARIANT_MODEL_NAMES } from '../fixtures/tiny-models'
import { tempDir } from '../helpers'

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

describe('forward pass with its dense products on onnxruntime (ort), the rest on tfjs wasm', () => {
  let engine: OrtDenseProducts
  let products: AsyncProducts
  beforeAll(async () => {
    const choice = await initBackend('ort')
    // The "wasm path" compared with below is hiddenStates on the tfjs backend beside onnxruntime.
    expect(choice.tfjs).toBe('wasm')
    engine = new OrtDenseProducts()
    products = ortProducts(engine)
  })
  afterAll(() => engine.release())

  it.each([...MODEL_NAMES, ...VARIANT_MODEL_NAMES])(
    '%s matches the PyTorch reference to 1e-4 and the wasm path to 1e-5 of the activation scale at every layer',
    async (name) => {
      const ref = await reference(name)
      const before = tf.memory().numTensors
      const model = await loadModel(join(root, 'models', name))
      const layers = Array.from({ length: model.layers + 1 }, (_, i) => i)
      const ids = tf.tensor2d(ref.ids, ref.shape as [number, number], 'int32')
      const states = await model.hiddenStatesAsync(ids, layers, products)
      const normed = await model.hiddenStatesAsync(ids, [model.layers], products, { finalNorm: true })
      const wasm = model.hiddenStates(ids, layers)
      for (const L of layers) {
        const got = (await states[L]!.data()) as Float32Array
        expect(relativeError(got, await ref.hidden(L)), `${name} layer ${L} against PyTorch`).toBeLessThan(1e-4)
        expect(relativeError(got, (await wasm[L]!.data()) as Float32Array), `${name} layer ${L} against wasm`).toBeLessThan(1e-5)
      }
      expect(relativeError((await normed[0]!.data()) as Float32Array, await ref.final())).toBeLessThan(1e-4)
      tf.dispose([...states, ...normed, ...wasm, ids])
      model.dispose()
      expect(tf.memory().numTensors).toBe(before)
      await ref.close()
    }
  )

  it.each(['gpt_neox', 'llama-gqa-tied', 'gpt2'])('%s: logits (LM head included) with and without a splice equal the wasm path to 1e-5', async (name) => {
    const ref = await reference(name)
    const before = tf.memory().numTensors
    const model = await loadModel(join(root, 'models', name), undefined, { head: true })
    const ids = tf.tensor2d(ref.ids, ref.shape as [number, number], 'int32')
    const halve = { layer: 1, replace: (x: tf.Tensor3D): tf.Tensor3D => tf.mul(x, 0.5) }
    for (const splice of [undefined, halve]) {
      const got = await model.logitsAsync(ids, products, splice)
      const want = model.logits(ids, splice)
      expect(got.shape).toEqual([...ref.shape, model.spec.vocab])
      expect(relativeError((await got.data()) as Float32Array, (await want.data()) as Float32Array), `${name} splice ${splice?.layer}`).toBeLessThan(1e-5)
      tf.dispose([got, want])
    }
    tf.dispose(ids)
    model.dispose()
    expect(tf.memory().numTensors).toBe(before)
    await ref.close()
  })

  it.each([...MODEL_NAMES, ...VARIANT_MODEL_NAMES])(
    '%s loaded with host projections: hidden states and logits (with and without a splice) equal the normal load to 1e-5, and its projections leave tfjs',
    async (name) => {
      const folder = join(root, 'models', name)
      const ref = await reference(name)
      const checkpoint = CheckpointFolder.open(folder)
      const weights = await checkpoint.weights()
      const withHead = !('missing' in lmHeadName(weights, checkpoint.spec, weightPlanFor(checkpoint.spec, weights.namesWithData(), folder), folder))
      await checkpoint.close()
      const ids = tf.tensor2d(ref.ids, ref.shape as [number, number], 'int32')
      const halve = { layer: 1, replace: (x: tf.Tensor3D): tf.Tensor3D => tf.mul(x, 0.5) }
      const before = tf.memory().numTensors
      const normal = await loadModel(folder, undefined, { head: withHead })
      const normalTensors = tf.memory().numTensors - before
      // Every distinct object the forward passes below use as a product's w or b: the normal load's are tfjs tensors.
      const used = new Set<unknown>()
      const recording =
        (expectHost: boolean): AsyncProducts =>
        async (r) => {
          if (r.kind === 'product') {
            for (const w of r.b ? [r.w, r.b] : [r.w]) {
              expect(w instanceof HostWeight, `${name}: a product's weight [${w.shape}]`).toBe(expectHost)
              if (!expectHost) used.add(w)
            }
          }
          return products(r)
        }
      const layers = Array.from({ length: normal.layers + 1 }, (_, i) => i)
      const forwards = async (model: typeof normal, answer: AsyncProducts): Promise<tf.Tensor[]> => [
        ...(await model.hiddenStatesAsync(ids, layers, answer)),
        ...(await model.hiddenStatesAsync(ids, [model.layers], answer, { finalNorm: true })),
        ...(withHead ? [await model.logitsAsync(ids, answer), await model.logitsAsync(ids, answer, halve)] : [])
      ]
      const want = await forwards(normal, recording(false))
      // The normal load holds the embedding, norms (and wpe) and every product's weight and bias in tfjs.
      expect(used.size).toBeGreaterThan(0)
      expect(used.size).toBeLessThan(normalTensors)
      const beforeHost = tf.memory().numTensors
      const host = await loadModel(folder, undefined, { head: withHead, projections: 'host' })
      // Exactly the tensors used as a product's w or b are gone from tfjs; the rest is what the normal load holds.
      expect(tf.memory().numTensors - beforeHost).toBe(normalTensors - used.size)
      const got = await forwards(host, recording(true))
      expect(got.length).toBe(want.length)
      for (let i = 0; i < want.length; i++) {
        expect(got[i]!.shape).toEqual(want[i]!.shape)
        expect(relativeError((await got[i]!.data()) as Float32Array, (await want[i]!.data()) as Float32Array), `${name} output ${i}`).toBeLessThan(1e-5)
      }
      // runSync (hiddenStates, logits) copies each host weight into tfjs for its product: still the same results, nothing left behind.
      const count = tf.memory().numTensors
      const sync = [...host.hiddenStates(ids, layers), ...(withHead ? [host.logits(ids, halve)] : [])]
      const syncWant = [...want.slice(0, layers.length), ...(withHead ? [want[want.length - 1]!] : [])]
      for (let i = 0; i < sync.length; i++) {
        expect(relativeError((await sync[i]!.data()) as Float32Array, (await syncWant[i]!.data()) as Float32Array), `${name} sync output ${i}`).toBeLessThan(
          1e-5
        )
      }
      expect(tf.memory().numTensors - count).toBe(sync.length)
      tf.dispose([...want, ...got, ...sync])
      host.dispose()
      expect(tf.memory().numTensors).toBe(beforeHost - want.length)
      normal.dispose()
      tf.dispose(ids)
      expect(tf.memory().numTensors).toBe(before - 1)
      await ref.close()
    }
  )

  it('a request that fails rejects the forward pass with its error and leaves no tensor behind', async () => {
    const ref = await reference('llama-gqa-tied')
    const before = tf.memory().numTensors
    const model = await loadModel(join(root, 'models', 'llama-gqa-tied'))
    expect(model.layers).toBeGreaterThanOrEqual(2)
    const ids = tf.tensor2d(ref.ids, ref.shape as [number, number], 'int32')
    let calls = 0
    const failing: AsyncProducts = async (p) => {
      if (++calls === 9) throw new Error('the engine failed on product 9')
      return products(p)
    }
    await expect(model.hiddenStatesAsync(ids, [0, model.layers], failing)).rejects.toThrow('the engine failed on product 9')
    // A Llama block makes 8 requests (q, k, v, attention, o, gate, up, down): request 9 is the second block's first.
    // The first block's result, the captured embeddings and the second block's own tensors are all gone.
    expect(calls).toBe(9)
    tf.dispose(ids)
    model.dispose()
    expect(tf.memory().numTensors).toBe(before)
    await ref.close()
  })
})

describe('harvest on ort', () => {
  it.each([...MODEL_NAMES, ...VARIANT_MODEL_NAMES])(
    '%s: the stored residual streams of every layer equal a harvest on wasm to 1e-5 of their scale',
    async (name) => {
      const t = tempDir()
      try {
        const corpus = join(t.dir, 'corpus.jsonl')
        const texts = [
          'The cat sat on the mat while the dog slept.',
          '東京は日本の首都です。Tokyo is the capital of Japan.',
          'Sparse autoencoders find features, step after step.'
        ]
        writeFileSync(corpus, texts.map((text) => JSON.stringify({ text })).join('\n') + '\n')
        const model = join(root, 'models', name)
        const { layers } = readModelSpec(model)
        const all = Array.from({ length: layers + 1 }, (_, i) => i)
        const never = { signal: new AbortController().signal, progress: () => {} }
        const run = (backend: BackendName) =>
          harvest({ model, corpus, layers: all, out: (L) => join(t.dir, `${backend}-${L}`), context: 12, dtype: 'f32', batchSequences: 3, backend }, never)
        expect((await run('wasm')).backend).toBe('wasm')
        expect((await run('ort')).backend).toBe('ort')
        for (const L of all) {
          const [a, b] = await Promise.all(['ort', 'wasm'].map((e) => ActivationStore.open(join(t.dir, `${e}-${L}`))))
          expect(a!.rows).toBe(b!.rows)
          expect(a!.rows).toBeGreaterThan(0)
          const [x, y] = await Promise.all([a!.readShard(0), b!.readShard(0)])
          expect(x.acts.length).toBe(a!.rows * a!.manifest.d)
          expect(relativeError(x.acts as Float32Array, y.acts as Float32Array), `${name} layer ${L}`).toBeLessThan(1e-5)
        }
      } finally {
        t.cleanup()
      }
    }
  )
})

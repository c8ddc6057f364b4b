// The demo model's trainer: deterministic for a seed, it learns, and what it saves is read by loadModel
// (the harvest path) as the same model: the loaded checkpoint predicts what training taught it.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import { beforeAll, describe, expect, it } from 'vitest'
import { loadModel } from '../../src/core/lm/model'
import { trainTinyLlama, type TinyLlamaConfig } from '../../scripts/demo/train-lm'
import { CheckpointWeights } from '../../src/core/lm/weights'
import { initBackend } from '../../src/core/tf/backend'
import { tempDir } from '../helpers'

const config: TinyLlamaConfig = {
  vocabSize: 24,
  hiddenSize: 16,
  layers: 2,
  heads: 2,
  intermediateSize: 32,
  maxPositions: 64,
  ropeTheta: 10000,
  rmsNormEps: 1e-5,
  bosId: 1,
  eosId: 2
}
// A learnable stream: a fixed cycle of 7 tokens, so the next token is a function of the current one.
const cycle = [3, 9, 4, 17, 5, 11, 20]
const stream = Int32Array.from({ length: 4000 }, (_, i) => cycle[i % cycle.length]!)

async function train(out: string, steps: number): Promise<number[]> {
  return trainTinyLlama(stream, config, { batch: 8, context: 16, steps, lr: 1e-2, warmup: 5, seed: 3, saveAt: [0, steps], out, tokenizerFiles: [] })
}

describe('trainTinyLlama', () => {
  beforeAll(async () => {
    await initBackend('wasm')
  })

  it('is deterministic: the same seed writes the same bytes', async () => {
    const t = tempDir()
    try {
      await train(join(t.dir, 'a'), 3)
      await train(join(t.dir, 'b'), 3)
      for (const step of [0, 3]) {
        const a = readFileSync(join(t.dir, 'a', `step${step}`, 'model.safetensors'))
        const b = readFileSync(join(t.dir, 'b', `step${step}`, 'model.safetensors'))
        expect(a.equals(b)).toBe(true)
      }
    } finally {
      t.cleanup()
    }
  })

  it('learns, and loadModel reads the saved checkpoint as the model that learned', async () => {
    const t = tempDir()
    try {
      const before = tf.memory().numTensors
      const losses = await train(t.dir, 80)
      expect(tf.memory().numTensors).toBe(before)
      expect(losses[0]).toBeGreaterThan(Math.log(config.vocabSize) - 0.3)
      expect(losses.at(-1)).toBeLessThan(0.3)
      const folder = join(t.dir, 'step80')
      const cfg = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as Record<string, unknown>
      expect(cfg.model_type).toBe('llama')
      expect(cfg.featuretrace).toMatchObject({ step: 80, tokens_seen: 80 * 8 * 16 })
      // Next-token loss through the harvest path: hidden states with the final norm, then the tied embedding.
      const model = await loadModel(folder)
      const w = await CheckpointWeights.open(folder)
      const embed = await w.tensor('model.embed_tokens.weight', [config.vocabSize, config.hiddenSize])
      await w.close()
      const seq = Array.from({ length: 17 }, (_, i) => cycle[(i + 2) % cycle.length]!)
      const input = tf.tensor2d([seq.slice(0, 16)], [1, 16], 'int32')
      const [h] = model.hiddenStates(input, [config.layers], { finalNorm: true })
      const loss = tf.tidy(() => {
        const logp = tf.logSoftmax(tf.matMul(tf.reshape(h!, [16, config.hiddenSize]), embed, false, true))
        return -tf.mean(tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(seq.slice(1), 'int32'), config.vocabSize)), -1)).dataSync()[0]!
      })
      tf.dispose([input, h!, embed])
      model.dispose()
      expect(loss).toBeLessThan(0.3)
    } finally {
      t.cleanup()
    }
  })
})

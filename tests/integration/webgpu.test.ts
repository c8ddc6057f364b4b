// The WebGPU engine runs the same code as the wasm path and gets the same numbers: a harvest of a tiny model
// and a few SAE training steps, each on wasm and on webgpu, compared within float32 tolerance. Here Dawn finds
// Chromium's SwiftShader (a Vulkan driver emulating a GPU on the CPU) through Debian's libvulkan1; where no
// Vulkan loader or adapter is present the suite skips and prints why.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ActivationStore } from '../../src/core/io/activation-store'
import { harvest } from '../../src/core/lm/harvest'
import { Sae } from '../../src/core/sae/sae'
import { TRAINING_LOG, trainSae, type TrainOptions } from '../../src/core/sae/train'
import { prepareWebgpu } from '../../src/core/tf/webgpu'
import { plantedDictionary, writePlantedActivations } from '../fixtures/planted'
import { tinyModels } from '../fixtures/tiny-models'
import { tempDir } from '../helpers'

// Chromium's SwiftShader Vulkan driver, for this test only and only when the caller chose none.
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json'
if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD
const probe = await prepareWebgpu(true)
if (probe.why) console.log(`webgpu tests skipped: ${probe.why}`)

const never = { signal: new AbortController().signal, progress: () => {} }
const DOCS = [
  { text: 'The cat sat on the mat. The dog sat on the log. Language models learn features during training.', lang: 'en' },
  { text: '東京は日本の首都です。猫はマットの上に座った。言語モデルは訓練の間に特徴を学習します。', lang: 'ja' },
  { text: 'In 2024, researchers trained 154 checkpoints of the same model, and sparse autoencoders found them.', lang: 'en' }
]

/** max |a − b| over max |b|: the error relative to the reference's scale. */
function relativeError(got: Float32Array, want: Float32Array): number {
  expect(got.length).toBe(want.length)
  let scale = 0
  let err = 0
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!))
    err = Math.max(err, Math.abs(got[i]! - want[i]!))
  }
  return err / scale
}

describe.skipIf(probe.why !== null)('the webgpu engine equals the wasm path', () => {
  let t: ReturnType<typeof tempDir>
  beforeAll(() => {
    t = tempDir('ft-webgpu-')
    console.log(`webgpu adapter: ${JSON.stringify(probe.adapter)}`)
  })
  afterAll(() => t.cleanup())

  it.each(['llama-gqa-tied', 'gpt_neox'])('%s: the harvested residual stream (layer 2) to 1e-4 of its scale', async (name) => {
    const model = join(tinyModels(), 'models', name)
    const corpus = join(t.dir, 'corpus.jsonl')
    writeFileSync(corpus, DOCS.map((d) => JSON.stringify(d)).join('\n') + '\n')
    const acts: Record<string, Float32Array> = {}
    for (const backend of ['wasm', 'webgpu'] as const) {
      const out = join(t.dir, `${name}-${backend}`)
      const result = await harvest({ model, corpus, layers: [2], out: () => out, context: 16, dtype: 'f32', seed: 3, backend }, never)
      console.log(`harvest ${name}: ${result.backend}`)
      expect(result.backend).toContain(backend)
      const store = await ActivationStore.open(out)
      acts[backend] = (await store.readShard(0)).acts
    }
    const err = relativeError(acts.webgpu!, acts.wasm!)
    console.log(`harvest ${name}: webgpu vs wasm, max error / scale = ${err.toExponential(2)}`)
    expect(err).toBeLessThan(1e-4)
  })

  it('five SAE training steps (TopK, AuxK, Adam) give the same weights and metrics', async () => {
    const planted = plantedDictionary(32, 96, 5)
    const activations = await writePlantedActivations(t.dir, 'planted', planted, 4096, 3, 6)
    const overrides: TrainOptions['overrides'] = {
      n: 128,
      k: 4,
      auxK: 8,
      // Latents idle for one batch count as dead, so AuxK's branch runs from the second step.
      deadAfterTokens: 256,
      batchSize: 256,
      tokens: 5 * 256,
      lr: 1e-3,
      warmupSteps: 2,
      inputScaling: 'none',
      evalRows: 512,
      logEvery: 1
    }
    const runs: Record<string, { sae: Sae; fvu: number; l0: number; log: { loss: number; auxLoss: number }[] }> = {}
    for (const backend of ['wasm', 'webgpu'] as const) {
      const r = await trainSae({ activations, out: join(t.dir, `sae-${backend}`), preset: 'gao2024', overrides, backend }, never)
      console.log(`train: ${r.backend.name} (${r.backend.reason})`)
      expect(r.backend.name).toBe(backend)
      expect(r.steps).toBe(5)
      const log = readFileSync(join(r.dir, TRAINING_LOG), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { loss: number; auxLoss: number })
      runs[backend] = { sae: await Sae.load(r.dir), fvu: r.eval.fvu, l0: r.eval.l0, log }
    }
    const [gpu, ref] = [runs.webgpu!, runs.wasm!]
    console.log(`train: per-step (loss, AuxK loss) webgpu ${JSON.stringify(gpu.log.map((m) => [m.loss, m.auxLoss]))}`)
    console.log(`train: per-step (loss, AuxK loss) wasm   ${JSON.stringify(ref.log.map((m) => [m.loss, m.auxLoss]))}`)
    expect(ref.log.some((m) => m.auxLoss > 0)).toBe(true)
    expect(gpu.log.length).toBe(ref.log.length)
    gpu.log.forEach((m, i) => {
      expect(m.loss, `step ${i + 1} loss`).toBeCloseTo(ref.log[i]!.loss, 5)
      expect(m.auxLoss, `step ${i + 1} AuxK loss`).toBeCloseTo(ref.log[i]!.auxLoss, 5)
    })
    for (const key of ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const) {
      const err = relativeError(gpu.sae.weights[key] as Float32Array, ref.sae.weights[key] as Float32Array)
      console.log(`train: ${key} webgpu vs wasm, max error / scale = ${err.toExponential(2)}`)
      expect(err, key).toBeLessThan(1e-4)
    }
    console.log(`train: FVU webgpu ${gpu.fvu} wasm ${ref.fvu}; L0 webgpu ${gpu.l0} wasm ${ref.l0}`)
    expect(gpu.fvu).toBeCloseTo(ref.fvu, 4)
    expect(gpu.l0).toBeCloseTo(ref.l0, 4)
  })
})

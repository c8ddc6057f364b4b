// Training on activations with known structure: recovery, warm start, resume, memory, bad input.
import * as tf from '@tensorflow/tfjs-core'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeSafetensors } from '../../src/core/io/safetensors'
import { Sae } from '../../src/core/sae/sae'
import { trainSae, type TrainOptions } from '../../src/core/sae/train'
import { initBackend } from '../../src/core/tf/backend'
import { drifted, matchDirections, plantedDictionary, writePlantedActivations, type Planted } from '../fixtures/planted'
import { tempDir } from '../helpers'

/** The planted-dictionary and resume tests run on each engine that trains on the CPU. */
const ENGINES = ['wasm', 'ort'] as const
const never = { signal: new AbortController().signal, progress: () => {} }
/** Settings that recover a 512-direction dictionary in d = 64 in about half a minute on wasm. */
const RECOVERY = {
  n: 1024,
  k: 4,
  batchSize: 512,
  tokens: 600_000,
  lr: 2e-3,
  warmupSteps: 50,
  auxK: 0,
  inputScaling: 'none' as const,
  evalRows: 4096,
  logEvery: 100
}

let t: ReturnType<typeof tempDir>
let planted: Planted
let fileA: string
let scratchA: Awaited<ReturnType<typeof trainSae>>

beforeAll(async () => {
  await initBackend('wasm')
  t = tempDir('ft-sae-')
  planted = plantedDictionary(64, 512, 1)
  fileA = await writePlantedActivations(t.dir, 'a', planted, 100_000, 3, 2)
  scratchA = await trainSae({ activations: fileA, out: join(t.dir, 'sae-a'), preset: 'gao2024', backend: 'wasm', overrides: RECOVERY }, never)
}, 300_000)
afterAll(() => t.cleanup())

describe('TopK SAE training', () => {
  it.each(ENGINES)(
    'on %s, recovers ≥ 90% of planted directions at cosine ≥ 0.9 with FVU ≤ 0.1, and saves SAELens files',
    async (engine) => {
      const trained =
        engine === 'wasm'
          ? scratchA
          : await trainSae({ activations: fileA, out: join(t.dir, `sae-a-${engine}`), preset: 'gao2024', backend: engine, overrides: RECOVERY }, never)
      expect(trained.backend.name).toBe(engine)
      const sae = await Sae.load(trained.dir)
      const match = matchDirections(planted, sae.weights.W_dec, sae.n)
      const recovered = match.filter((m) => m.cos >= 0.9).length / planted.N
      expect(recovered).toBeGreaterThanOrEqual(0.9)
      expect(trained.eval.fvu).toBeLessThanOrEqual(0.1)
      expect(trained.eval.explainedVariance).toBeCloseTo(1 - trained.eval.fvu, 10)
      expect(trained.eval.cosine).toBeGreaterThan(0.9)
      expect(trained.eval.l0).toBeLessThanOrEqual(4)
      const cfg = JSON.parse(readFileSync(join(trained.dir, 'cfg.json'), 'utf8')) as Record<string, unknown>
      expect(cfg).toMatchObject({
        architecture: 'topk',
        d_in: 64,
        d_sae: 1024,
        k: 4,
        apply_b_dec_to_input: true,
        featuretrace: { preset: 'gao2024', input_scaling: 'none', tokens_seen: 600_064 }
      })
      expect(existsSync(join(trained.dir, 'sparsity.safetensors'))).toBe(true)
      expect(existsSync(join(trained.dir, 'training_state.json'))).toBe(false)
      // Decoder rows are unit norm.
      const norms = Array.from({ length: sae.n }, (_, i) => Math.hypot(...sae.weights.W_dec.subarray(i * 64, (i + 1) * 64)))
      expect(Math.max(...norms.map((x) => Math.abs(x - 1)))).toBeLessThan(1e-4)
    },
    300_000
  )

  it('warm-started on drifted directions reaches the from-scratch FVU with ≤ 20% of its tokens, feature i still feature i', async () => {
    // Each direction moves by about 9° (cosine ≈ 0.99 to where it was).
    const moved = drifted(planted, 0.02, 3)
    const fileB = await writePlantedActivations(t.dir, 'b', moved, 100_000, 3, 4)
    const scratchB = await trainSae({ activations: fileB, out: join(t.dir, 'sae-b-scratch'), preset: 'gao2024', overrides: RECOVERY }, never)
    const warm = await trainSae(
      {
        activations: fileB,
        out: join(t.dir, 'sae-b-warm'),
        preset: 'gao2024',
        init: scratchA.dir,
        overrides: { ...RECOVERY, tokens: RECOVERY.tokens / 5, lr: RECOVERY.lr * 0.5, warmupSteps: 3 }
      },
      never
    )
    expect(warm.tokens).toBeLessThanOrEqual(0.2 * scratchB.tokens + RECOVERY.batchSize)
    expect(warm.eval.fvu).toBeLessThanOrEqual(scratchB.eval.fvu)
    const before = matchDirections(planted, (await Sae.load(scratchA.dir)).weights.W_dec, 1024)
    const after = matchDirections(moved, (await Sae.load(warm.dir)).weights.W_dec, 1024)
    const tracked = before.filter((m, i) => m.cos >= 0.9 && after[i]!.row === m.row && after[i]!.cos >= 0.9).length
    expect(tracked / planted.N).toBeGreaterThanOrEqual(0.9)
    const cfg = JSON.parse(readFileSync(join(warm.dir, 'cfg.json'), 'utf8')) as { featuretrace: { warm_started_from: string } }
    expect(cfg.featuretrace.warm_started_from).toBe(scratchA.dir)
  }, 300_000)

  it.each(ENGINES)(
    'on %s, a run interrupted and resumed ends where an uninterrupted run ends',
    async (engine) => {
      const small = { ...RECOVERY, tokens: 40_960, checkpointEvery: 10, logEvery: 5 }
      const whole = await trainSae({ activations: fileA, out: join(t.dir, `whole-${engine}`), preset: 'gao2024', backend: engine, overrides: small }, never)
      const controller = new AbortController()
      let calls = 0
      const opts: TrainOptions = { activations: fileA, out: join(t.dir, `resumed-${engine}`), preset: 'gao2024', backend: engine, overrides: small }
      await expect(trainSae(opts, { signal: controller.signal, progress: () => ++calls === 7 && controller.abort() })).rejects.toThrow(/cancelled/)
      expect(existsSync(join(t.dir, `resumed-${engine}`, 'cfg.json'))).toBe(false)
      const partial = join(t.dir, `resumed-${engine}.partial`)
      expect(existsSync(join(partial, 'training_state.json'))).toBe(true)
      // A crash after the next save's tensors were written but before its manifest: the manifest still names the last
      // complete pair, and the stray file is not read.
      const manifest = JSON.parse(readFileSync(join(partial, 'training_state.json'), 'utf8')) as { step: number; tensorsFile: string }
      expect(manifest.tensorsFile).toBe(`training_state.step-${manifest.step}.safetensors`)
      writeFileSync(join(partial, `training_state.step-${manifest.step + 10}.safetensors`), 'not a safetensors file')
      const resumed = await trainSae(opts, never)
      expect(resumed.resumed).toBe(true)
      expect(resumed.steps).toBe(whole.steps)
      const a = await Sae.load(whole.dir)
      const b = await Sae.load(resumed.dir)
      for (const name of ['W_enc', 'W_dec', 'b_enc', 'b_dec'] as const) {
        let worst = 0
        for (let i = 0; i < a.weights[name].length; i++) worst = Math.max(worst, Math.abs(a.weights[name][i]! - b.weights[name][i]!))
        expect(worst, name).toBeLessThan(1e-5)
      }
    },
    120_000
  )

  it('refuses a damaged saved state by name instead of resuming from it or silently starting again', async () => {
    const small = { ...RECOVERY, tokens: 40_960, checkpointEvery: 10, logEvery: 5 }
    const controller = new AbortController()
    let calls = 0
    const opts: TrainOptions = { activations: fileA, out: join(t.dir, 'damaged'), preset: 'gao2024', overrides: small }
    await expect(trainSae(opts, { signal: controller.signal, progress: () => ++calls === 7 && controller.abort() })).rejects.toThrow(/cancelled/)
    const manifest = join(t.dir, 'damaged.partial', 'training_state.json')
    writeFileSync(manifest, readFileSync(manifest, 'utf8').slice(0, 40))
    await expect(trainSae(opts, never)).rejects.toThrow(/training_state\.json cannot be read .*Delete the folder/)
  }, 120_000)

  it('keeps the number of tensors flat over hundreds of steps', async () => {
    const counts: number[] = []
    await trainSae(
      {
        activations: fileA,
        out: join(t.dir, 'leak'),
        preset: 'gao2024',
        overrides: { ...RECOVERY, n: 256, tokens: 300 * 128, batchSize: 128, auxK: 32, deadAfterTokens: 1000, logEvery: 25 },
        onMetric: () => counts.push(tf.memory().numTensors)
      },
      never
    )
    expect(counts.length).toBeGreaterThanOrEqual(12)
    expect(new Set(counts.slice(1)).size).toBe(1)
  }, 120_000)
})

describe('training refuses bad input clearly, leaving nothing that looks like an SAE', () => {
  async function refuses(opts: Partial<TrainOptions>, message: RegExp): Promise<void> {
    const out = opts.out ?? join(t.dir, `bad-${Math.random().toString(36).slice(2)}`)
    await expect(trainSae({ activations: fileA, out, preset: 'gao2024', overrides: { ...RECOVERY, tokens: 1024 }, ...opts }, never)).rejects.toThrow(message)
    expect(existsSync(join(out, 'cfg.json'))).toBe(false)
  }

  it('empty activations', async () => {
    const file = join(t.dir, 'empty.safetensors')
    await writeSafetensors(file, { activations: { dtype: 'F32', shape: [0, 64], data: new Float32Array(0) } })
    await refuses({ activations: file }, /empty\.safetensors: "activations" is empty/)
  })

  it('NaN in the activations', async () => {
    const x = new Float32Array(2000 * 8).fill(0.5)
    x[1234] = NaN
    const file = join(t.dir, 'nan.safetensors')
    await writeSafetensors(file, { activations: { dtype: 'F32', shape: [2000, 8], data: x } })
    await refuses({ activations: file, overrides: { n: 16, k: 2, batchSize: 64, tokens: 256 } }, /nan\.safetensors: activations contain NaN at row 154/)
  })

  it('k larger than n', async () => {
    await refuses({ overrides: { ...RECOVERY, n: 16, k: 32 } }, /k = 32 is larger than the number of latents n = 16/)
  })

  it('d mismatch with --init', async () => {
    const x = new Float32Array(1000 * 32).map((_, i) => Math.sin(i))
    const file = join(t.dir, 'd32.safetensors')
    await writeSafetensors(file, { activations: { dtype: 'F32', shape: [1000, 32], data: x } })
    await refuses({ activations: file, init: scratchA.dir }, /--init .*sae-a was trained on d=64 activations but .*d32\.safetensors has d=32/)
  })

  it('an unwritable output folder', async () => {
    const locked = join(t.dir, 'locked')
    mkdirSync(locked)
    chmodSync(locked, 0o500)
    const canWrite = ((): boolean => {
      try {
        writeFileSync(join(locked, 'probe'), '')
        return true
      } catch {
        return false
      }
    })()
    // Root ignores directory permissions; a path under a file is unwritable for everyone.
    const file = join(t.dir, 'a-file')
    writeFileSync(file, '')
    await refuses({ out: join(canWrite ? file : locked, 'sae') }, /Cannot write the SAE to .*Choose a writable output folder/)
    chmodSync(locked, 0o700)
  })

  it('a batch too large for memory', async () => {
    await refuses(
      { overrides: { ...RECOVERY, n: 65536, batchSize: 65536 } },
      /Batch 65536 with n = 65536 latents needs about [\d.]+ GiB, more than .*Lower --batch \(about \d+ fits\)/
    )
  })
})

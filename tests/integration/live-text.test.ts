// Live text equals the harvest-and-encode path: the same text harvested by harvest.ts into an f32 store (one
// window: --context covers it) and its stored rows encoded by the Sae and, independently, by numpy's SAELens
// encode (make_sae_fixtures.py --reference), for our TopK SAE and an imported SAELens JumpReLU SAE.
import * as tf from '@tensorflow/tfjs-core'
import { cpSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LIVE_TEXT_MAX_TOKENS, LIVE_TEXT_TOP_FEATURES, type LiveTextResult } from '../../src/shared/api'
import { LoadedModels, liveTextStatus } from '../../src/core/analysis/live-text'
import { queryInProcess } from '../../src/core/analysis/queries'
import { importFeatureSet } from '../../src/core/analysis/import-features'
import { discoverCheckpoints } from '../../src/core/checkpoints/discover'
import { ActivationStore } from '../../src/core/io/activation-store'
import { writeSafetensors } from '../../src/core/io/safetensors'
import { harvest } from '../../src/core/lm/harvest'
import { Project } from '../../src/core/project'
import { Rng } from '../../src/core/random'
import { importSaes } from '../../src/core/sae/import'
import { Sae } from '../../src/core/sae/sae'
import { initBackend } from '../../src/core/tf/backend'
import { pythonReference } from '../fixtures/sae-fixtures'
import { tinyModels } from '../fixtures/tiny-models'
import { tempDir } from '../helpers'

const never = { signal: new AbortController().signal, progress: () => {} }
const TEXT = 'The cat sat on the mat. 東京は日本の首都です。 Language models learn features during training, step by step.'
const D = 64
const N = 96
const STEP = 100
const LAYER = 2
/** Live and stored-row latents agree to this, relative to the token's largest latent (the store is f32). */
const TOL = 1e-4

function gaussians(rng: Rng, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.gaussian() * scale)
}

/** Latents [rows][n] of the stored rows of the harvested text: the Sae's encode and numpy's SAELens encode. */
async function references(store: string, saeDir: string, scratch: string): Promise<{ ids: number[]; ours: Float32Array; numpy: number[][] }> {
  const s = await ActivationStore.open(store)
  const { acts, token, position } = await s.readShard(0)
  expect(s.manifest.shards).toHaveLength(1)
  // One window, in order: position i is the text's token i.
  expect(Array.from(position)).toEqual(Array.from({ length: s.rows }, (_, i) => i))
  const sae = await Sae.load(saeDir)
  const ours = await sae.dense(acts, s.rows)
  sae.dispose()
  const rows = Array.from({ length: s.rows }, (_, r) => Array.from(acts.subarray(r * D, (r + 1) * D)))
  return { ids: Array.from(token), ours, numpy: pythonReference('saelens', saeDir, rows, scratch) }
}

/** Checks every token's feature activation and top-feature list against dense reference latents. */
function expectMatches(live: LiveTextResult, dense: (t: number, f: number) => number, n: number): void {
  for (let t = 0; t < live.ids.length; t++) {
    const row = Array.from({ length: n }, (_, f) => dense(t, f))
    const scale = Math.max(1, ...row)
    expect(Math.abs(live.acts[t]! - row[live.feature]!)).toBeLessThanOrEqual(TOL * scale)
    const expected = row
      .map((act, feature) => ({ feature, act }))
      .filter((x) => x.act > 0)
      .sort((a, b) => b.act - a.act)
      .slice(0, LIVE_TEXT_TOP_FEATURES)
    expect(live.top[t]!.map((x) => x.feature)).toEqual(expected.map((x) => x.feature))
    live.top[t]!.forEach((x, i) => expect(Math.abs(x.act - expected[i]!.act)).toBeLessThanOrEqual(TOL * scale))
  }
}

/** The feature that fires on most tokens of the reference (so the comparison sees it fire and not fire). */
function busiest(dense: (t: number, f: number) => number, rows: number, n: number): number {
  let best = 0
  let bestCount = -1
  for (let f = 0; f < n; f++) {
    let c = 0
    for (let t = 0; t < rows; t++) if (dense(t, f) > 0) c++
    if (c > bestCount && c < rows) [best, bestCount] = [f, c]
  }
  expect(bestCount).toBeGreaterThan(1)
  return best
}

describe.each(['llama-gqa-tied', 'gpt_neox'])('live text on %s', (name) => {
  let t: ReturnType<typeof tempDir>
  let project: Project
  let store: string
  const models = new LoadedModels()

  beforeAll(async () => {
    await initBackend('cpu')
    t = tempDir()
    const series = join(t.dir, 'series')
    cpSync(join(tinyModels(), 'models', name), join(series, `step${STEP}`), { recursive: true })
    const corpus = join(t.dir, 'text.jsonl')
    writeFileSync(corpus, JSON.stringify({ text: TEXT, lang: 'en' }) + '\n')
    store = join(t.dir, 'store')
    // The existing harvest, one window of the whole text, f32.
    await harvest({ model: join(series, `step${STEP}`), corpus, layers: [LAYER], out: () => store, context: 256, dtype: 'f32' }, never)
    project = Project.open(join(t.dir, 'project'))
    project.checkpoints.addAll(discoverCheckpoints(series).found, undefined)
  }, 120_000)
  afterAll(async () => {
    await models.dispose()
    project.close()
    t.cleanup()
  })

  function recordSet(saeId: number): number {
    const checkpointId = project.checkpoints.list()[0]!.id
    return project.features.writeSaeSet({ name: `sae ${saeId}`, saeId, checkpointId, layer: LAYER }, [], []).id
  }

  it('our TopK SAE: equals the harvested store encoded by the Sae and by numpy (≤ 1e-4 of the largest latent)', async () => {
    const rng = new Rng(7)
    const dir = join(t.dir, 'sae-topk')
    mkdirSync(dir)
    const sae = new Sae({
      d: D,
      n: N,
      rule: { architecture: 'topk', k: 8, applyBDecToInput: true, scaling: { kind: 'unit_norm', factor: 1 } },
      weights: {
        W_enc: gaussians(rng, D * N, 0.3),
        W_dec: gaussians(rng, N * D, 0.1),
        b_enc: gaussians(rng, N, 0.05),
        b_dec: gaussians(rng, D, 0.05),
        threshold: null
      },
      sparsity: null
    })
    await sae.save(dir, { meta: { layer: LAYER }, modelName: null, contextSize: 256, datasetPath: null, prependBos: null })
    const checkpointId = project.checkpoints.list()[0]!.id
    const info = project.saes.upsert({
      checkpointId,
      layer: LAYER,
      path: dir,
      preset: 'test',
      d: D,
      n: N,
      k: 8,
      warmStarted: false,
      tokens: 0,
      steps: 0,
      fvu: null,
      explainedVariance: null,
      cosine: null,
      l0: null,
      deadFraction: null,
      backend: null
    })
    const setId = recordSet(info.id)
    expect(liveTextStatus(project, setId)).toMatchObject({
      available: true,
      reason: null,
      step: STEP,
      layer: LAYER,
      harvestContext: null,
      maxTokens: LIVE_TEXT_MAX_TOKENS
    })

    const ref = await references(store, dir, t.dir)
    const fromSae = (r: number, f: number): number => ref.ours[r * N + f]!
    const feature = busiest(fromSae, ref.ids.length, N)
    const live = await queryInProcess(project, 'liveText.run', { setId, feature, text: TEXT }, never.signal, models)
    expect(live).toMatchObject({ setId, feature, step: STEP, layer: LAYER, architecture: 'topk', bos: name.startsWith('llama') })
    // The tokens a harvest stores, one for one (BOS dropped, as there).
    expect(live.ids).toEqual(ref.ids)
    expect(live.tokens).toHaveLength(live.ids.length)
    expectMatches(live, fromSae, N)
    expectMatches(live, (r, f) => ref.numpy[r]![f]!, N)
    expect(live.top.every((x) => x.length === 8)).toBe(true)
  })

  it('an imported SAELens JumpReLU SAE (layer-norm input, no b_dec subtraction): equals the harvested store encoded by the Sae and by numpy', async () => {
    const rng = new Rng(11)
    const src = join(t.dir, 'saelens-jumprelu')
    mkdirSync(src)
    const threshold = Float32Array.from({ length: N }, () => 0.2 + 0.8 * rng.next())
    await writeSafetensors(join(src, 'sae_weights.safetensors'), {
      W_enc: { dtype: 'F32', shape: [D, N], data: gaussians(rng, D * N, 1 / Math.sqrt(D)) },
      W_dec: { dtype: 'F32', shape: [N, D], data: gaussians(rng, N * D, 0.1) },
      b_enc: { dtype: 'F32', shape: [N], data: gaussians(rng, N, 0.1) },
      b_dec: { dtype: 'F32', shape: [D], data: gaussians(rng, D, 0.1) },
      threshold: { dtype: 'F32', shape: [N], data: threshold }
    })
    const cfg = {
      architecture: 'jumprelu',
      d_in: D,
      d_sae: N,
      dtype: 'float32',
      device: 'cpu',
      apply_b_dec_to_input: false,
      normalize_activations: 'layer_norm',
      reshape_activations: 'none',
      metadata: { model_name: 'tiny', hook_name: `blocks.${LAYER - 1}.hook_resid_post`, hook_head_index: null, prepend_bos: true, sae_lens_version: '6.12.1' }
    }
    writeFileSync(join(src, 'cfg.json'), JSON.stringify(cfg))
    // The real import (copied into the project, recorded at the step and the hook's layer).
    const [info] = await importSaes(project, { path: src, step: STEP, replace: true })
    expect(info).toMatchObject({ layer: LAYER, step: STEP, d: D, n: N })
    const setId = recordSet(info!.id)

    const ref = await references(store, info!.path, t.dir)
    const fromSae = (r: number, f: number): number => ref.ours[r * N + f]!
    const feature = busiest(fromSae, ref.ids.length, N)
    const live = await queryInProcess(project, 'liveText.run', { setId, feature, text: TEXT }, never.signal, models)
    expect(live.architecture).toBe('jumprelu')
    expect(live.ids).toEqual(ref.ids)
    expectMatches(live, fromSae, N)
    expectMatches(live, (r, f) => ref.numpy[r]![f]!, N)
    // A JumpReLU code is as wide as the latents that fire: more than a TopK's k at some token here.
    expect(Math.max(...live.top.map((x) => x.length))).toBe(LIVE_TEXT_TOP_FEATURES)
  })

  it('keeps the model loaded: a second request is answered from the cache with the same numbers', async () => {
    const setId = project.features.sets()[0]!.id
    const first = await queryInProcess(project, 'liveText.run', { setId, feature: 3, text: TEXT }, never.signal, models)
    const second = await queryInProcess(project, 'liveText.run', { setId, feature: 3, text: TEXT }, never.signal, models)
    expect(first.modelCached).toBe(true)
    expect(second.modelCached).toBe(true)
    expect(second.acts).toEqual(first.acts)
    console.log(`${name}: live text of ${first.ids.length} tokens, cached model: ${second.ms.toFixed(1)} ms`)
  })
})

describe('live text refusals and the cache bound', () => {
  let t: ReturnType<typeof tempDir>
  beforeAll(async () => {
    await initBackend('cpu')
    t = tempDir()
  })
  afterAll(() => t.cleanup())

  it('refuses text beyond the cap, an SAE-only checkpoint and an imported set with messages that say what to do; frees evicted models', async () => {
    const series = join(t.dir, 'series')
    for (const s of [1, 2, 3]) cpSync(join(tinyModels(), 'models', 'gpt2'), join(series, `step${s}`), { recursive: true })
    const project = Project.open(join(t.dir, 'project'))
    const models = new LoadedModels({ models: 2, saes: 2 })
    try {
      project.checkpoints.addAll(discoverCheckpoints(series).found, undefined)
      const rng = new Rng(3)
      const sae = new Sae({
        d: D,
        n: 32,
        rule: { architecture: 'topk', k: 4, applyBDecToInput: true, scaling: { kind: 'none', factor: 1 } },
        weights: {
          W_enc: gaussians(rng, D * 32, 0.3),
          W_dec: gaussians(rng, 32 * D, 0.1),
          b_enc: new Float32Array(32),
          b_dec: new Float32Array(D),
          threshold: null
        },
        sparsity: null
      })
      const dir = join(t.dir, 'sae')
      mkdirSync(dir)
      await sae.save(dir, { meta: { layer: 1 }, modelName: null, contextSize: 64, datasetPath: null, prependBos: null })
      const sets = project.checkpoints.list().map((c) => {
        const info = project.saes.upsert({
          checkpointId: c.id,
          layer: 1,
          path: dir,
          preset: 'test',
          d: D,
          n: 32,
          k: 4,
          warmStarted: false,
          tokens: 0,
          steps: 0,
          fvu: null,
          explainedVariance: null,
          cosine: null,
          l0: null,
          deadFraction: null,
          backend: null
        })
        return project.features.writeSaeSet({ name: `step ${c.step}`, saeId: info.id, checkpointId: c.id, layer: 1 }, [], []).id
      })
      const run = (setId: number, text: string): Promise<LiveTextResult> =>
        queryInProcess(project, 'liveText.run', { setId, feature: 0, text }, never.signal, models)

      const long = Array.from({ length: 700 }, (_, i) => `word${i}`).join(' ')
      // The cap is LIVE_TEXT_MAX_TOKENS or the model's positions, whichever is less (the tiny GPT-2 has 128).
      expect(LIVE_TEXT_MAX_TOKENS).toBe(512)
      expect(liveTextStatus(project, sets[0]!).maxTokens).toBe(128)
      await expect(run(sets[0]!, long)).rejects.toThrow(
        /^The text is [\d,]+ tokens; live text runs at most 128 tokens at once \(the model's 128 positions\)\. Shorten it and run again\.$/
      )
      await expect(run(sets[0]!, 'x')).resolves.toMatchObject({ modelCached: true })

      // Three checkpoints through a cache of two: the first is released, its tensors freed.
      const before = tf.memory().numTensors
      await run(sets[1]!, 'hello there')
      const withTwo = tf.memory().numTensors
      expect(withTwo).toBeGreaterThan(before)
      await run(sets[2]!, 'hello there')
      expect(models.size.models).toBe(2)
      expect(tf.memory().numTensors).toBe(withTwo)
      expect((await run(sets[0]!, 'hello')).modelCached).toBe(false)
      await models.dispose()
      expect(models.size).toEqual({ models: 0, saes: 0 })

      // An SAE-only checkpoint: the status and the run say live text needs the checkpoint's weights.
      const weightless = project.checkpoints.addWeightless(9, D, { test: true })
      const info = project.saes.upsert({ ...project.saes.get(1)!, checkpointId: weightless.id })
      const onlySet = project.features.writeSaeSet({ name: 'sae-only', saeId: info.id, checkpointId: weightless.id, layer: 1 }, [], []).id
      const status = liveTextStatus(project, onlySet)
      expect(status.available).toBe(false)
      expect(status.reason).toMatch(/Step 9 is an SAE-only checkpoint .*live text .*needs the model\. Register the checkpoint folder/)
      await expect(run(onlySet, 'hello')).rejects.toThrow(/SAE-only checkpoint/)

      // A feature set imported from a file has no SAE to run.
      const file = join(t.dir, 'features.jsonl')
      writeFileSync(file, JSON.stringify({ checkpoint: '1', feature: 0, examples: [{ tokens: [' a', ' b'], acts: [0, 1] }] }) + '\n')
      const [imported] = importFeatureSet(project, file, 'from a file')
      expect(liveTextStatus(project, imported!.id)).toMatchObject({
        available: false,
        reason: expect.stringMatching(/is an imported feature set: .*live text needs the SAE/)
      })
      await expect(run(imported!.id, 'hello')).rejects.toThrow(/is an imported feature set/)
    } finally {
      await models.dispose()
      project.close()
    }
  })
})

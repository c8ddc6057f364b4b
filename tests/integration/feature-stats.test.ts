// Feature statistics from a real harvested store and a trained SAE, checked against direct computation.
import { cpSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { computeFeatureStats } from '../../src/core/analysis/feature-stats'
import { ActivationStore } from '../../src/core/io/activation-store'
import { harvest } from '../../src/core/lm/harvest'
import { Sae } from '../../src/core/sae/sae'
import { trainSae } from '../../src/core/sae/train'
import { tryOrt } from '../../src/core/ort/engine'
import { initBackend } from '../../src/core/tf/backend'
import type { FeatureStatsResult } from '../../src/core/analysis/feature-stats'
import { execFileSync } from 'node:child_process'
import { CheckpointFolder } from '../../src/core/lm/checkpoint'
import { PYTHON, tinyModels } from '../fixtures/tiny-models'
import { REPO, tempDir } from '../helpers'

const never = { signal: new AbortController().signal, progress: () => {} }

describe('feature statistics', () => {
  let t: ReturnType<typeof tempDir>
  let store: string
  let sae: string
  beforeAll(async () => {
    await initBackend('wasm')
    t = tempDir()
    const root = tinyModels()
    cpSync(join(root, 'models', 'llama-gqa-tied'), join(t.dir, 'model'), { recursive: true })
    const docs = [
      'The cat sat on the mat. The dog sat on the log. Language models learn features during training.',
      '東京は日本の首都です。猫はマットの上に座った。言語モデルは訓練の間に特徴を学習します。',
      'Tokyo is the capital of Japan. 日本語と英語の両方を話すモデル。The model speaks English and Japanese.'
    ]
    const tags = ['en', 'ja', undefined]
    writeFileSync(
      join(t.dir, 'c.jsonl'),
      Array.from({ length: 30 }, (_, i) => JSON.stringify({ text: `${i} ${docs[i % 3]}`, lang: tags[i % 3] })).join('\n') + '\n'
    )
    store = join(t.dir, 'acts')
    await harvest(
      { model: join(t.dir, 'model'), corpus: join(t.dir, 'c.jsonl'), layers: [2], out: () => store, context: 16, dtype: 'f32', shardRows: 300 },
      never
    )
    sae = (
      await trainSae(
        { activations: store, out: join(t.dir, 'sae'), preset: 'inaba2025', overrides: { n: 96, k: 6, batchSize: 64, tokens: 20_000, warmupSteps: 10 } },
        never
      )
    ).dir
  }, 120_000)

  it('matches a direct computation and keeps each sampler to its definition', async () => {
    const r = await computeFeatureStats({ sae, activations: store, paperExamples: 5, topN: 4, rows: 'all' }, never)
    const s = await ActivationStore.open(store)
    expect(r.rows).toBe(s.rows)
    expect(r.features).toHaveLength(96)
    // Direct computation in plain loops: the unit norm as the file states it (constant_norm_rescale: x·√d/‖x‖), pre-activations, top-k, per-feature stats.
    const w = (await Sae.load(sae)).weights
    const d = 64
    const n = 96
    const count = new Float64Array(n)
    const max = new Float64Array(n)
    for (let sh = 0; sh < s.manifest.shards.length; sh++) {
      const { acts } = await s.readShard(sh)
      for (let row = 0; row < acts.length / d; row++) {
        const x = acts.subarray(row * d, (row + 1) * d)
        const norm = Math.hypot(...x)
        const pre = Array.from({ length: n }, (_, j) => {
          let a = w.b_enc[j]!
          for (let i = 0; i < d; i++) a += ((x[i]! * Math.sqrt(d)) / norm - w.b_dec[i]!) * w.W_enc[i * n + j]!
          return a
        })
        const order = pre
          .map((a, j) => [a, j] as const)
          .sort((a, b) => b[0] - a[0])
          .slice(0, 6)
        for (const [a, j] of order) {
          if (a <= 0) continue
          count[j]!++
          max[j] = Math.max(max[j]!, a)
        }
      }
    }
    for (const f of r.features) {
      expect(f.density!, `density of ${f.feature}`).toBeCloseTo(count[f.feature]! / s.rows, 4)
      expect(f.maxAct!, `max of ${f.feature}`).toBeCloseTo(max[f.feature]!, 3)
      expect(f.dead).toBe(count[f.feature] === 0)
      if (f.dead) continue
      const paper = f.examples.filter((e) => e.sampler === 'paper')
      const top = f.examples.filter((e) => e.sampler === 'top')
      expect(paper.length).toBeLessThanOrEqual(5)
      expect(top.length).toBeLessThanOrEqual(4)
      for (const e of paper) expect(Math.max(...e.acts)).toBeGreaterThan(0.7 * f.maxAct! - 1e-3)
      const peaks = top.map((e) => Math.max(...e.acts))
      expect(peaks).toEqual([...peaks].sort((a, b) => b - a))
      expect(peaks[0]!).toBeCloseTo(f.maxAct!, 2)
      const hist = f.histogram!
      expect(Array.from(hist.slice(2)).reduce((a, b) => a + b, 0)).toBe(count[f.feature])
      expect(f.neighbours).toHaveLength(10)
      expect(f.neighbours.every((x) => x.feature !== f.feature)).toBe(true)
      expect(['en', 'ja', 'mix']).toContain(f.langClass)
    }
    // Neighbours are the highest decoder cosines.
    const unit = (i: number): number[] => {
      const row = Array.from(w.W_dec.subarray(i * d, (i + 1) * d))
      const len = Math.hypot(...row)
      return row.map((v) => v / len)
    }
    const f0 = r.features[0]!
    const cos = Array.from({ length: n }, (_, j) => (j === 0 ? -Infinity : unit(0).reduce((a, v, i) => a + v * unit(j)[i]!, 0)))
    const best = cos
      .map((c, j) => [c, j] as const)
      .sort((a, b) => b[0] - a[0])
      .slice(0, 10)
    expect(f0.neighbours.map((x) => x.feature)).toEqual(best.map(([, j]) => j))
    expect(f0.neighbours[0]!.cosine).toBeCloseTo(best[0]![0], 4)
  }, 120_000)

  it('reads languages by script or by the corpus tags when asked, with a configurable threshold', async () => {
    const tags = await computeFeatureStats({ sae, activations: store, language: { rule: 'tags' }, languageThreshold: 0.6 }, never)
    for (const f of tags.features.filter((x) => !x.dead && x.langCounts)) {
      expect(Object.keys(f.langCounts!).every((k) => k === 'en' || k === 'ja')).toBe(true)
      const total = Object.values(f.langCounts!).reduce((a, b) => a + b, 0)
      if (f.langClass !== 'mix') expect(f.langCounts![f.langClass!]! / total).toBeGreaterThan(0.6)
    }
    const scripts = await computeFeatureStats(
      { sae, activations: store, language: { rule: 'script', scripts: { en: ['Latin'], ja: ['Hiragana', 'Katakana', 'Han'] } } },
      never
    )
    expect(scripts.features.some((f) => f.langCounts && 'other' in f.langCounts)).toBe(true)
  }, 120_000)

  it('by default uses only the held-out context windows: every 10th, which training never saw', async () => {
    const { heldOutMasks, HELD_OUT_EVERY } = await import('../../src/core/io/activation-store')
    const s = await ActivationStore.open(store)
    const masks = await heldOutMasks(s)
    const held = masks.reduce((a, m) => a + m.reduce((x, y) => x + y, 0), 0)
    const r = await computeFeatureStats({ sae, activations: store }, never)
    expect(r.heldOutOnly).toBe(true)
    expect(r.rows).toBe(held)
    expect(held).toBeGreaterThan(0)
    expect(held).toBeLessThan(s.rows / (HELD_OUT_EVERY / 2))
    expect(r.sequences).toBeGreaterThan(0)
    // Every example is a held-out window: its tokens are those of a held-out sequence.
    const heldTexts = new Set<string>()
    for (let i = 0; i < s.manifest.shards.length; i++) {
      const { token, doc, position } = await s.readTokenTable(i)
      const { sequencesOf } = await import('../../src/core/io/activation-store')
      for (const q of sequencesOf(doc, position, s.manifest.context)) {
        if (masks[i]![q.start] === 1)
          heldTexts.add(
            Array.from(token.subarray(q.start, q.start + q.length))
              .map((x) => s.tokenText(x))
              .join('|')
          )
      }
    }
    for (const f of r.features) for (const e of f.examples) expect(heldTexts.has(e.tokens.map((x) => r.tokens[x]).join('|'))).toBe(true)
  }, 120_000)

  it('stores logit effects through the checkpoint’s head in residual units, and neighbours by activation correlation', async () => {
    const model = join(t.dir, 'model')
    const r = await computeFeatureStats({ sae, activations: store, paperExamples: 5, topN: 4, rows: 'all', checkpoint: model }, never)
    // The SAE encodes x·√d/‖x‖ (constant_norm_rescale): one unit of its output is ‖x‖/√d residual units, here the mean over the rows read.
    const s = await ActivationStore.open(store)
    const d = 64
    let norms = 0
    for (let sh = 0; sh < s.manifest.shards.length; sh++) {
      const { acts } = await s.readShard(sh)
      for (let row = 0; row < acts.length / d; row++) norms += Math.hypot(...acts.subarray(row * d, (row + 1) * d))
    }
    const scale = norms / s.rows / Math.sqrt(d)
    expect(r.logitNote).toContain(`W_dec[i] × ${scale.toPrecision(4)}`)
    expect(r.logitNote).toMatch(/γ \(model\.norm\.weight\) · W_Uᵀ \(model\.embed_tokens\.weight, tied to the token embedding\)/)
    const w = (await Sae.load(sae)).weights
    const rows = [0, 1, 2, 3].map((i) => Array.from(w.W_dec.subarray(i * d, (i + 1) * d)))
    const ref = JSON.parse(
      execFileSync(PYTHON, [join(REPO, 'tests/fixtures/logit_effects_ref.py')], {
        input: JSON.stringify({ kind: 'logit', model, w_dec: rows, scale, bins: 40 })
      }).toString()
    ) as { effects: number[][] }
    const tokenizer = CheckpointFolder.open(model).tokenizer()
    for (let i = 0; i < 4; i++) {
      const e = ref.effects[i]!
      const best = e.map((v, j) => [v, j] as const).sort((a, b) => b[0] - a[0])
      const got = r.features[i]!.logitEffects!
      expect(got.positive.map((x) => x.token)).toEqual(best.slice(0, 10).map(([, j]) => j))
      expect(got.negative.map((x) => x.token)).toEqual(
        best
          .slice(-10)
          .reverse()
          .map(([, j]) => j)
      )
      for (const x of [...got.positive, ...got.negative]) {
        expect(x.value).toBeCloseTo(e[x.token]!, 4)
        expect(r.tokens[x.text]).toBe(tokenizer.tokenText(x.token))
      }
      expect(Array.from(got.histogram.counts).reduce((a, b) => a + b, 0)).toBe(e.length)
    }
    // Correlation neighbours: other latents, positive r, best first; a dead latent has none.
    for (const f of r.features) {
      const c = f.correlations!
      expect(c.every((x, q) => x.feature !== f.feature && x.r > 0 && x.r <= 1 + 1e-9 && (q === 0 || c[q - 1]!.r >= x.r))).toBe(true)
      if (f.dead) expect(c).toEqual([])
    }
    expect(r.features.filter((f) => f.correlations!.length === 10).length).toBeGreaterThan(10)
    // An SAE-only checkpoint has no head: the statistics stand, with a note.
    const only = await computeFeatureStats({ sae, activations: store, maxRows: 200, checkpoint: null }, never)
    expect(only.logitNote).toMatch(/SAE-only checkpoint .* has no head/)
    expect(only.features.every((f) => f.logitEffects === null)).toBe(true)
  }, 120_000)

  it('gives the same statistics on the ort engine (onnxruntime encoding, decoder neighbours and logit effects) as on wasm', async (test) => {
    const why = await tryOrt()
    if (why !== null) test.skip(`onnxruntime cannot load here: ${why}`)
    const model = join(t.dir, 'model')
    // The trained SAE (TopK, x·√d/‖x‖, b_dec subtracted: encoded on onnxruntime after tfjs scales the rows), the
    // same weights as a TopK SAE on raw rows without b_dec (onnxruntime with a zero b_dec) and as a JumpReLU
    // SAE (its rule has no ort graph: tfjs on both engines).
    const trained = await Sae.load(sae)
    const variants: [string, string][] = [['topk, norm_rescale', sae]]
    const w = trained.weights
    const plain = new Sae({
      d: trained.d,
      n: trained.n,
      rule: { architecture: 'topk', k: trained.rule.k, applyBDecToInput: false, scaling: { kind: 'none', factor: 1 } },
      weights: w,
      sparsity: null
    })
    mkdirSync(join(t.dir, 'sae-plain'))
    await plain.save(join(t.dir, 'sae-plain'), trained.savedOptions())
    variants.push(['topk, raw rows, no b_dec', join(t.dir, 'sae-plain')])
    const jump = new Sae({
      d: trained.d,
      n: trained.n,
      rule: { architecture: 'jumprelu', k: null, applyBDecToInput: true, scaling: trained.rule.scaling },
      weights: { ...w, threshold: new Float32Array(trained.n).fill(0.05) },
      sparsity: null
    })
    mkdirSync(join(t.dir, 'sae-jump'))
    await jump.save(join(t.dir, 'sae-jump'), trained.savedOptions())
    variants.push(['jumprelu', join(t.dir, 'sae-jump')])
    for (const [label, dir] of variants) {
      const opts = { sae: dir, activations: store, paperExamples: 5, topN: 4, checkpoint: model }
      const runs: Record<'wasm' | 'ort', FeatureStatsResult> = {} as Record<'wasm' | 'ort', FeatureStatsResult>
      for (const engine of ['wasm', 'ort'] as const) {
        expect((await initBackend(engine)).name).toBe(engine)
        runs[engine] = await computeFeatureStats(opts, never)
      }
      await initBackend('wasm')
      const [a, b] = [runs.wasm, runs.ort]
      expect(b.rows, label).toBe(a.rows)
      expect(b.logitNote, label).toBe(a.logitNote)
      expect(a.features.filter((f) => !f.dead).length, label).toBeGreaterThan(10)
      const actTol = 1e-5 * Math.max(...a.features.map((f) => f.maxAct ?? 0))
      const logitTol = 1e-5 * Math.max(...a.features.flatMap((f) => [...f.logitEffects!.positive, ...f.logitEffects!.negative].map((x) => Math.abs(x.value))))
      const texts = (r: FeatureStatsResult, ids: number[]): string => ids.map((x) => r.tokens[x]).join('|')
      for (let f = 0; f < a.features.length; f++) {
        const [fa, fb] = [a.features[f]!, b.features[f]!]
        const where = `${label}, feature ${f}`
        expect(fb.density, where).toBe(fa.density)
        expect(Math.abs(fb.maxAct! - fa.maxAct!), where).toBeLessThanOrEqual(actTol)
        if (fa.meanAct === null) expect(fb.meanAct, where).toBeNull()
        else expect(Math.abs(fb.meanAct! - fa.meanAct), where).toBeLessThanOrEqual(actTol)
        // Every example (paper, top, interval samplers) is the same context in the same place, with the same activations.
        expect(
          fb.examples.map((e) => `${e.sampler} ${texts(b, e.tokens)}`),
          where
        ).toEqual(fa.examples.map((e) => `${e.sampler} ${texts(a, e.tokens)}`))
        fa.examples.forEach((e, q) => e.acts.forEach((x, j) => expect(Math.abs(fb.examples[q]!.acts[j]! - x), where).toBeLessThanOrEqual(actTol)))
        for (const side of ['positive', 'negative'] as const) {
          const [la, lb] = [fa.logitEffects![side], fb.logitEffects![side]]
          expect(
            lb.map((x) => x.token),
            `${where}, ${side}`
          ).toEqual(la.map((x) => x.token))
          la.forEach((x, q) => expect(Math.abs(lb[q]!.value - x.value), `${where}, ${side}`).toBeLessThanOrEqual(logitTol))
        }
        // The decoder-cosine neighbours (onnxruntime's MatMul + TopK under ort): the same features, cosines within 1e-5.
        expect(
          fb.neighbours.map((x) => x.feature),
          `${where}, neighbours`
        ).toEqual(fa.neighbours.map((x) => x.feature))
        fa.neighbours.forEach((x, q) => expect(Math.abs(fb.neighbours[q]!.cosine - x.cosine), `${where}, neighbours`).toBeLessThanOrEqual(1e-5))
      }
    }
  }, 240_000)
})

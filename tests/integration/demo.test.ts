// The bundled demo series: its tokenizer equals SentencePiece's, its checkpoints load and predict the
// corpus, and the reduced demo pipeline (the same code as `featuretrace demo`) runs end to end, stores
// everything, is skipped on a second run, and writes its report.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Job } from '../../src/shared/api'
import { composition } from '../../src/core/analysis/composition'
import { demoDir, runDemo, SMALL_DEMO_SETTINGS } from '../../src/core/demo'
import { writeSeriesReport } from '../../src/cli/report/series-report'
import { nodeWorkerSpawner } from '../../src/core/jobs/spawn'
import { loadModel } from '../../src/core/lm/model'
import { CheckpointWeights } from '../../src/core/lm/weights'
import { loadTokenizer } from '../../src/core/lm/tokenizer'
import { readCorpus } from '../../src/core/lm/corpus'
import { callService, Workspace } from '../../src/core/services'
import { initBackend } from '../../src/core/tf/backend'
import { BUILT_WORKER, tempDir } from '../helpers'

const demo = demoDir()
const steps = readdirSync(join(demo, 'checkpoints'))
  .filter((n) => /^step\d+$/.test(n))
  .map((n) => Number(n.slice(4)))
  .sort((a, b) => a - b)

describe('the demo series', () => {
  it('tokenizes exactly as SentencePiece did when it was trained', () => {
    const tok = loadTokenizer(join(demo, 'tokenizer'))
    const lines = readFileSync(join(demo, 'tokenizer/tokenizer-check.jsonl'), 'utf8').trim().split('\n')
    expect(lines.length).toBeGreaterThan(100)
    let tokens = 0
    for (const line of lines) {
      const { text, ids } = JSON.parse(line) as { text: string; ids: number[] }
      expect(tok.encode(text)).toEqual(ids)
      tokens += ids.length
    }
    expect(tokens).toBeGreaterThan(5000)
    expect(tok.bos).toBe(1)
  })

  it('has log-spaced checkpoints whose trained weights predict the corpus far better than the initialisation', async () => {
    await initBackend('wasm')
    expect(steps[0]).toBe(0)
    expect(steps.length).toBeGreaterThanOrEqual(5)
    const tok = loadTokenizer(join(demo, 'tokenizer'))
    const docs = readCorpus(join(demo, 'corpus.jsonl')).slice(0, 24)
    const ids = docs.map((d) => [1, ...tok.encode(d.text)].slice(0, 33)).filter((x) => x.length === 33)
    // Next-token loss through loadModel (the harvest path): final norm, then the tied embedding.
    const lossAt = async (step: number): Promise<number> => {
      const folder = join(demo, 'checkpoints', `step${step}`)
      const model = await loadModel(folder)
      const weights = await CheckpointWeights.open(folder)
      const embed = await weights.tensor('model.embed_tokens.weight', [1536, model.dModel])
      await weights.close()
      const input = tf.tensor2d(
        ids.map((s) => s.slice(0, 32)),
        [ids.length, 32],
        'int32'
      )
      const [h] = model.hiddenStates(input, [model.layers], { finalNorm: true })
      const loss = tf.tidy(() => {
        const logits = tf.matMul(tf.reshape(h!, [-1, model.dModel]), embed, false, true)
        const targets = tf.tensor1d(
          ids.flatMap((s) => s.slice(1)),
          'int32'
        )
        return -tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(targets, 1536)), -1)).dataSync()[0]!
      })
      tf.dispose([input, h!, embed])
      model.dispose()
      return loss
    }
    const initial = await lossAt(0)
    const final = await lossAt(steps.at(-1)!)
    expect(initial).toBeGreaterThan(Math.log(1536) - 0.5)
    expect(final).toBeLessThan(initial - 3)
  })
})

describe('the reduced demo pipeline', () => {
  let t: ReturnType<typeof tempDir>
  let ws: Workspace
  const ran: Job[] = []

  beforeAll(() => {
    t = tempDir('ft-demo-')
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    ws.open(join(t.dir, 'project'))
  })
  afterAll(() => {
    ws.close()
    t.cleanup()
  })

  it('registers, harvests, trains a warm-started series, computes features, languages and dynamics', async () => {
    const waitFor = async (job: Job): Promise<Job> => {
      const end = await ws.requireProject().jobs.waitFor(job.id)
      ran.push(end)
      return end
    }
    const stages = await runDemo(ws, { waitFor }, SMALL_DEMO_SETTINGS)
    expect(stages.map((s) => [s.name, s.ran])).toEqual([
      ['register', true],
      ['harvest', true],
      ['train-series', true],
      ['feature-stats', true],
      ['dynamics', true],
      ['evaluate', true]
    ])
    expect(ran.map((j) => j.state)).toEqual(['done', 'done', 'done', 'done', 'done'])
    // Every compute job chose its engine as the harvest did: a feature-statistics worker left to tfjs's default
    // once computed on the pure-JS cpu backend (and never reached onnxruntime).
    const harvestEngine = (ran.find((j) => j.kind === 'harvest')!.result as { backend: string }).backend.split(' ')[0]
    const statsJob = ran.find((j) => j.kind === 'feature-stats')!
    expect((statsJob.result as { backend?: string }).backend?.split(' ')[0]).toBe(harvestEngine)
    expect(harvestEngine).not.toBe('cpu')
    const { project } = ws.requireProject()
    expect(project.checkpoints.count()).toBe(steps.length)
    const saes = project.saes.list().sort((a, b) => a.step - b.step)
    expect(saes.map((s) => s.step)).toEqual([steps[0], steps[Math.round((steps.length - 1) / 2)], steps.at(-1)])
    expect(saes.map((s) => s.warmStarted)).toEqual([false, true, true])
    for (const s of saes) {
      expect(s.n).toBe(SMALL_DEMO_SETTINGS.n)
      expect(s.fvu).toBeGreaterThan(0)
      expect(s.fvu).toBeLessThan(1.5)
    }
    const sets = project.features.sets().filter((s) => s.layer === SMALL_DEMO_SETTINGS.layer)
    expect(sets).toHaveLength(3)
    const comp = composition(project)
    const last = comp.find((c) => c.step === steps.at(-1))!
    expect((last.languages.en ?? 0) + (last.languages.ja ?? 0) + (last.languages.mix ?? 0)).toBeGreaterThan(0)
    // Dynamics were stored for every latent, and the feature list sorts by them.
    const run = project.dynamics.run(SMALL_DEMO_SETTINGS.layer)!
    expect(run.n).toBe(SMALL_DEMO_SETTINGS.n)
    expect(run.warmStarted).toBe(true)
    const rows = project.dynamics.rows(SMALL_DEMO_SETTINGS.layer)
    expect(rows).toHaveLength(SMALL_DEMO_SETTINGS.n)
    const finalSet = sets.find((s) => s.step === steps.at(-1))!
    const byFormation = project.features.list({ setId: finalSet.id, sort: 'formation', limit: 5000 }).rows
    const formed = byFormation.filter((r) => r.formationStep !== null).map((r) => r.formationStep!)
    expect(formed).toEqual([...formed].sort((a, b) => a - b))
    expect(byFormation.slice(formed.length).every((r) => r.formationStep === null)).toBe(true)
    const byDrift = project.features.list({ setId: finalSet.id, sort: 'drift', descending: true, limit: 5000 }).rows.map((r) => r.totalDrift!)
    expect(byDrift).toEqual([...byDrift].sort((a, b) => b - a))
    expect(byDrift.every((d) => d >= 0 && d <= 2)).toBe(true)
    // Every SAE evaluated by splicing over the first evaluateTokens tokens of the harvest's windows.
    const evaluations = project.evaluations.list(SMALL_DEMO_SETTINGS.layer)
    expect(evaluations.map((e) => e.step)).toEqual(saes.map((s) => s.step))
    for (const e of evaluations) {
      expect(e.positions).toBe(SMALL_DEMO_SETTINGS.evaluateTokens)
      expect(e.tokens).toBeLessThan(e.positions)
      expect(e.ceSpliced).toBeGreaterThanOrEqual(e.ceClean - 0.05)
    }
    // The trained checkpoint: zeroing the stream costs much more than splicing the SAE in.
    const final = evaluations.at(-1)!
    expect(final.ceZero).toBeGreaterThan(final.ceSpliced)
    expect(final.lossRecovered).toBeGreaterThan(0.5)
  })

  it('finds everything done on a second run', async () => {
    const stages = await runDemo(ws, { waitFor: async (job) => ws.requireProject().jobs.waitFor(job.id) }, SMALL_DEMO_SETTINGS)
    expect(stages.every((s) => !s.ran)).toBe(true)
  })

  it('writes a report: JSON with the series and an HTML page with inline SVG charts', async () => {
    const r = await writeSeriesReport(ws, SMALL_DEMO_SETTINGS.layer, join(t.dir, 'report'))
    const json = JSON.parse(readFileSync(r.json, 'utf8')) as {
      checkpoints: { step: number; sae: { fvu: number } }[]
      drift: { histograms: number[][] }
      formation: { formed: number; never: number }
    }
    expect(json.checkpoints.map((c) => c.step)).toHaveLength(3)
    expect(json.checkpoints.every((c) => c.sae.fvu > 0)).toBe(true)
    expect(json.drift.histograms).toHaveLength(3)
    expect(json.drift.histograms[2]!.reduce((a, b) => a + b, 0)).toBe(SMALL_DEMO_SETTINGS.n)
    expect(json.formation.formed + json.formation.never).toBe(SMALL_DEMO_SETTINGS.n)
    const html = readFileSync(r.html, 'utf8')
    expect(html.match(/<svg/g)?.length).toBe(4)
    expect(html).not.toMatch(/<script/)
  })

  it('forms labelled features from the labels of every checkpoint of the warm-started series, by annotator or by majority', async () => {
    const { project } = ws.requireProject()
    const layer = SMALL_DEMO_SETTINGS.layer
    const [first, , last] = project.features
      .currentSets()
      .filter((s) => s.layer === layer)
      .sort((a, b) => a.step! - b.step!)
    const [token, synonymy, , uninterpretable] = project.taxonomy.names() as [string, string, string, string]
    project.labels.setLabel(first!.id, 3, 'ana', token)
    project.labels.setLabel(last!.id, 3, 'ana', uninterpretable) // ana's later label of feature 3 wins
    project.labels.setLabel(first!.id, 7, 'ana', token) // labelled at initialisation only
    project.labels.setLabel(last!.id, 7, 'ben', synonymy)
    project.labels.setLabel(last!.id, 9, 'ben', token)
    const formed = new Map(project.dynamics.rows(layer).map((r) => [r.feature, r.formationStep.sae === null ? 'never' : String(r.formationStep.sae)]))
    const tally = (pairs: [number, string][]): Record<string, Record<string, number>> => {
      const out: Record<string, Record<string, number>> = {}
      for (const [f, c] of pairs) (out[c] ??= {})[formed.get(f)!] = (out[c]?.[formed.get(f)!] ?? 0) + 1
      return out
    }
    const all = await callService(ws, 'dynamics.formationByLabel', { layer })
    expect(all).toMatchObject({
      labelledFeatures: 3,
      stored: true,
      warmStarted: true,
      annotator: null,
      annotators: ['ana', 'ben'],
      labelSteps: [first!.step, last!.step]
    })
    // Feature 7: one vote each, the tie goes to the first name in order.
    expect(all.counts).toEqual(
      tally([
        [3, uninterpretable],
        [7, synonymy < token ? synonymy : token],
        [9, token]
      ])
    )
    const ana = await callService(ws, 'dynamics.formationByLabel', { layer, threshold: 0.5, annotator: 'ana' })
    expect(ana).toMatchObject({ labelledFeatures: 2, annotator: 'ana', annotators: ['ana', 'ben'], labelSteps: [first!.step, last!.step] })
    expect(ana.counts).toEqual(
      tally([
        [3, uninterpretable],
        [7, token]
      ])
    )
    const ben = await callService(ws, 'dynamics.formationByLabel', { layer, threshold: 0.5, annotator: 'ben' })
    expect(ben).toMatchObject({ labelledFeatures: 2, labelSteps: [last!.step] })
  })
})

// `featuretrace evaluate` (SAE evaluation by splicing) against the independent float64 reference
// (tests/fixtures/evaluate_reference.py: make_tiny_models.py's PyTorch forward passes, the SAE as SAELens' forward,
// the windows read from a store FeatureTrace harvested with the same settings), on tiny models and the demo model.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Sae } from '../../src/core/sae/sae'
import { CLI, REPO, tempDir } from '../helpers'
import { PYTHON, tinyModels } from '../fixtures/tiny-models'

const REFERENCE = join(REPO, 'tests/fixtures/evaluate_reference.py')
const DEMO = join(REPO, 'resources/demo')
const KEYS = ['ce_clean', 'ce_spliced', 'ce_zero', 'loss_recovered', 'kl', 'fvu', 'explained_variance', 'tokens'] as const

type Report = Record<(typeof KEYS)[number] | 'l0' | 'positions' | 'windows', number>

function ft(...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`featuretrace ${args[0]} failed (${r.status}): ${r.stderr}`)
  return r.stdout
}

function ftFails(...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' })
  expect(r.status).toBe(2)
  return r.stderr
}

let t: ReturnType<typeof tempDir>
let root: string
let corpus: string
beforeAll(() => {
  t = tempDir('ft-evaluate-')
  root = tinyModels()
  corpus = join(t.dir, 'corpus.jsonl')
  const texts = [
    'The quick brown fox jumps over the lazy dog while the cat sleeps in the sun.',
    'Sparse autoencoders find features of language models during training, step after step.',
    '猫はフランスの首都です。東京の犬は学生です。The capital of Japan is a cat.',
    'In 2024 the lazy fox trained 154 models; each checkpoint kept its own features and labels.',
    'A feature forms early when the tokens it reads are frequent, and late when it reads concepts.',
    'Researchers label features by hand, one checkpoint at a time, and watch them drift.'
  ]
  writeFileSync(corpus, texts.map((text) => JSON.stringify({ text })).join('\n') + '\n')
})
afterAll(() => t.cleanup())

/** Harvests the windows as f32, runs `featuretrace evaluate` and the reference on them; both reports. */
function both(model: string, sae: string, layer: number, windows: string[]): { ours: Report; ref: Report } {
  const store = join(t.dir, `store-${Math.random().toString(36).slice(2)}`)
  ft('harvest', '--model', model, '--corpus', windows[0]!, '--layer', String(layer), '--out', store, '--dtype', 'f32', ...windows.slice(1))
  const out = join(t.dir, `eval-${Math.random().toString(36).slice(2)}.json`)
  ft('evaluate', '--model', model, '--sae', sae, '--layer', String(layer), '--corpus', windows[0]!, '--out', out, ...windows.slice(1))
  const ours = JSON.parse(readFileSync(out, 'utf8')) as Report
  const ref = JSON.parse(execFileSync(PYTHON, [REFERENCE, model, sae, store, String(layer)], { encoding: 'utf8', maxBuffer: 1 << 26 })) as Report
  return { ours, ref }
}

function expectAgreement(ours: Report, ref: Report): void {
  for (const k of KEYS) expect(ours, k).toHaveProperty(k)
  for (const k of ['ce_clean', 'ce_spliced', 'ce_zero'] as const) expect(Math.abs(ours[k] - ref[k]) / ref[k], k).toBeLessThan(1e-3)
  expect(Math.abs(ours.loss_recovered - ref.loss_recovered)).toBeLessThan(0.005)
  expect(Math.abs(ours.kl - ref.kl)).toBeLessThan(1e-3 * Math.max(1, ref.kl))
  expect(Math.abs(ours.fvu - ref.fvu)).toBeLessThan(1e-3 * Math.max(ref.fvu, 0.01))
  expect(ours.explained_variance).toBeCloseTo(1 - ours.fvu, 12)
  expect(Math.abs(ours.l0 - ref.l0)).toBeLessThan(0.05)
  expect([ours.tokens, ours.positions, ours.windows]).toEqual([ref.tokens, ref.positions, ref.windows])
}

describe('featuretrace evaluate equals the float64 reference', () => {
  it('tiny llama (tied head, BOS) with a trained TopK SAE on layer-normed inputs, at layer 1', () => {
    const model = join(root, 'models', 'llama-gqa-tied')
    const windows = [corpus, '--context', '16', '--max-tokens', '300', '--seed', '3']
    const acts = join(t.dir, 'llama-acts')
    ft('harvest', '--model', model, '--corpus', corpus, '--layer', '1', '--out', acts, '--context', '16', '--seed', '3')
    const sae = join(t.dir, 'llama-sae')
    ft('train', '--activations', acts, '--out', sae, '--latents', '128', '--k', '8', '--tokens', '20000', '--batch', '64', '--scaling', 'layer_norm')
    const { ours, ref } = both(model, sae, 1, windows)
    expect(ref.positions).toBe(300)
    expectAgreement(ours, ref)
  })

  it('tiny gpt_neox (own head) with a JumpReLU SAE on norm-rescaled inputs, after the last block (before the final norm)', async () => {
    const model = join(root, 'models', 'gpt_neox')
    const d = 64
    const n = 2 * d
    // Latent j reads +x_j, latent d + j reads −x_j; each fires above its threshold and writes its coordinate back.
    const W_enc = new Float32Array(d * n)
    const W_dec = new Float32Array(n * d)
    for (let j = 0; j < d; j++) {
      W_enc[j * n + j] = 1
      W_enc[j * n + d + j] = -1
      W_dec[j * d + j] = 1
      W_dec[(d + j) * d + j] = -1
    }
    const threshold = Float32Array.from({ length: n }, (_, i) => 0.6 + (0.4 * ((i * 7) % 5)) / 5)
    const sae = new Sae({
      d,
      n,
      rule: { architecture: 'jumprelu', k: null, applyBDecToInput: false, scaling: { kind: 'unit_norm', factor: 1 } },
      weights: { W_enc, W_dec, b_enc: new Float32Array(n), b_dec: new Float32Array(d).fill(0.01), threshold },
      sparsity: null
    })
    const dir = join(t.dir, 'neox-sae')
    mkdirSync(dir)
    await sae.save(dir, { meta: { layer: 3 }, modelName: null, contextSize: 32, datasetPath: null, prependBos: false })
    expect(JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf8')).normalize_activations).toBe('constant_norm_rescale')
    const { ours, ref } = both(model, dir, 3, [corpus, '--context', '32', '--seed', '1'])
    expectAgreement(ours, ref)
  })

  it('the demo model (step 2,000, layer 2) with a trained SAE', () => {
    const model = join(DEMO, 'checkpoints', 'step2000')
    const demoCorpus = join(DEMO, 'corpus.jsonl')
    const acts = join(t.dir, 'demo-acts')
    ft('harvest', '--model', model, '--corpus', demoCorpus, '--layer', '2', '--out', acts, '--max-tokens', '8192', '--seed', '5')
    const sae = join(t.dir, 'demo-sae')
    ft('train', '--activations', acts, '--out', sae, '--latents', '256', '--k', '8', '--tokens', '200000', '--batch', '256')
    const { ours, ref } = both(model, sae, 2, [demoCorpus, '--max-tokens', '2048', '--seed', '7'])
    expectAgreement(ours, ref)
    // On a trained model zeroing the stream costs much, and a trained SAE recovers most of it.
    expect(ref.ce_zero).toBeGreaterThan(ref.ce_clean + 1)
    expect(ref.loss_recovered).toBeGreaterThan(0.8)
    console.log(`demo step 2000, layer 2: ${JSON.stringify(ours)}`)
  })

  it('refuses an SAE of another width or layer, naming the file and the fix', async () => {
    const model = join(DEMO, 'checkpoints', 'step2000')
    const out = join(t.dir, 'never.json')
    const args = ['--corpus', join(DEMO, 'corpus.jsonl'), '--out', out, '--max-tokens', '64']
    const narrow = join(t.dir, 'narrow-sae')
    mkdirSync(narrow)
    const d = 8
    const n = 16
    await new Sae({
      d,
      n,
      rule: { architecture: 'topk', k: 2, applyBDecToInput: true, scaling: { kind: 'none', factor: 1 } },
      weights: { W_enc: new Float32Array(d * n), W_dec: new Float32Array(n * d), b_enc: new Float32Array(n), b_dec: new Float32Array(d), threshold: null },
      sparsity: null
    }).save(narrow, { meta: { layer: 2 }, modelName: null, contextSize: null, datasetPath: null, prependBos: null })
    expect(ftFails('evaluate', '--model', model, '--sae', narrow, '--layer', '2', ...args)).toMatch(
      /narrow-sae: the SAE reads d_in = 8 values per token but .*config\.json gives d_model = 64/
    )
    expect(ftFails('evaluate', '--model', model, '--sae', join(t.dir, 'demo-sae'), '--layer', '1', ...args)).toMatch(
      /cfg\.json says the SAE reads the residual stream after block 2, not 1: evaluate it at --layer 2/
    )
    expect(ftFails('evaluate', '--model', model, '--sae', join(t.dir, 'demo-sae'), '--layer', '9', ...args)).toMatch(
      /Layer 9 is out of range .* layers 0–4 exist/
    )
  })
})

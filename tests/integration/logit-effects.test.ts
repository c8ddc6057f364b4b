// Logit effects read through each tiny model's head equal a float64 numpy computation from the same safetensors files
// (tests/fixtures/logit_effects_ref.py), for untied heads, tied embeddings, BF16 shards, F16 and a model without a head, on tfjs-wasm
// and on onnxruntime (the `ort` engine's product over a host W_Uᵀ).
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { computeLogitEffects, disposeLmHead, readLmHead } from '../../src/core/analysis/logit-effects'
import { CheckpointFolder } from '../../src/core/lm/checkpoint'
import { Rng } from '../../src/core/random'
import { OrtDenseProducts, tryOrt } from '../../src/core/ort/engine'
import { initBackend } from '../../src/core/tf/backend'
import { PYTHON, tinyModels } from '../fixtures/tiny-models'
import { REPO } from '../helpers'

const REF = join(REPO, 'tests/fixtures/logit_effects_ref.py')

function reference(model: string, wDec: number[][], scale: number, bins: number): { effects: number[][]; hist: number[][] } | { absent: true } {
  const input = JSON.stringify({ kind: 'logit', model, w_dec: wDec, scale, bins })
  return JSON.parse(execFileSync(PYTHON, [REF], { input, maxBuffer: 1 << 28 }).toString()) as { effects: number[][]; hist: number[][] } | { absent: true }
}

describe('logit effects', () => {
  let root: string
  let ortWhy: string | null
  beforeAll(async () => {
    await initBackend('wasm')
    root = tinyModels()
    ortWhy = await tryOrt()
  }, 120_000)

  const cases = [
    ['gpt_neox', false, 'embed_out.weight'],
    ['gpt_neox-sequential-f16', false, 'embed_out.weight'],
    ['llama-gqa-tied', true, 'model.embed_tokens.weight'],
    ['llama-untied-bf16-sharded', false, 'lm_head.weight'],
    ['gpt2', true, 'transformer.wte.weight']
  ] as const
  for (const [name, tied, unembedding] of cases)
    for (const engine of ['wasm', 'ort'] as const)
      it(`equal numpy's (W_dec · s) ⊙ γ · W_Uᵀ for ${name} (${tied ? 'tied' : 'untied'}) on ${engine}`, async (test) => {
        if (engine === 'ort' && ortWhy !== null) test.skip(`onnxruntime cannot load here: ${ortWhy}`)
        const products = engine === 'ort' ? new OrtDenseProducts() : null
        const checkpoint = CheckpointFolder.open(join(root, 'models', name))
        try {
          const head = await readLmHead(checkpoint, products ? 'host' : 'tensor')
          if ('absent' in head) throw new Error(head.absent)
          expect(head.unembeddingT instanceof Float32Array).toBe(products !== null)
          expect(head.tied).toBe(tied)
          expect(head.names.unembedding).toBe(unembedding)
          const { d, vocab } = head
          const n = 12
          const rng = new Rng(7)
          const wDec = Float32Array.from({ length: n * d }, () => rng.gaussian())
          const scale = 0.37
          const got = await computeLogitEffects(wDec, n, head, { scale, top: 10, bins: 40, products })
          disposeLmHead(head)
          const rows = Array.from({ length: n }, (_, i) => Array.from(wDec.subarray(i * d, (i + 1) * d)))
          const ref = reference(join(root, 'models', name), rows, scale, 40)
          if ('absent' in ref) throw new Error(`the reference found no head in ${name}`)
          expect(got).toHaveLength(n)
          for (let i = 0; i < n; i++) {
            const e = ref.effects[i]!
            expect(e).toHaveLength(vocab)
            const tol = 1e-4 * Math.max(...e.map(Math.abs))
            const order = e.map((v, j) => [v, j] as const).sort((a, b) => b[0] - a[0])
            const best = order.slice(0, 10)
            const worst = order.slice(-10).reverse()
            got[i]!.positive.forEach((t, r) => {
              expect(Math.abs(t.value - best[r]![0])).toBeLessThan(tol)
              // The token's own effect, whatever its rank among near-ties.
              expect(Math.abs(e[t.token]! - t.value)).toBeLessThan(tol)
            })
            got[i]!.negative.forEach((t, r) => {
              expect(Math.abs(t.value - worst[r]![0])).toBeLessThan(tol)
              expect(Math.abs(e[t.token]! - t.value)).toBeLessThan(tol)
            })
            expect(got[i]!.positive.map((t) => t.token)).toEqual(best.map(([, j]) => j))
            expect(got[i]!.negative.map((t) => t.token)).toEqual(worst.map(([, j]) => j))
            const h = got[i]!.histogram
            expect(h.lo).toBeCloseTo(worst[0]![0], 4)
            expect(h.hi).toBeCloseTo(best[0]![0], 4)
            expect(Array.from(h.counts).reduce((a, b) => a + b, 0)).toBe(vocab)
            // float32 against float64 can move a value on a bin edge to the next bin.
            const moved = Array.from(h.counts).reduce((a, c, b) => a + Math.abs(c - ref.hist[i]![b]!), 0)
            expect(moved).toBeLessThanOrEqual(2)
          }
        } finally {
          await checkpoint.close()
          await products?.release()
        }
      })

  it('says there is no head when untied weights were saved from the base model', async () => {
    const folder = join(root, 'models', 'gpt_neox-v5-bare-names')
    const checkpoint = CheckpointFolder.open(folder)
    try {
      const head = await readLmHead(checkpoint)
      expect('absent' in head && head.absent).toMatch(
        /has no LM head \("embed_out\.weight"\) and .*config\.json says tie_word_embeddings is false.*no unembedding to read logit effects/
      )
      expect(reference(folder, [[0]], 1, 4)).toEqual({ absent: true })
    } finally {
      await checkpoint.close()
    }
  })
})

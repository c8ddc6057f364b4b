// config.json read through the key table: the transformers v5 rope_parameters layout equals the top-level keys,
// refusals name file, key and value; RoPE frequencies and activations equal the PyTorch reference
// (make_tiny_models.py's rope_inv_freq and transformers' ACT2FN); weights the forward pass would not use, or
// needs and lacks, are refused by name while known buffers are ignored; docs/config-keys.md matches the tables.
import * as tf from '@tensorflow/tfjs-core'
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { renderConfigKeysPage } from '../../src/core/lm/config-keys-doc'
import { ACTIVATION_FNS, loadModel } from '../../src/core/lm/model'
import { ACTIVATIONS, parseModelConfig, type ModelType, type RopeSpec } from '../../src/core/lm/model-config'
import { ropeFrequencies } from '../../src/core/lm/rope'
import { initBackend } from '../../src/core/tf/backend'
import { rewriteWeights } from '../fixtures/edit-checkpoint'
import { tinyModels } from '../fixtures/tiny-models'
import { REPO, tempDir } from '../helpers'

let root: string
beforeAll(async () => {
  root = tinyModels()
  await initBackend('cpu')
})

const LLAMA = {
  model_type: 'llama',
  hidden_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 64,
  vocab_size: 100,
  max_position_embeddings: 256,
  rope_theta: 500000
}
const NEOX = {
  model_type: 'gpt_neox',
  hidden_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  intermediate_size: 128,
  vocab_size: 100,
  rotary_pct: 1.0,
  rotary_emb_base: 500000
}

function parse(modelType: ModelType, cfg: Record<string, unknown>): ReturnType<typeof parseModelConfig> {
  return parseModelConfig(modelType, cfg, '/ckpt/config.json')
}

function without(cfg: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(cfg).filter(([k]) => !keys.includes(k)))
}

describe('config.json through the key table', () => {
  it('case03: RoPE settings only in rope_parameters (transformers v5) read like the top-level keys, for llama and gpt_neox', () => {
    const llamaTop = parse('llama', LLAMA)
    const llamaV5 = parse('llama', { ...without(LLAMA, 'rope_theta'), rope_parameters: { rope_type: 'default', rope_theta: 500000 } })
    const llamaNone = parse('llama', without(LLAMA, 'rope_theta'))
    expect(llamaV5.rope).toEqual(llamaTop.rope)
    expect(llamaTop.rope!.theta).toBe(500000)
    expect(llamaNone.rope!.theta).toBe(10000)
    const neoxTop = parse('gpt_neox', NEOX)
    const neoxV5 = parse('gpt_neox', {
      ...without(NEOX, 'rotary_pct', 'rotary_emb_base'),
      rope_parameters: { rope_type: 'default', rope_theta: 500000, partial_rotary_factor: 1.0 }
    })
    const neoxNone = parse('gpt_neox', without(NEOX, 'rotary_pct', 'rotary_emb_base'))
    expect(neoxV5.rope).toEqual(neoxTop.rope)
    expect(neoxTop.rope).toMatchObject({ theta: 500000, dims: 8 })
    // GPTNeoXConfig's defaults: rotary_emb_base 10000, rotary_pct 0.25 of the head (8 → 2 dimensions).
    expect(neoxNone.rope).toMatchObject({ theta: 10000, dims: 2 })
  })

  it('reads v4 rope_scaling with "type", and the same value written twice in agreement', () => {
    const s = parse('llama', { ...LLAMA, rope_scaling: { type: 'linear', factor: 4 }, rope_parameters: { rope_theta: 500000 } })
    expect(s.rope).toMatchObject({ type: 'linear', factor: 4, theta: 500000 })
    // transformers ≥ 4.45 saves rotary_emb_base and rope_theta, rotary_pct and partial_rotary_factor side by side.
    expect(parse('gpt_neox', { ...NEOX, rope_theta: 500000, partial_rotary_factor: 1.0 }).rope).toMatchObject({ theta: 500000, dims: 8 })
  })

  it("defaults as transformers' config classes have them", () => {
    const l = parse('llama', { model_type: 'llama', hidden_size: 32, num_attention_heads: 4, num_hidden_layers: 1 })
    expect(l).toMatchObject({ vocab: 32000, intermediate: 11008, kvHeads: 4, headDim: 8, eps: 1e-6, activation: 'silu', attentionBias: false, mlpBias: false })
    const n = parse('gpt_neox', { model_type: 'gpt_neox', hidden_size: 32, num_attention_heads: 4, num_hidden_layers: 1 })
    expect(n).toMatchObject({ vocab: 50432, intermediate: 24576, eps: 1e-5, activation: 'gelu', parallelResidual: true, attentionBias: true })
    const g = parse('gpt2', { model_type: 'gpt2', n_embd: 32, n_head: 4, n_layer: 1 })
    expect(g).toMatchObject({ vocab: 50257, intermediate: 128, maxPositions: 1024, activation: 'gelu_new', scaleAttention: true, scaleByInverseLayer: false })
    expect(parse('gpt2', { model_type: 'gpt2', hidden_size: 48, num_attention_heads: 4, num_hidden_layers: 2 })).toMatchObject({
      dModel: 48,
      heads: 4,
      layers: 2
    })
  })

  it.each([
    [
      'conflicting places',
      'gpt_neox',
      { ...NEOX, rope_parameters: { partial_rotary_factor: 0.25 } },
      /config\.json sets partial_rotary_factor twice with different values: "rotary_pct" = 1 and "rope_parameters\.partial_rotary_factor" = 0\.25/
    ],
    [
      'conflicting rope_theta',
      'llama',
      { ...LLAMA, rope_parameters: { rope_theta: 10000 } },
      /sets rope_theta twice with different values: "rope_theta" = 500000 and "rope_parameters\.rope_theta" = 10000/
    ],
    [
      'an unimplemented RoPE variant',
      'llama',
      { ...LLAMA, rope_scaling: { rope_type: 'longrope', short_factor: [1], long_factor: [1] } },
      /"rope_scaling\.rope_type" is "longrope"\. FeatureTrace supports rope_type: "default", "linear", "dynamic", "llama3", "yarn"/
    ],
    [
      'llama3 without low_freq_factor',
      'llama',
      { ...LLAMA, rope_parameters: { rope_type: 'llama3', factor: 8, high_freq_factor: 4 } },
      /lacks "rope_parameters\.low_freq_factor" or "rope_scaling\.low_freq_factor", which rope_type "llama3" needs/
    ],
    [
      'a YaRN factor transformers versions read differently',
      'llama',
      { ...LLAMA, rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 256 } },
      /"rope_scaling\.original_max_position_embeddings" is 256\. FeatureTrace supports original_max_position_embeddings: any; for yarn, when written: max_position_embeddings \/ factor/
    ],
    ['linear without factor', 'gpt_neox', { ...NEOX, rope_scaling: { type: 'linear' } }, /lacks "rope_parameters\.factor" or "rope_scaling\.factor"/],
    [
      'key/value heads that do not divide the heads (case29 kv3)',
      'llama',
      { ...LLAMA, num_key_value_heads: 3 },
      /"num_key_value_heads" is 3\. FeatureTrace supports num_key_value_heads: divides num_attention_heads/
    ],
    [
      'a sliding window shorter than the context',
      'llama',
      { ...LLAMA, sliding_window: 64 },
      /"sliding_window" is 64\. FeatureTrace supports sliding_window: unset, or ≥ max_position_embeddings/
    ],
    [
      'partial rotary on llama',
      'llama',
      { ...LLAMA, partial_rotary_factor: 0.5 },
      /"partial_rotary_factor" is 0\.5\. FeatureTrace supports partial_rotary_factor: 1/
    ],
    ['an odd number of rotated dimensions', 'gpt_neox', { ...NEOX, rotary_pct: 0.375 }, /"rotary_pct" is 0\.375\. .*even number of head dimensions/],
    [
      'head_dim on gpt_neox',
      'gpt_neox',
      { ...NEOX, head_dim: 16 },
      /"head_dim" is 16\. FeatureTrace supports head_dim: unset or hidden_size \/ num_attention_heads/
    ],
    [
      'an activation transformers has but FeatureTrace does not',
      'gpt_neox',
      { ...NEOX, hidden_act: 'gelu_10' },
      /"hidden_act" is "gelu_10"\. FeatureTrace supports hidden_act: "gelu", "gelu_new"/
    ],
    [
      'cross-attention',
      'gpt2',
      { model_type: 'gpt2', n_embd: 32, n_head: 4, n_layer: 1, add_cross_attention: true },
      /"add_cross_attention" is true\. FeatureTrace supports add_cross_attention: false/
    ],
    ['quantized weights', 'llama', { ...LLAMA, quantization_config: { quant_method: 'gptq' } }, /"quantization_config" is set\. .*quantized weights/],
    ['a number written as a string', 'llama', { ...LLAMA, rope_theta: '10000' }, /"rope_theta" is "10000", but rope_theta must be a number/],
    [
      'RoPE settings per layer type',
      'llama',
      { ...LLAMA, rope_parameters: { full_attention: { rope_type: 'default' } } },
      /"rope_parameters" holds "full_attention": .*a RoPE setting per layer type/
    ]
  ] as [string, ModelType, Record<string, unknown>, RegExp][])('refuses %s, naming file, key and value', (_, modelType, cfg, message) => {
    expect(() => parse(modelType, cfg)).toThrow(message)
    expect(() => parse(modelType, cfg)).toThrow(/\/ckpt\/config\.json/)
  })

  it('accepts a sliding window no shorter than max_position_embeddings, and keys that do not change the result', () => {
    expect(() => parse('llama', { ...LLAMA, sliding_window: 4096, pretraining_tp: 2, attention_dropout: 0.1, torch_dtype: 'bfloat16' })).not.toThrow()
    expect(parse('llama', { ...LLAMA, rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 64 } }).rope).toMatchObject({
      factor: 4,
      originalMaxPositions: 64
    })
    expect(parse('llama', { ...LLAMA, rope_scaling: { type: 'yarn', factor: 4 } }).rope).toMatchObject({ factor: 4, originalMaxPositions: 256 })
    expect(parse('gpt2', { model_type: 'gpt2', n_embd: 32, n_head: 4, n_layer: 1, reorder_and_upcast_attn: true }).scaleAttention).toBe(true)
  })
})

describe('RoPE frequencies and activations against the PyTorch reference', () => {
  interface RopeRef {
    case: Partial<RopeSpec> & { T: number }
    inv: number[]
    scale: number
  }
  let refs: { rope: RopeRef[]; activations: Record<string, number[]> }
  beforeAll(() => {
    refs = JSON.parse(readFileSync(join(root, 'references', 'functions.json'), 'utf8'))
  })

  it("every variant's inverse frequencies and cos/sin scale equal rope_inv_freq to 1e-12", () => {
    expect(new Set(refs.rope.map((r) => r.case.type))).toEqual(new Set(['default', 'linear', 'dynamic', 'llama3', 'yarn']))
    for (const r of refs.rope) {
      const spec: RopeSpec = {
        type: 'default',
        theta: 10000,
        dims: 16,
        factor: 1,
        maxPositions: 128,
        originalMaxPositions: 128,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        attentionFactor: null,
        betaFast: 32,
        betaSlow: 1,
        mscale: null,
        mscaleAllDim: null,
        truncate: true,
        ...r.case
      }
      const { inv, scale } = ropeFrequencies(spec, r.case.T)
      expect(inv.length, JSON.stringify(r.case)).toBe(r.inv.length)
      for (let i = 0; i < inv.length; i++) expect(Math.abs(inv[i]! - r.inv[i]!) / r.inv[i]!, `${JSON.stringify(r.case)} [${i}]`).toBeLessThan(1e-12)
      expect(scale).toBeCloseTo(r.scale, 12)
    }
    // The dynamic case at T ≤ max_position_embeddings is the plain RoPE, above it differs.
    const dyn = refs.rope.filter((r) => r.case.type === 'dynamic')
    expect(dyn.map((r) => r.inv[3])).not.toEqual([dyn[0]!.inv[3], dyn[0]!.inv[3]])
  })

  it("each activation equals transformers' ACT2FN (torch) to 1e-6", () => {
    const x = tf.tensor1d(refs.activations.x!, 'float32')
    for (const name of ACTIVATIONS) {
      const y = ACTIVATION_FNS[name](x)
      const got = y.dataSync()
      const want = refs.activations[name]!
      for (let i = 0; i < want.length; i++)
        expect(Math.abs(got[i]! - want[i]!), `${name}(${refs.activations.x![i]})`).toBeLessThan(1e-5 * Math.max(1, Math.abs(want[i]!)))
      y.dispose()
    }
    x.dispose()
  })
})

describe('the weights a checkpoint holds are exactly the ones the forward pass uses', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())
  function copyModel(name: string): string {
    const dir = join(t.dir, name)
    cpSync(join(root, 'models', name), dir, { recursive: true })
    return dir
  }

  it('refuses a bias the config does not declare, naming the tensor', async () => {
    t = tempDir()
    const dir = copyModel('llama-gqa-tied')
    await rewriteWeights(dir, (w) => (w['model.layers.1.self_attn.q_proj.bias'] = { dtype: 'F32', shape: [64], data: new Float32Array(64) }))
    await expect(loadModel(dir)).rejects.toThrow(
      /llama-gqa-tied holds 1 tensor the llama forward pass would not use: "model\.layers\.1\.self_attn\.q_proj\.bias"\. FeatureTrace refuses rather than skip them/
    )
  })

  it('refuses layers beyond num_hidden_layers, even when only early layers are wanted', async () => {
    t = tempDir()
    const dir = copyModel('gpt_neox')
    await rewriteWeights(dir, (w) => (w['gpt_neox.layers.3.input_layernorm.weight'] = { ...w['gpt_neox.layers.0.input_layernorm.weight']! }))
    await expect(loadModel(dir, 1)).rejects.toThrow(/would not use: "gpt_neox\.layers\.3\.input_layernorm\.weight"/)
  })

  it('case02: accepts a tensor with no elements (nothing to use or miss), as the reference reader does', async () => {
    t = tempDir()
    const dir = copyModel('llama-gqa-tied')
    await rewriteWeights(dir, (w) => (w['model.rotary_emb.unused'] = { dtype: 'F32', shape: [0], data: new Float32Array(0) }))
    const [clean, withEmpty] = [await loadModel(join(root, 'models', 'llama-gqa-tied')), await loadModel(dir)]
    const ids = tf.tensor2d([[5, 6, 7]], [1, 3], 'int32')
    const [a] = clean.hiddenStates(ids, [clean.layers])
    const [b] = withEmpty.hiddenStates(ids, [withEmpty.layers])
    expect(Array.from(b!.dataSync())).toEqual(Array.from(a!.dataSync()))
    tf.dispose([ids, a!, b!])
    clean.dispose()
    withEmpty.dispose()
    // One element is enough to be refused.
    await rewriteWeights(dir, (w) => (w['model.rotary_emb.unused'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) }))
    await expect(loadModel(dir)).rejects.toThrow(/would not use: "model\.rotary_emb\.unused"/)
  })

  it('refuses a missing weight by name, and a bias the config declares but the weights lack', async () => {
    t = tempDir()
    const dir = copyModel('gpt2')
    await rewriteWeights(dir, (w) => delete w['transformer.h.2.mlp.c_fc.bias'])
    await expect(loadModel(dir, 1)).rejects.toThrow(/gpt2 lacks 1 weight the gpt2 forward pass needs: "transformer\.h\.2\.mlp\.c_fc\.bias"/)
    const llama = copyModel('llama-gqa-tied')
    const cfg = JSON.parse(readFileSync(join(llama, 'config.json'), 'utf8'))
    writeFileSync(join(llama, 'config.json'), JSON.stringify({ ...cfg, mlp_bias: true }))
    await expect(loadModel(llama)).rejects.toThrow(/lacks 9 weights .*"model\.layers\.0\.mlp\.gate_proj\.bias"/)
  })

  it('case19: ignores the buffers old conversions carry (causal masks, masked_bias, rotary inv_freq) and computes the same', async () => {
    t = tempDir()
    const buffers: Record<string, (w: Record<string, unknown>) => Record<string, { dtype: 'F32' | 'BOOL'; shape: number[]; data: Uint8Array | Float32Array }>> =
      {
        gpt_neox: () => ({
          'gpt_neox.layers.0.attention.bias': { dtype: 'BOOL', shape: [1, 1, 4, 4], data: new Uint8Array(16).fill(1) },
          'gpt_neox.layers.0.attention.masked_bias': { dtype: 'F32', shape: [], data: new Float32Array([-1e9]) },
          'gpt_neox.layers.2.attention.rotary_emb.inv_freq': { dtype: 'F32', shape: [2], data: new Float32Array([1, 0.01]) }
        }),
        gpt2: () => ({
          'transformer.h.1.attn.bias': { dtype: 'F32', shape: [1, 1, 4, 4], data: new Float32Array(16).fill(1) },
          'transformer.h.1.attn.masked_bias': { dtype: 'F32', shape: [], data: new Float32Array([-1e4]) }
        }),
        'llama-gqa-tied': () => ({
          'model.layers.0.self_attn.rotary_emb.inv_freq': { dtype: 'F32', shape: [8], data: new Float32Array(8).fill(0.5) },
          'model.rotary_emb.inv_freq': { dtype: 'F32', shape: [8], data: new Float32Array(8).fill(0.5) }
        })
      }
    for (const [name, extra] of Object.entries(buffers)) {
      const dir = copyModel(name)
      await rewriteWeights(dir, (w) => Object.assign(w, extra(w)))
      const [clean, withBuffers] = [await loadModel(join(root, 'models', name)), await loadModel(dir)]
      const ids = tf.tensor2d([[5, 6, 7, 8, 9]], [1, 5], 'int32')
      const [a] = clean.hiddenStates(ids, [clean.layers])
      const [b] = withBuffers.hiddenStates(ids, [withBuffers.layers])
      expect(Array.from(b!.dataSync()), name).toEqual(Array.from(a!.dataSync()))
      tf.dispose([ids, a!, b!])
      clean.dispose()
      withBuffers.dispose()
    }
  })

  it('refuses token ids beyond the embedding inside the forward pass too, naming the ids and the fix', async () => {
    const model = await loadModel(join(root, 'models', 'gpt2'), 1)
    const ids = tf.tensor2d([[3, model.vocabRows, model.vocabRows + 4]], [1, 3], 'int32')
    expect(() => model.hiddenStates(ids, [1])).toThrow(
      new RegExp(
        `Token ids ${model.vocabRows}, ${model.vocabRows + 4} are outside the ${model.vocabRows} rows of "transformer\\.wte\\.weight".*resize_token_embeddings`
      )
    )
    ids.dispose()
    model.dispose()
  })
})

describe('docs/config-keys.md', () => {
  it('is the rendering of the tables the loader reads', () => {
    const file = join(REPO, 'docs', 'config-keys.md')
    const page = renderConfigKeysPage()
    if (process.env.FT_WRITE_DOCS === '1') writeFileSync(file, page)
    expect(readFileSync(file, 'utf8'), 'run FT_WRITE_DOCS=1 npx vitest run tests/integration/model-config.test.ts').toBe(page)
  })
})

// A model too large for tfjs-wasm's heap is refused before a tensor is read, with its size and what to do, instead of
// tfjs-wasm dying with a bare "RuntimeError: Aborted()" (seen harvesting 12 blocks of LLM-jp-3-1.8B's shape on wasm).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadModel } from '../../src/core/lm/model'
import { initBackend } from '../../src/core/tf/backend'
import { sparseSafetensors, type SparseTensor } from '../fixtures/large-files'
import { tempDir } from '../helpers'

const D = 2048
const FF = 7168
const VOCAB = 99_487
const LAYERS = 12

let t: ReturnType<typeof tempDir>
let folder: string

beforeAll(async () => {
  await initBackend('wasm')
  t = tempDir()
  folder = join(t.dir, 'llmjp-shape')
  mkdirSync(folder)
  // LLM-jp-3-1.8B's shape (LlamaForCausalLM), 12 of its blocks, as a sparse file: 3.5 GiB of zeros costing no disk.
  writeFileSync(
    join(folder, 'config.json'),
    JSON.stringify({
      model_type: 'llama',
      hidden_size: D,
      num_hidden_layers: LAYERS,
      num_attention_heads: 16,
      num_key_value_heads: 16,
      intermediate_size: FF,
      vocab_size: VOCAB,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      tie_word_embeddings: false,
      torch_dtype: 'float32'
    })
  )
  const tensors: SparseTensor[] = [
    { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [VOCAB, D] },
    { name: 'model.norm.weight', dtype: 'F32', shape: [D] }
  ]
  for (let i = 0; i < LAYERS; i++) {
    const p = `model.layers.${i}.`
    tensors.push(
      { name: `${p}input_layernorm.weight`, dtype: 'F32', shape: [D] },
      { name: `${p}post_attention_layernorm.weight`, dtype: 'F32', shape: [D] },
      ...['q_proj', 'k_proj', 'v_proj', 'o_proj'].map((m): SparseTensor => ({ name: `${p}self_attn.${m}.weight`, dtype: 'F32', shape: [D, D] })),
      { name: `${p}mlp.gate_proj.weight`, dtype: 'F32', shape: [FF, D] },
      { name: `${p}mlp.up_proj.weight`, dtype: 'F32', shape: [FF, D] },
      { name: `${p}mlp.down_proj.weight`, dtype: 'F32', shape: [D, FF] }
    )
  }
  sparseSafetensors(join(folder, 'model.safetensors'), tensors)
})
afterAll(() => t?.cleanup())

describe("tfjs-wasm's 4 GiB", () => {
  it('refuses, naming the size, the limit and what to do, before reading a tensor', async () => {
    // 12 blocks (730M parameters) and the embedding (204M): 3.48 GiB of float32, over the 3.0 GiB plain wasm leaves for weights.
    await expect(loadModel(folder, LAYERS)).rejects.toThrow(
      /llmjp-shape: the weights up to block 12 take 3\.48 GiB as float32, more than tfjs-wasm's memory holds for them \(3\.00 GiB of its 4 GiB\)\. Capture an earlier layer, or run on a GPU engine/
    )
  })
})

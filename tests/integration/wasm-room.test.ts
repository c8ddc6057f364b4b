// A model too large for tfjs-wasm's heap is refused before a tensor is read, with its size and what to do, instead of
// tfjs-wasm dying with a bare "RuntimeError: Aborted()" (seen harvesting 12 blocks of LLM-jp-3-1.8B's shape on wasm);
// and under ort with host projections (harvest and evaluation there) only what stays in tfjs is counted, so the whole
// model with its head fits.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CheckpointFolder } from '../../src/core/lm/checkpoint'
import type { ModelSpec } from '../../src/core/lm/model-config'
import { checkWasmRoom, loadModel, weightPlanFor, type WeightPlan } from '../../src/core/lm/model'
import { initBackend } from '../../src/core/tf/backend'
import { sparseSafetensors, type SparseTensor } from '../fixtures/large-files'
import { tempDir } from '../helpers'

const D = 2048
const FF = 7168
const VOCAB = 99_487
const LAYERS = 12

let t: ReturnType<typeof tempDir>
let folder: string
let full: string

/** LLM-jp-3-1.8B's shape (LlamaForCausalLM) with `layers` of its blocks, as a sparse file: GiBs of zeros costing no disk. */
function llmjpShape(dir: string, layers: number, head: boolean): void {
  mkdirSync(dir)
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'llama',
      hidden_size: D,
      num_hidden_layers: layers,
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
    { name: 'model.norm.weight', dtype: 'F32', shape: [D] },
    ...(head ? [{ name: 'lm_head.weight', dtype: 'F32' as const, shape: [VOCAB, D] }] : [])
  ]
  for (let i = 0; i < layers; i++) {
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
  sparseSafetensors(join(dir, 'model.safetensors'), tensors)
}

beforeAll(async () => {
  await initBackend('wasm')
  t = tempDir()
  folder = join(t.dir, 'llmjp-shape')
  llmjpShape(folder, LAYERS, false)
  // The whole model (24 blocks) with its own LM head, as evaluation loads it.
  full = join(t.dir, 'llmjp-shape-full')
  llmjpShape(full, 24, true)
})
afterAll(() => t?.cleanup())

/** The plan and settings loadModel checks the room with (headers only, no tensor read). */
async function planOf(dir: string): Promise<{ plan: WeightPlan; spec: ModelSpec }> {
  const checkpoint = CheckpointFolder.open(dir)
  try {
    return { plan: weightPlanFor(checkpoint.spec, (await checkpoint.weights()).namesWithData(), dir), spec: checkpoint.spec }
  } finally {
    await checkpoint.close()
  }
}

describe("tfjs-wasm's 4 GiB", () => {
  it('refuses, naming the size, the limit and what to do, before reading a tensor', async () => {
    // 12 blocks (730M parameters) and the embedding (204M): 3.48 GiB of float32, over the 3.0 GiB plain wasm leaves for weights.
    await expect(loadModel(folder, LAYERS)).rejects.toThrow(
      /llmjp-shape: the weights up to block 12 take 3\.48 GiB as float32, more than tfjs-wasm's memory holds for them \(3\.00 GiB of its 4 GiB\)\. Capture an earlier layer, or run on a GPU engine/
    )
    // The whole model with its head (1.87G parameters: 24 blocks of 60.8M, embedding and head of 204M each): 6.96 GiB.
    await expect(loadModel(full, undefined, { head: true })).rejects.toThrow(
      /llmjp-shape-full: the weights up to block 24 and the LM head take 6\.96 GiB as float32/
    )
  })

  it('under ort with host projections, the whole model with its head is not refused: only the embedding and norms stay in tfjs', async () => {
    await initBackend('ort')
    const { plan, spec } = await planOf(full)
    // The projections in tfjs: the same 6.96 GiB, over the 3.5 GiB the heap holds beside onnxruntime.
    expect(() => checkWasmRoom(plan, 24, true, spec, full)).toThrow(
      /the weights up to block 24 and the LM head take 6\.96 GiB as float32, more than tfjs-wasm's memory holds for them \(3\.50 GiB/
    )
    // Host projections: the embedding (204M) and 49 norms of 2,048 in tfjs, 0.76 GiB.
    expect(() => checkWasmRoom(plan, 24, true, spec, full, 'host')).not.toThrow()
    // The room check still counts what stays in tfjs: an embedding past the heap is refused under host projections too.
    const huge = { ...plan, global: plan.global.map((e) => (e.name === plan.embedding ? { ...e, shape: [5 * VOCAB, D] } : e)) }
    expect(() => checkWasmRoom(huge, 24, true, spec, full, 'host')).toThrow(/the weights up to block 24 kept in tfjs take 3\.80 GiB as float32/)
  })
})

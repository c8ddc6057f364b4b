// Forward passes of gpt_neox (Pythia), llama (LLM-jp-3, TinyLlama) and gpt2 in TensorFlow.js,
// capturing the residual stream. Activations are kept 2-D ([tokens, d]) between blocks so every
// projection is one plain matMul against a weight stored [in, out]: tfjs-wasm is ~10× slower when an
// operand must be transposed inside matMul, so weights are transposed once at load.
// Each block is written once, as a generator that yields its dense products (tf/products.ts): the synchronous
// driver answers them with tf.matMul (every tfjs backend, autodiff), the asynchronous one with onnxruntime.
// Loaded with `projections: 'host'` (harvest and evaluation on the ort engine), every weight used only as a product's
// w or b (attention and MLP projections, their biases, the LM head) is read, transposed and regrouped in tfjs one
// tensor at a time and then held as a HostWeight (a Float32Array) that onnxruntime reads in place: tfjs keeps only
// the embedding, the norms and gpt2's wpe, so a model's projections live once on the host instead of twice.
// config.json is read only through model-config.ts's table; the weights a checkpoint holds must be exactly
// the ones the forward pass uses (plus known buffers and the LM head), or it is refused by name.
import * as tf from '@tensorflow/tfjs-core'
import { UserError } from '../../shared/api'
import { CheckpointFolder } from './checkpoint'
import type { Activation, ModelSpec, ModelType } from './model-config'
import { ropeTables, ropeTablesFor, type Rope } from './rope'
import { ACTIVATION_FNS } from '../tf/activations'
import { currentBackend, WASM_HEAP_BYTES } from '../tf/backend'
import { attention, HostWeight, product, runAsync, runSync, scoped, type AsyncProducts, type Forward, type Weight } from '../tf/products'
import { CheckpointWeights, whyMissing } from './weights'
import { transpose } from '../matrix'

export { ACTIVATION_FNS, ropeTables, type Rope }

export interface LanguageModel {
  readonly modelType: string
  readonly dModel: number
  readonly layers: number
  /** Longest sequence the model's position scheme allows; null when unbounded in practice. */
  readonly maxPositions: number | null
  /** Rows of the token embedding: every token id must be below this. */
  readonly vocabRows: number
  /** The settings read from config.json. */
  readonly spec: ModelSpec
  /**
   * Residual stream after block L for each requested L (0 = the embeddings), each [B, T, d].
   * L = layers is the stream after the last block *before* the final norm; with `finalNorm` that entry
   * gets the final norm, which is what Hugging Face's hidden_states[layers] holds.
   * Errors: a token id ≥ vocabRows (UserError naming the ids and the embedding), a layer out of range.
   */
  hiddenStates(ids: tf.Tensor2D, layers: number[], opts?: { finalNorm?: boolean }): tf.Tensor3D[]
  /**
   * Next-token logits [B, T, vocab] of ids [B, T]: every block, the final norm, then the LM head (the embedding
   * matrix when tie_word_embeddings, else its own weight), as transformers' *ForCausalLM computes them. With
   * `splice`, the residual stream after block `splice.layer` (0 = the embeddings; `layers` = after the last block,
   * before the final norm) is replaced by what `splice.replace` returns for it ([B, T, d] in, [B, T, d] out) before
   * the later blocks run: the hook SAE evaluation splices a reconstruction in with. `replace` returns a new
   * tensor (or the one it was given); the stream it was given is disposed after.
   * Errors: the model was loaded without its head (loadModel's `head`), the checks of hiddenStates.
   */
  logits(ids: tf.Tensor2D, splice?: Splice): tf.Tensor3D
  /**
   * hiddenStates with every dense product (the projections) answered by `products`, an engine that answers
   * asynchronously (onnxruntime on every core: tf/products.ts, ortProducts); the rest runs on the active tfjs
   * backend. Same results and errors as hiddenStates. No other tfjs work may run in the process until it settles.
   */
  hiddenStatesAsync(ids: tf.Tensor2D, layers: number[], products: AsyncProducts, opts?: { finalNorm?: boolean }): Promise<tf.Tensor3D[]>
  /** logits with every dense product (the projections and the LM head) answered by `products`, as hiddenStatesAsync. */
  logitsAsync(ids: tf.Tensor2D, products: AsyncProducts, splice?: Splice): Promise<tf.Tensor3D>
  dispose(): void
}

/** logits' hook: the residual stream after block `layer` is replaced by what `replace` returns for it. */
export interface Splice {
  layer: number
  replace: (stream: tf.Tensor3D) => tf.Tensor3D
}

function layerNorm(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true)
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), w), b) as tf.Tensor2D
}

export function rmsNorm(x: tf.Tensor2D, w: tf.Tensor, eps: number): tf.Tensor2D {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w) as tf.Tensor2D
}

/** Rotary embedding on the first rope.dims features of each head. x: [B, H, T, hd]. */
function applyRope(x: tf.Tensor4D, rope: Rope): tf.Tensor4D {
  const hd = x.shape[3]
  const half = rope.dims / 2
  const xr = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, rope.dims])
  const x1 = tf.slice(xr, [0, 0, 0, 0], [-1, -1, -1, half])
  const x2 = tf.slice(xr, [0, 0, 0, half], [-1, -1, -1, half])
  const rotated = tf.add(tf.mul(xr, rope.cos), tf.mul(tf.concat([tf.neg(x2), x1], 3), rope.sin))
  if (rope.dims === hd) return rotated as tf.Tensor4D
  return tf.concat([rotated as tf.Tensor4D, tf.slice(x, [0, 0, 0, rope.dims], [-1, -1, -1, hd - rope.dims])], 3)
}

interface AttentionShape {
  B: number
  T: number
  heads: number
  kvHeads: number
  headDim: number
  /** Multiplies q·k; 1/√headDim unless the config says otherwise (gpt2). */
  scale?: number
}

/** Causal multi-head (grouped-query when kvHeads < heads) attention. q, k, v: [B*T, heads*hd] → [B*T, heads*hd]. */
function* causalAttention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, s: AttentionShape, mask: tf.Tensor2D, rope?: Rope): Forward<tf.Tensor2D> {
  const { B, T, heads, kvHeads, headDim } = s
  const split = (x: tf.Tensor2D, h: number): tf.Tensor4D => tf.transpose(tf.reshape(x, [B, T, h, headDim]), [0, 2, 1, 3])
  let qh = split(q, heads)
  let kh = split(k, kvHeads)
  let vh = split(v, kvHeads)
  if (rope && rope.dims > 0) {
    qh = applyRope(qh, rope)
    kh = applyRope(kh, rope)
  }
  if (kvHeads < heads) {
    // Each key/value head serves heads/kvHeads consecutive query heads.
    const rep = heads / kvHeads
    // Rank 4 throughout ([B, kv, 1, T·hd] tiled along axis 2): WebGPU's tile runs rank ≥ 5 on the CPU by a synchronous read.
    const expand = (x: tf.Tensor4D): tf.Tensor4D => tf.reshape(tf.tile(tf.reshape(x, [B, kvHeads, 1, T * headDim]), [1, 1, rep, 1]), [B, heads, T, headDim])
    kh = expand(kh)
    vh = expand(vh)
  }
  const rows = (x: tf.Tensor4D): tf.Tensor3D => tf.reshape(x, [B * heads, T, headDim])
  const out = yield* attention(rows(qh), rows(kh), rows(vh), s.scale ?? 1 / Math.sqrt(headDim), mask)
  return tf.reshape(tf.transpose(tf.reshape(out, [B, heads, T, headDim]), [0, 2, 1, 3]), [B * T, heads * headDim])
}

export function causalMask(T: number): tf.Tensor2D {
  const m = new Float32Array(T * T)
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e30
  return tf.tensor2d(m, [T, T])
}

/** What differs between architectures; the capture loop is shared. */
interface Architecture {
  embed(ids: tf.Tensor2D): tf.Tensor2D
  block(i: number, x: tf.Tensor2D, ctx: { B: number; T: number; mask: tf.Tensor2D; rope?: Rope }): Forward<tf.Tensor2D>
  finalNorm(x: tf.Tensor2D): tf.Tensor2D
}

// ---------------------------------------------------------------- the weights each architecture reads

interface WeightEntry {
  name: string
  shape: number[]
  /** Used only as a dense product's w or b (a projection or its bias): held on the host under `projections: 'host'`. */
  product?: boolean
}

/** The tensors a checkpoint of `spec` must hold, the ones it may hold, and where its names start. */
export interface WeightPlan {
  /** 'model.', 'gpt_neox.', 'transformer.' or '' (weights saved from the base class). */
  prefix: string
  global: WeightEntry[]
  /** Per block, in block order. */
  blocks: WeightEntry[][]
  embedding: string
  /** The final norm's scale γ [d] (final LayerNorm or RMSNorm), applied before the LM head. */
  finalNorm: string
  /** LM head weights: part of the model, never used for the residual stream. */
  head: string[]
  /** Non-parameter buffers old conversions carry (causal masks, rotary inv_freq): ignored on purpose. */
  buffers: RegExp[]
}

/** The weight names and shapes each architecture's forward pass reads (transformers' module names). */
export const WEIGHT_LAYOUTS: Record<ModelType, { prefixes: string[]; plan: (s: ModelSpec, prefix: string) => WeightPlan }> = {
  gpt_neox: {
    prefixes: ['gpt_neox.', ''],
    plan: (s, p) => {
      const { dModel: d, intermediate: I, heads: H, headDim: hd } = s
      return {
        prefix: p,
        embedding: `${p}embed_in.weight`,
        finalNorm: `${p}final_layer_norm.weight`,
        global: [
          { name: `${p}embed_in.weight`, shape: [s.vocab, d] },
          { name: `${p}final_layer_norm.weight`, shape: [d] },
          { name: `${p}final_layer_norm.bias`, shape: [d] }
        ],
        blocks: Array.from({ length: s.layers }, (_, i) => {
          const n = `${p}layers.${i}.`
          return [
            { name: n + 'input_layernorm.weight', shape: [d] },
            { name: n + 'input_layernorm.bias', shape: [d] },
            { name: n + 'post_attention_layernorm.weight', shape: [d] },
            { name: n + 'post_attention_layernorm.bias', shape: [d] },
            { name: n + 'attention.query_key_value.weight', shape: [3 * H * hd, d], product: true },
            ...(s.attentionBias ? [{ name: n + 'attention.query_key_value.bias', shape: [3 * H * hd], product: true }] : []),
            { name: n + 'attention.dense.weight', shape: [d, H * hd], product: true },
            ...(s.attentionBias ? [{ name: n + 'attention.dense.bias', shape: [d], product: true }] : []),
            { name: n + 'mlp.dense_h_to_4h.weight', shape: [I, d], product: true },
            { name: n + 'mlp.dense_h_to_4h.bias', shape: [I], product: true },
            { name: n + 'mlp.dense_4h_to_h.weight', shape: [d, I], product: true },
            { name: n + 'mlp.dense_4h_to_h.bias', shape: [d], product: true }
          ]
        }),
        head: ['embed_out.weight'],
        buffers: [new RegExp(`^${esc(p)}layers\\.\\d+\\.attention\\.(bias|masked_bias|rotary_emb\\.inv_freq)$`), new RegExp(`^${esc(p)}rotary_emb\\.inv_freq$`)]
      }
    }
  },
  llama: {
    prefixes: ['model.', ''],
    plan: (s, p) => {
      const { dModel: d, intermediate: I, heads: H, kvHeads: KV, headDim: hd } = s
      const proj = (name: string, out: number, inp: number, bias: boolean): WeightEntry[] => [
        { name: `${name}.weight`, shape: [out, inp], product: true },
        ...(bias ? [{ name: `${name}.bias`, shape: [out], product: true }] : [])
      ]
      return {
        prefix: p,
        embedding: `${p}embed_tokens.weight`,
        finalNorm: `${p}norm.weight`,
        global: [
          { name: `${p}embed_tokens.weight`, shape: [s.vocab, d] },
          { name: `${p}norm.weight`, shape: [d] }
        ],
        blocks: Array.from({ length: s.layers }, (_, i) => {
          const n = `${p}layers.${i}.`
          return [
            { name: n + 'input_layernorm.weight', shape: [d] },
            { name: n + 'post_attention_layernorm.weight', shape: [d] },
            ...proj(n + 'self_attn.q_proj', H * hd, d, s.attentionBias),
            ...proj(n + 'self_attn.k_proj', KV * hd, d, s.attentionBias),
            ...proj(n + 'self_attn.v_proj', KV * hd, d, s.attentionBias),
            ...proj(n + 'self_attn.o_proj', d, H * hd, s.attentionBias),
            ...proj(n + 'mlp.gate_proj', I, d, s.mlpBias),
            ...proj(n + 'mlp.up_proj', I, d, s.mlpBias),
            ...proj(n + 'mlp.down_proj', d, I, s.mlpBias)
          ]
        }),
        head: ['lm_head.weight'],
        buffers: [new RegExp(`^${esc(p)}layers\\.\\d+\\.self_attn\\.rotary_emb\\.inv_freq$`), new RegExp(`^${esc(p)}rotary_emb\\.inv_freq$`)]
      }
    }
  },
  gpt2: {
    prefixes: ['transformer.', ''],
    plan: (s, p) => {
      const { dModel: d, intermediate: I } = s
      return {
        prefix: p,
        embedding: `${p}wte.weight`,
        finalNorm: `${p}ln_f.weight`,
        global: [
          { name: `${p}wte.weight`, shape: [s.vocab, d] },
          { name: `${p}wpe.weight`, shape: [s.maxPositions!, d] },
          { name: `${p}ln_f.weight`, shape: [d] },
          { name: `${p}ln_f.bias`, shape: [d] }
        ],
        // GPT-2's Conv1D layers store weights [in, out].
        blocks: Array.from({ length: s.layers }, (_, i) => {
          const n = `${p}h.${i}.`
          return [
            { name: n + 'ln_1.weight', shape: [d] },
            { name: n + 'ln_1.bias', shape: [d] },
            { name: n + 'attn.c_attn.weight', shape: [d, 3 * d], product: true },
            { name: n + 'attn.c_attn.bias', shape: [3 * d], product: true },
            { name: n + 'attn.c_proj.weight', shape: [d, d], product: true },
            { name: n + 'attn.c_proj.bias', shape: [d], product: true },
            { name: n + 'ln_2.weight', shape: [d] },
            { name: n + 'ln_2.bias', shape: [d] },
            { name: n + 'mlp.c_fc.weight', shape: [d, I], product: true },
            { name: n + 'mlp.c_fc.bias', shape: [I], product: true },
            { name: n + 'mlp.c_proj.weight', shape: [I, d], product: true },
            { name: n + 'mlp.c_proj.bias', shape: [d], product: true }
          ]
        }),
        head: ['lm_head.weight'],
        buffers: [new RegExp(`^${esc(p)}h\\.\\d+\\.attn\\.(bias|masked_bias)$`)]
      }
    }
  }
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function listed(names: string[], max = 6): string {
  const shown = names
    .slice(0, max)
    .map((x) => `"${x}"`)
    .join(', ')
  return names.length > max ? `${shown} and ${names.length - max} more` : shown
}

/**
 * Matches a checkpoint's tensor names against what the forward pass of `spec` reads.
 * Errors (UserError naming the folder, config.json and the tensors): no known embedding name; a tensor the
 * forward pass would not use (not a known buffer or LM head); a tensor it needs that is missing.
 */
export function weightPlanFor(spec: ModelSpec, names: readonly string[], folder: string): WeightPlan {
  const layout = WEIGHT_LAYOUTS[spec.modelType]
  const have = new Set(names)
  const prefix = layout.prefixes.find((p) => have.has(layout.plan(spec, p).embedding))
  if (prefix === undefined) {
    const wanted = layout.prefixes.map((p) => `"${layout.plan(spec, p).embedding}"`).join(' or ')
    throw new UserError(
      whyMissing(folder, names, layout.plan(spec, layout.prefixes[0]!).embedding, spec.file) ??
        `${folder} holds no ${wanted}: its weights are not a ${spec.modelType} model as ${spec.file} says (they hold ${listed([...names].sort(), 4)}).`
    )
  }
  const plan = layout.plan(spec, prefix)
  const expected = new Set([...plan.global, ...plan.blocks.flat()].map((w) => w.name))
  const unused = names.filter((x) => !expected.has(x) && !plan.head.includes(x) && !plan.buffers.some((re) => re.test(x)))
  if (unused.length > 0) {
    throw new UserError(
      `${folder} holds ${unused.length} tensor${unused.length > 1 ? 's' : ''} the ${spec.modelType} forward pass would not use: ${listed(unused.sort())}. ` +
        `FeatureTrace refuses rather than skip them: ${spec.file} and the weights disagree (a bias with attention_bias or mlp_bias false, ` +
        'more layers than num_hidden_layers, another architecture or a quantized layout). Fix config.json to describe these weights.'
    )
  }
  const missing = [...expected].filter((x) => !have.has(x))
  const explained = missing.length > 0 ? whyMissing(folder, names, missing[0]!, spec.file) : null
  if (explained) throw new UserError(explained)
  if (missing.length > 0) {
    throw new UserError(
      `${folder} lacks ${missing.length} weight${missing.length > 1 ? 's' : ''} the ${spec.modelType} forward pass needs: ${listed(missing)}. ` +
        `${spec.file} describes another model (a bias with attention_bias or mlp_bias true, more layers) or the download is incomplete.`
    )
  }
  return plan
}

// ---------------------------------------------------------------- loading

/** Where a loaded model keeps the weights used only as dense products' w and b (loadModel's `projections`). */
export type ProjectionHome = 'tfjs' | 'host'

/**
 * Reads weights by the plan's names, checking shapes; matrices stored [out, in] are transposed once to [in, out].
 * A tensor kept in tfjs is registered in `all` (disposed with the model); a product's weight under `projections:
 * 'host'` is read out into a HostWeight and its tensor disposed at once, so tfjs holds one such tensor at a time.
 */
class Params {
  readonly all: tf.Tensor[] = []
  private readonly shapes = new Map<string, number[]>()
  constructor(
    private readonly w: CheckpointWeights,
    plan: WeightPlan,
    readonly projections: ProjectionHome
  ) {
    for (const e of [...plan.global, ...plan.blocks.flat()]) this.shapes.set(e.name, e.shape)
  }
  /** A weight kept in tfjs (embedding, norms, wpe). */
  async get(name: string): Promise<tf.Tensor> {
    return this.keep(await this.read(name))
  }
  /** A weight read into a tensor the caller disposes (not registered). */
  read(name: string): Promise<tf.Tensor> {
    return this.w.tensor(name, this.shapes.get(name)!)
  }
  /** Registers a tensor made from the weights (disposed with the model). */
  keep(t: tf.Tensor): tf.Tensor {
    this.all.push(t)
    return t
  }
  /** A product's weight or bias made from the weights: kept in tfjs, or moved to the host (the tensor disposed). */
  async weight(t: tf.Tensor): Promise<Weight> {
    if (this.projections === 'tfjs') return this.keep(t)
    try {
      return new HostWeight((await t.data()) as Float32Array, t.shape)
    } finally {
      t.dispose()
    }
  }
  /** A product's weight stored [in, out] or a bias, as it is on disk (read straight onto the host under 'host'). */
  async proj(name: string): Promise<Weight> {
    if (this.projections === 'host') return new HostWeight(await this.w.float32(name, this.shapes.get(name)!), this.shapes.get(name)!)
    return this.weight(await this.read(name))
  }
  /** A product's bias when the plan has it (attention_bias, mlp_bias). */
  async projOpt(name: string): Promise<Weight | undefined> {
    return this.shapes.has(name) ? this.proj(name) : undefined
  }
  /** A product's weight stored [out, in] (torch.nn.Linear), transposed to [in, out] (on the host under 'host'). */
  async linearT(name: string): Promise<Weight> {
    if (this.projections === 'host') {
      const [out, inp] = this.shapes.get(name)!
      return new HostWeight(transpose(await this.w.float32(name, [out!, inp!]), out!, inp!), [inp!, out!])
    }
    const t = await this.read(name)
    let tt: tf.Tensor
    try {
      tt = tf.transpose(t)
    } finally {
      t.dispose()
    }
    return this.weight(tt)
  }
}

type Loader = (p: Params, s: ModelSpec, plan: WeightPlan, upTo: number) => Promise<Architecture>

const loadNeox: Loader = async (p, s, plan, upTo) => {
  const { heads: H, headDim: hd, eps } = s
  const n = plan.prefix
  const embedding = await p.get(`${n}embed_in.weight`)
  // The fused QKV is laid out per head as [q | k | v], each head_dim wide: regrouped at load into separate Q, K and V
  // projections (three products cost no more than one, and no split of the product is needed after it).
  const width = H * hd
  const partIndex = [0, 1, 2].map((part) =>
    tf.tensor1d(
      Array.from({ length: width }, (_, within) => Math.floor(within / hd) * 3 * hd + part * hd + (within % hd)),
      'int32'
    )
  )
  /** Q, K and V made from a fused tensor by `part` (given each part's index), the fused tensor disposed after. */
  const regroup = async (fused: tf.Tensor, part: (index: tf.Tensor1D) => tf.Tensor): Promise<Weight[]> => {
    try {
      const parts: Weight[] = []
      for (const index of partIndex) parts.push(await p.weight(part(index)))
      return parts
    } finally {
      fused.dispose()
    }
  }
  const loadBlock = async (i: number) => {
    const b = `${n}layers.${i}.`
    const fusedW = await p.read(b + 'attention.query_key_value.weight') // [3·H·hd, d]
    const [qw, kw, vw] = await regroup(fusedW, (index) => tf.tidy(() => tf.transpose(tf.gather(fusedW, index, 0))))
    const fusedB = s.attentionBias ? await p.read(b + 'attention.query_key_value.bias') : null
    const [qb, kb, vb] = fusedB ? await regroup(fusedB, (index) => tf.gather(fusedB, index)) : []
    return {
      ln1w: await p.get(b + 'input_layernorm.weight'),
      ln1b: await p.get(b + 'input_layernorm.bias'),
      ln2w: await p.get(b + 'post_attention_layernorm.weight'),
      ln2b: await p.get(b + 'post_attention_layernorm.bias'),
      q: { w: qw!, b: qb },
      k: { w: kw!, b: kb },
      v: { w: vw!, b: vb },
      oW: await p.linearT(b + 'attention.dense.weight'),
      oB: await p.projOpt(b + 'attention.dense.bias'),
      upW: await p.linearT(b + 'mlp.dense_h_to_4h.weight'),
      upB: await p.proj(b + 'mlp.dense_h_to_4h.bias'),
      downW: await p.linearT(b + 'mlp.dense_4h_to_h.weight'),
      downB: await p.proj(b + 'mlp.dense_4h_to_h.bias')
    }
  }
  const blocks: Awaited<ReturnType<typeof loadBlock>>[] = []
  try {
    for (let i = 0; i < upTo; i++) blocks.push(await loadBlock(i))
  } finally {
    tf.dispose(partIndex)
  }
  const fin = upTo === s.layers ? { w: await p.get(`${n}final_layer_norm.weight`), b: await p.get(`${n}final_layer_norm.bias`) } : null
  return {
    embed: (ids) => tf.gather(embedding, tf.reshape(ids, [-1])) as tf.Tensor2D,
    *block(i, x, { B, T, mask, rope }) {
      const b = blocks[i]!
      const h = layerNorm(x, b.ln1w, b.ln1b, eps)
      const { q, k, v } = b
      const [qh, kh, vh] = [yield* product(h, q.w, q.b), yield* product(h, k.w, k.b), yield* product(h, v.w, v.b)]
      const attn = yield* product(yield* causalAttention(qh, kh, vh, { B, T, heads: H, kvHeads: H, headDim: hd }, mask, rope), b.oW, b.oB)
      const mlp = function* (z: tf.Tensor2D): Forward<tf.Tensor2D> {
        return yield* product(yield* product(z, b.upW, b.upB, s.activation), b.downW, b.downB)
      }
      if (s.parallelResidual) return tf.addN([x, attn, yield* mlp(layerNorm(x, b.ln2w, b.ln2b, eps))])
      const mid: tf.Tensor2D = tf.add(x, attn)
      return tf.add(mid, yield* mlp(layerNorm(mid, b.ln2w, b.ln2b, eps)))
    },
    finalNorm: (x) => layerNorm(x, fin!.w, fin!.b, eps)
  }
}

/** One Llama block's weights, projections stored [in, out]: tfjs tensors, or HostWeights under host projections. */
export interface LlamaBlockWeights<W extends Weight = tf.Tensor> {
  ln1: tf.Tensor
  ln2: tf.Tensor
  q: W
  k: W
  v: W
  o: W
  gate: W
  up: W
  down: W
}

/** Biases of a Llama block, present where attention_bias / mlp_bias say. */
export interface LlamaBlockBiases<W extends Weight = tf.Tensor> {
  qb?: W
  kb?: W
  vb?: W
  ob?: W
  gateb?: W
  upb?: W
  downb?: W
}

export interface LlamaShape {
  heads: number
  kvHeads: number
  headDim: number
  eps: number
  /** The gated MLP's activation; silu unless hidden_act says otherwise. */
  act?: Activation
}

/**
 * A Llama block (RMSNorm, rotary attention, gated MLP) over x [B·T, d], yielding its seven projections
 * (tf/products.ts). Shared by inference and the demo model's training, which runs it with runSync and a matMul
 * whose gradient avoids transposed matMuls.
 */
export function* llamaBlock(
  b: LlamaBlockWeights<Weight> & LlamaBlockBiases<Weight>,
  x: tf.Tensor2D,
  ctx: { B: number; T: number; mask: tf.Tensor2D; rope?: Rope },
  s: LlamaShape
): Forward<tf.Tensor2D> {
  const h = rmsNorm(x, b.ln1, s.eps)
  const shape = { B: ctx.B, T: ctx.T, heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim }
  const q = yield* product(h, b.q, b.qb)
  const k = yield* product(h, b.k, b.kb)
  const v = yield* product(h, b.v, b.vb)
  const mid: tf.Tensor2D = tf.add(x, yield* product(yield* causalAttention(q, k, v, shape, ctx.mask, ctx.rope), b.o, b.ob))
  const h2 = rmsNorm(mid, b.ln2, s.eps)
  const gate = yield* product(h2, b.gate, b.gateb, s.act ?? 'silu')
  const up = yield* product(h2, b.up, b.upb)
  const gated: tf.Tensor2D = tf.mul(gate, up)
  return tf.add(mid, yield* product(gated, b.down, b.downb))
}

const loadLlama: Loader = async (p, s, plan, upTo) => {
  const n = plan.prefix
  const embedding = await p.get(`${n}embed_tokens.weight`)
  const loadBlock = async (i: number): Promise<LlamaBlockWeights<Weight> & LlamaBlockBiases<Weight>> => {
    const b = `${n}layers.${i}.`
    return {
      ln1: await p.get(b + 'input_layernorm.weight'),
      ln2: await p.get(b + 'post_attention_layernorm.weight'),
      q: await p.linearT(b + 'self_attn.q_proj.weight'),
      k: await p.linearT(b + 'self_attn.k_proj.weight'),
      v: await p.linearT(b + 'self_attn.v_proj.weight'),
      o: await p.linearT(b + 'self_attn.o_proj.weight'),
      gate: await p.linearT(b + 'mlp.gate_proj.weight'),
      up: await p.linearT(b + 'mlp.up_proj.weight'),
      down: await p.linearT(b + 'mlp.down_proj.weight'),
      qb: await p.projOpt(b + 'self_attn.q_proj.bias'),
      kb: await p.projOpt(b + 'self_attn.k_proj.bias'),
      vb: await p.projOpt(b + 'self_attn.v_proj.bias'),
      ob: await p.projOpt(b + 'self_attn.o_proj.bias'),
      gateb: await p.projOpt(b + 'mlp.gate_proj.bias'),
      upb: await p.projOpt(b + 'mlp.up_proj.bias'),
      downb: await p.projOpt(b + 'mlp.down_proj.bias')
    }
  }
  const blocks: (LlamaBlockWeights<Weight> & LlamaBlockBiases<Weight>)[] = []
  for (let i = 0; i < upTo; i++) blocks.push(await loadBlock(i))
  const norm = upTo === s.layers ? await p.get(`${n}norm.weight`) : null
  const shape: LlamaShape = { heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim, eps: s.eps, act: s.activation }
  return {
    embed: (ids) => tf.gather(embedding, tf.reshape(ids, [-1])) as tf.Tensor2D,
    block: (i, x, ctx) => llamaBlock(blocks[i]!, x, ctx, shape),
    finalNorm: (x) => rmsNorm(x, norm!, s.eps)
  }
}

const loadGpt2: Loader = async (p, s, plan, upTo) => {
  const { dModel: d, heads: H, headDim: hd, eps } = s
  const n = plan.prefix
  // GPT-2's Conv1D layers store weights [in, out] already: no transpose.
  const wte = await p.get(`${n}wte.weight`)
  const wpe = await p.get(`${n}wpe.weight`)
  /** c_attn's weight [d, 3d] (its columns [Q | K | V]) or bias [3d], split into three (disposed after). */
  const split3 = async (fused: tf.Tensor, axis: number): Promise<Weight[]> => {
    try {
      const parts: Weight[] = []
      for (const t of tf.split(fused, 3, axis)) parts.push(await p.weight(t))
      return parts
    } finally {
      fused.dispose()
    }
  }
  const loadBlock = async (i: number) => {
    const b = `${n}h.${i}.`
    // c_attn's columns are [Q | K | V]: split into three projections once (no split of the product after it).
    const [qw, kw, vw] = await split3(await p.read(b + 'attn.c_attn.weight'), 1)
    const [qb, kb, vb] = await split3(await p.read(b + 'attn.c_attn.bias'), 0)
    return {
      ln1w: await p.get(b + 'ln_1.weight'),
      ln1b: await p.get(b + 'ln_1.bias'),
      ln2w: await p.get(b + 'ln_2.weight'),
      ln2b: await p.get(b + 'ln_2.bias'),
      q: { w: qw!, b: qb },
      k: { w: kw!, b: kb },
      v: { w: vw!, b: vb },
      projW: await p.proj(b + 'attn.c_proj.weight'),
      projB: await p.proj(b + 'attn.c_proj.bias'),
      fcW: await p.proj(b + 'mlp.c_fc.weight'),
      fcB: await p.proj(b + 'mlp.c_fc.bias'),
      outW: await p.proj(b + 'mlp.c_proj.weight'),
      outB: await p.proj(b + 'mlp.c_proj.bias')
    }
  }
  const blocks: Awaited<ReturnType<typeof loadBlock>>[] = []
  for (let i = 0; i < upTo; i++) blocks.push(await loadBlock(i))
  const fin = upTo === s.layers ? { w: await p.get(`${n}ln_f.weight`), b: await p.get(`${n}ln_f.bias`) } : null
  // GPT2Attention: scores / √head_dim when scale_attn_weights, and / (i + 1) when scale_attn_by_inverse_layer_idx.
  const scale = (i: number): number => (s.scaleAttention ? 1 / Math.sqrt(hd) : 1) / (s.scaleByInverseLayer ? i + 1 : 1)
  return {
    embed: (ids) => {
      const [B, T] = ids.shape
      const pos = tf.tile(tf.slice(wpe, [0, 0], [T, d]), [B, 1])
      return tf.add(tf.gather(wte, tf.reshape(ids, [-1])), pos) as tf.Tensor2D
    },
    *block(i, x, { B, T, mask }) {
      const b = blocks[i]!
      const h = layerNorm(x, b.ln1w, b.ln1b, eps)
      const { q, k, v } = b
      const [qh, kh, vh] = [yield* product(h, q.w, q.b), yield* product(h, k.w, k.b), yield* product(h, v.w, v.b)]
      const attn = yield* causalAttention(qh, kh, vh, { B, T, heads: H, kvHeads: H, headDim: hd, scale: scale(i) }, mask)
      const mid: tf.Tensor2D = tf.add(x, yield* product(attn, b.projW, b.projB))
      const h2 = yield* product(layerNorm(mid, b.ln2w, b.ln2b, eps), b.fcW, b.fcB, s.activation)
      return tf.add(mid, yield* product(h2, b.outW, b.outB))
    },
    finalNorm: (x) => layerNorm(x, fin!.w, fin!.b, eps)
  }
}

const LOADERS: Record<ModelType, Loader> = { gpt_neox: loadNeox, llama: loadLlama, gpt2: loadGpt2 }

/**
 * A checkpoint's settings, read from its config.json through the key table (model-config.ts).
 * Errors: model_type not one FeatureTrace runs, and every refusal of parseModelConfig.
 */
export function readModelSpec(folder: string): ModelSpec {
  return CheckpointFolder.open(folder).spec
}

/**
 * The rows of a checkpoint's token embedding and where they live, from config.json and the safetensors
 * headers only (no tensor is read). Errors: as CheckpointFolder.open and weightPlanFor.
 */
export async function embeddingOf(checkpoint: CheckpointFolder): Promise<{ rows: number; tensor: string; file: string }> {
  const weights = await checkpoint.weights()
  const plan = weightPlanFor(checkpoint.spec, weights.namesWithData(), checkpoint.folder)
  const info = weights.info(plan.embedding)
  return { rows: info.shape[0] ?? 0, tensor: plan.embedding, file: info.file }
}

/**
 * Which tensor is the LM head, by transformers' rule: the token embedding when config.json's tie_word_embeddings
 * is true (lm_head / embed_out are tied to it, whatever the file also holds), else the checkpoint's own head weight
 * (gpt_neox: embed_out.weight, llama and gpt2: lm_head.weight), [vocab, d] on disk. `missing` is a sentence for
 * the user (folder, tensor names, config.json) when the weights were saved without a head and are not tied.
 */
export function lmHeadName(
  weights: CheckpointWeights,
  spec: ModelSpec,
  plan: WeightPlan,
  folder: string
): { name: string; tied: boolean } | { missing: string } {
  const tied = spec.resolved.tie_word_embeddings === true
  const name = tied ? plan.embedding : plan.head.find((n) => weights.has(n))
  if (name !== undefined) return { name, tied }
  return {
    missing: `${folder} has no LM head ("${plan.head.join('" or "')}") and ${spec.file} says tie_word_embeddings is false, so the head is not the embedding`
  }
}

/**
 * The LM head as a [d, vocab] matrix (logits = final_norm(x) · head), the tensor lmHeadName names: a tfjs tensor, or
 * under host projections a HostWeight read and transposed on the host (never in tfjs-wasm's heap).
 * Errors: UserError naming the folder, the head tensor and config.json when an untied head is missing.
 */
async function readHead(weights: CheckpointWeights, spec: ModelSpec, plan: WeightPlan, folder: string, projections: ProjectionHome): Promise<Weight> {
  const head = lmHeadName(weights, spec, plan, folder)
  if ('missing' in head) {
    throw new UserError(
      `${head.missing}. Logits need the head: save the checkpoint with its head (transformers: the *ForCausalLM class), or set tie_word_embeddings to true if it was trained tied.`
    )
  }
  if (projections === 'host') {
    const { vocab, dModel } = spec
    return new HostWeight(transpose(await weights.float32(head.name, [vocab, dModel]), vocab, dModel), [dModel, vocab])
  }
  const t = await weights.tensor(head.name, [spec.vocab, spec.dModel])
  const transposed = tf.transpose(t)
  t.dispose()
  return transposed
}

/**
 * Refuses, before reading a tensor, a model whose float32 weights that live in tfjs would not fit in tfjs-wasm's heap
 * (WASM_HEAP_BYTES) when tfjs runs on wasm (the wasm engine, and ort beside onnxruntime): past it tfjs-wasm dies with
 * a bare "RuntimeError: Aborted()". Counted: the blocks below `upTo`, the embedding, final norm and wpe, and the LM
 * head [d, vocab] when `head`; with `projections` 'host' only what stays in tfjs (embedding, norms, wpe), as the
 * projections, their biases and the head are then HostWeights outside the heap (read into it one tensor at a time
 * while loading). On plain wasm the forward's own tensors need room too (0.5 GiB kept for them). No-op on other
 * backends. Errors: UserError naming the folder, the size in GiB, the room and what to do.
 */
export function checkWasmRoom(plan: WeightPlan, upTo: number, head: boolean, spec: ModelSpec, folder: string, projections: ProjectionHome = 'tfjs'): void {
  if (tf.getBackend() !== 'wasm') return
  const count = (shape: number[]): number => shape.reduce((a, b) => a * b, 1)
  const entries = [...plan.global, ...plan.blocks.slice(0, upTo).flat()].filter((e) => projections === 'tfjs' || !e.product)
  const headInTfjs = head && projections === 'tfjs'
  const bytes = 4 * (entries.reduce((a, e) => a + count(e.shape), 0) + (headInTfjs ? spec.vocab * spec.dModel : 0))
  const room = WASM_HEAP_BYTES - (currentBackend()?.name === 'ort' ? 0 : 0.5 * 2 ** 30)
  if (bytes <= room) return
  const gib = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`
  throw new UserError(
    `${folder}: the weights up to block ${upTo}${headInTfjs ? ' and the LM head' : ''}${projections === 'host' ? ' kept in tfjs' : ''} take ${gib(bytes)} as float32, more than tfjs-wasm's memory holds for them (${gib(room)} of its 4 GiB). ` +
      'Capture an earlier layer, or run on a GPU engine (--backend tensorflow or webgpu; README "GPU").'
  )
}

/** loadModel's options. */
export interface LoadOptions {
  /** Load every block, the final norm and the LM head (maxLayer is ignored), for logits(). */
  head?: boolean
  /**
   * Where the weights used only as dense products' w and b live (attention and MLP projections, their biases, the
   * LM head): 'tfjs' (the default: every driver, every backend) or 'host', as HostWeights (tf/products.ts) that
   * onnxruntime (ortProducts) reads in place, their tfjs tensors disposed as each is read. For a model run only
   * through hiddenStatesAsync/logitsAsync on the ort engine: it then holds its projections once on the host, and
   * tfjs-wasm's heap only the embedding, norms and wpe. hiddenStates/logits still answer correctly (runSync copies
   * each HostWeight into tfjs for its product), at the cost of that copy per product.
   */
  projections?: ProjectionHome
}

/**
 * Loads a Hugging Face checkpoint (a folder, or one already read) for capturing layers up to `maxLayer` (blocks
 * beyond it are never read). The caller disposes the model when done with the checkpoint; a folder given by
 * path has its weight files closed once the tensors are read, a CheckpointFolder stays its caller's to close.
 * With `head`, every block, the final norm and the LM head are loaded (maxLayer is ignored), for logits();
 * `projections` says where the projections live (LoadOptions). Errors: a layer out of range, every refusal of
 * weightPlanFor and checkWasmRoom, a missing LM head (readHead), the checkpoint's read errors (UserErrors naming files).
 */
export async function loadModel(source: string | CheckpointFolder, maxLayer?: number, opts: LoadOptions = {}): Promise<LanguageModel> {
  const checkpoint = typeof source === 'string' ? CheckpointFolder.open(source) : source
  const { folder, spec } = checkpoint
  const upTo = opts.head ? spec.layers : (maxLayer ?? spec.layers)
  if (!Number.isInteger(upTo) || upTo < 0 || upTo > spec.layers) {
    throw new UserError(`Layer ${upTo} is out of range for ${folder}: it has ${spec.layers} layers, so layers 0–${spec.layers} exist.`)
  }
  let arch: Architecture
  let params: Params | undefined
  let plan: WeightPlan
  let head: Weight | null = null
  const projections = opts.projections ?? 'tfjs'
  try {
    const weights = await checkpoint.weights()
    plan = weightPlanFor(spec, weights.namesWithData(), folder)
    checkWasmRoom(plan, upTo, opts.head === true, spec, folder, projections)
    params = new Params(weights, plan, projections)
    arch = await LOADERS[spec.modelType](params, spec, plan, upTo)
    if (opts.head) {
      const h = await readHead(weights, spec, plan, folder, projections)
      head = h instanceof HostWeight ? h : params.keep(h)
    }
  } catch (err) {
    // A failed load keeps none of what it read.
    tf.dispose(params?.all ?? [])
    throw err
  } finally {
    if (typeof source === 'string') await checkpoint.close()
  }
  const tensors = params.all
  const ropeCache = new Map<number, Rope>()
  const maskCache = new Map<number, tf.Tensor2D>()
  const { dModel, layers, maxPositions } = spec
  const vocabRows = spec.vocab
  /** The checks every forward makes, and the causal mask and rotary tables for T tokens (cached). */
  const prepare = (ids: tf.Tensor2D): { B: number; T: number; ctx: { B: number; T: number; mask: tf.Tensor2D; rope?: Rope } } => {
    const [B, T] = ids.shape
    if (maxPositions !== null && T > maxPositions) throw new UserError(`Sequences of ${T} tokens exceed this model's ${maxPositions} positions.`)
    const beyond = [...new Set(Array.from(ids.dataSync()).filter((id) => id < 0 || id >= vocabRows))].sort((a, b) => a - b)
    if (beyond.length > 0) {
      throw new UserError(
        `Token ids ${beyond.slice(0, 8).join(', ')} are outside the ${vocabRows} rows of "${plan.embedding}" in ${folder}. ` +
          'The tokenizer does not belong to this checkpoint: use the matching tokenizer, or resize the embedding (transformers: model.resize_token_embeddings(len(tokenizer))) and save the checkpoint again.'
      )
    }
    if (!maskCache.has(T)) maskCache.set(T, causalMask(T))
    if (spec.rope && !ropeCache.has(T)) ropeCache.set(T, ropeTablesFor(spec.rope, T))
    return { B, T, ctx: { B, T, mask: maskCache.get(T)!, rope: ropeCache.get(T) } }
  }
  /** The residual streams hiddenStates returns, its blocks each in a scope of their own (as tf.tidy would). */
  function* statesOf(ids: tf.Tensor2D, wanted: number[], opts: { finalNorm?: boolean }): Forward<tf.Tensor3D[]> {
    for (const L of wanted) {
      if (!Number.isInteger(L) || L < 0 || L > upTo) throw new UserError(`Layer ${L} is out of range: this model was loaded for layers 0–${upTo}.`)
    }
    const { B, T, ctx } = prepare(ids)
    const last = Math.max(...wanted)
    const out = new Map<number, tf.Tensor3D>()
    let x = tf.tidy(() => arch.embed(ids))
    const keep = (L: number, h: tf.Tensor2D): void => {
      if (!wanted.includes(L)) return
      const normed = L === upTo && L === layers && opts.finalNorm
      out.set(
        L,
        tf.tidy(() => tf.reshape(normed ? arch.finalNorm(h) : h, [B, T, dModel]))
      )
    }
    try {
      keep(0, x)
      for (let i = 0; i < last; i++) {
        const next = yield* scoped(arch.block(i, x, ctx))
        x.dispose() // a captured layer lives on in its own reshaped handle
        x = next
        keep(i + 1, x)
      }
    } catch (err) {
      tf.dispose([...out.values()])
      throw err
    } finally {
      x.dispose()
    }
    return wanted.map((L) => out.get(L)!)
  }
  /** The logits logits returns: every block, the final norm and the LM head, each block in its own scope. */
  function* logitsOf(ids: tf.Tensor2D, splice?: Splice): Forward<tf.Tensor3D> {
    const lmHead = head
    if (!lmHead) throw new Error('loadModel: this model was loaded without its LM head; load it with { head: true } for logits')
    if (splice && (!Number.isInteger(splice.layer) || splice.layer < 0 || splice.layer > layers)) {
      throw new UserError(`Layer ${splice.layer} is out of range for ${folder}: it has ${layers} layers, so layers 0–${layers} exist.`)
    }
    const { B, T, ctx } = prepare(ids)
    let x = tf.tidy(() => arch.embed(ids))
    const swap = (L: number): void => {
      if (splice?.layer !== L) return
      const given: tf.Tensor3D = tf.reshape(x, [B, T, dModel])
      const replaced = splice.replace(given)
      if (replaced !== given) given.dispose()
      x.dispose()
      x = tf.reshape(replaced, [B * T, dModel])
      replaced.dispose()
    }
    try {
      swap(0)
      for (let i = 0; i < layers; i++) {
        const next = yield* scoped(arch.block(i, x, ctx))
        x.dispose()
        x = next
        swap(i + 1)
      }
      const final = x
      return yield* scoped(
        (function* (): Forward<tf.Tensor3D> {
          return tf.reshape(yield* product(arch.finalNorm(final), lmHead), [B, T, lmHead.shape[1]!])
        })()
      )
    } finally {
      x.dispose()
    }
  }
  return {
    modelType: spec.modelType,
    dModel,
    layers,
    maxPositions,
    vocabRows,
    spec,
    hiddenStates: (ids, wanted, opts = {}) => runSync(statesOf(ids, wanted, opts)),
    hiddenStatesAsync: (ids, wanted, products, opts = {}) => runAsync(statesOf(ids, wanted, opts), products),
    logits: (ids, splice) => runSync(logitsOf(ids, splice)),
    logitsAsync: (ids, products, splice) => runAsync(logitsOf(ids, splice), products),
    dispose() {
      for (const t of tensors) t.dispose()
      for (const r of ropeCache.values()) {
        r.cos.dispose()
        r.sin.dispose()
      }
      for (const m of maskCache.values()) m.dispose()
    }
  }
}

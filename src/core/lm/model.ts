// Forward passes of gpt_neox (Pythia), llama (LLM-jp-3, TinyLlama) and gpt2 in TensorFlow.js,
// capturing the residual stream. Activations are kept 2-D ([tokens, d]) between blocks so every
// projection is one plain matMul against a weight stored [in, out]: tfjs-wasm is ~10× slower when an
// operand must be transposed inside matMul, so weights are transposed once at load.
import * as tf from '@tensorflow/tfjs-core'
import { join } from 'node:path'
import { UserError } from '../../shared/api'
import { readCheckpointConfig, SUPPORTED_MODEL_TYPES } from '../checkpoints/discover'
import { CheckpointWeights } from './weights'

export interface LanguageModel {
  readonly modelType: string
  readonly dModel: number
  readonly layers: number
  /** Longest sequence the model's position scheme allows; null when unbounded in practice. */
  readonly maxPositions: number | null
  /**
   * Residual stream after block L for each requested L (0 = the embeddings), each [B, T, d].
   * L = layers is the stream after the last block *before* the final norm; with `finalNorm` that entry
   * gets the final norm, which is what Hugging Face's hidden_states[layers] holds.
   */
  hiddenStates(ids: tf.Tensor2D, layers: number[], opts?: { finalNorm?: boolean }): tf.Tensor3D[]
  dispose(): void
}

type Cfg = Record<string, unknown>

function num(cfg: Cfg, file: string, ...keys: string[]): number {
  for (const k of keys) if (typeof cfg[k] === 'number') return cfg[k]
  throw new UserError(`${file} lacks "${keys[0]}", which a ${String(cfg.model_type)} model needs.`)
}

function optNum(cfg: Cfg, fallback: number, ...keys: string[]): number {
  for (const k of keys) if (typeof cfg[k] === 'number') return cfg[k]
  return fallback
}

/** x: [N, in] times w: [in, out] (+ b) → [N, out]. */
function linear(x: tf.Tensor2D, w: tf.Tensor, b?: tf.Tensor): tf.Tensor2D {
  const y: tf.Tensor2D = tf.matMul(x, w as tf.Tensor2D)
  return b ? (tf.add(y, b) as tf.Tensor2D) : y
}

function layerNorm(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true)
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), w), b) as tf.Tensor2D
}

export function rmsNorm(x: tf.Tensor2D, w: tf.Tensor, eps: number): tf.Tensor2D {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w) as tf.Tensor2D
}

function geluExact(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))))
}

function geluTanh(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))))
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)))
}

export interface Rope {
  dims: number
  cos: tf.Tensor2D
  sin: tf.Tensor2D
}

/** cos/sin tables [T, dims] in the rotate-half layout, computed in float64 then stored as float32. */
export function ropeTables(T: number, dims: number, base: number): Rope {
  const half = dims / 2
  const cos = new Float32Array(T * dims)
  const sin = new Float32Array(T * dims)
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = t / base ** ((2 * i) / dims)
      cos[t * dims + i] = cos[t * dims + i + half] = Math.cos(angle)
      sin[t * dims + i] = sin[t * dims + i + half] = Math.sin(angle)
    }
  }
  return { dims, cos: tf.tensor2d(cos, [T, dims]), sin: tf.tensor2d(sin, [T, dims]) }
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
}

/** Causal multi-head (grouped-query when kvHeads < heads) attention. q, k, v: [B*T, heads*hd] → [B*T, heads*hd]. */
function causalAttention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, s: AttentionShape, mask: tf.Tensor2D, rope?: Rope): tf.Tensor2D {
  const { B, T, heads, kvHeads, headDim } = s
  const split = (x: tf.Tensor2D, h: number): tf.Tensor4D => tf.transpose(tf.reshape(x, [B, T, h, headDim]), [0, 2, 1, 3])
  let qh = split(q, heads)
  let kh = split(k, kvHeads)
  let vh = split(v, kvHeads)
  if (rope) {
    qh = applyRope(qh, rope)
    kh = applyRope(kh, rope)
  }
  if (kvHeads < heads) {
    // Each key/value head serves heads/kvHeads consecutive query heads.
    const rep = heads / kvHeads
    const expand = (x: tf.Tensor4D): tf.Tensor4D =>
      tf.reshape(tf.tile(tf.expandDims(x, 2), [1, 1, rep, 1, 1]), [B, heads, T, headDim])
    kh = expand(kh)
    vh = expand(vh)
  }
  const q3 = tf.reshape(qh, [B * heads, T, headDim])
  const kT = tf.transpose(tf.reshape(kh, [B * heads, T, headDim]), [0, 2, 1])
  const scores = tf.add(tf.mul(tf.matMul(q3, kT), 1 / Math.sqrt(headDim)), mask)
  const out = tf.matMul(tf.softmax(scores), tf.reshape(vh, [B * heads, T, headDim]))
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
  block(i: number, x: tf.Tensor2D, ctx: { B: number; T: number; mask: tf.Tensor2D; rope?: Rope }): tf.Tensor2D
  finalNorm(x: tf.Tensor2D): tf.Tensor2D
  ropeFor?(T: number): Rope
}

type Loader = (w: CheckpointWeights, cfg: Cfg, file: string, upTo: number) => Promise<{ arch: Architecture; tensors: tf.Tensor[] }>

/** Loads weights, transposing [out, in] matrices once into [in, out]. */
class Params {
  readonly all: tf.Tensor[] = []
  constructor(private readonly w: CheckpointWeights) {}
  async get(name: string, shape: number[]): Promise<tf.Tensor> {
    const t = await this.w.tensor(name, shape)
    this.all.push(t)
    return t
  }
  async linearT(name: string, out: number, inp: number): Promise<tf.Tensor> {
    const t = await this.w.tensor(name, [out, inp])
    const tt = tf.transpose(t)
    t.dispose()
    this.all.push(tt)
    return tt
  }
}

const loadNeox: Loader = async (w, cfg, file, upTo) => {
  const d = num(cfg, file, 'hidden_size')
  const H = num(cfg, file, 'num_attention_heads')
  const I = optNum(cfg, 4 * d, 'intermediate_size')
  const V = num(cfg, file, 'vocab_size')
  const eps = optNum(cfg, 1e-5, 'layer_norm_eps')
  const hd = d / H
  const ropeDims = Math.floor(hd * optNum(cfg, 0.25, 'rotary_pct', 'partial_rotary_factor'))
  const base = optNum(cfg, 10000, 'rotary_emb_base', 'rope_theta')
  const parallel = cfg.use_parallel_residual !== false
  const p = new Params(w)
  const embedding = await p.get('gpt_neox.embed_in.weight', [w.info('gpt_neox.embed_in.weight').shape[0] ?? V, d])
  const loadBlock = async (i: number) => {
    const n = `gpt_neox.layers.${i}.`
    return {
      ln1w: await p.get(n + 'input_layernorm.weight', [d]),
      ln1b: await p.get(n + 'input_layernorm.bias', [d]),
      ln2w: await p.get(n + 'post_attention_layernorm.weight', [d]),
      ln2b: await p.get(n + 'post_attention_layernorm.bias', [d]),
      qkvW: await p.linearT(n + 'attention.query_key_value.weight', 3 * d, d),
      qkvB: await p.get(n + 'attention.query_key_value.bias', [3 * d]),
      oW: await p.linearT(n + 'attention.dense.weight', d, d),
      oB: await p.get(n + 'attention.dense.bias', [d]),
      upW: await p.linearT(n + 'mlp.dense_h_to_4h.weight', I, d),
      upB: await p.get(n + 'mlp.dense_h_to_4h.bias', [I]),
      downW: await p.linearT(n + 'mlp.dense_4h_to_h.weight', d, I),
      downB: await p.get(n + 'mlp.dense_4h_to_h.bias', [d])
    }
  }
  const blocks: Awaited<ReturnType<typeof loadBlock>>[] = []
  for (let i = 0; i < upTo; i++) blocks.push(await loadBlock(i))
  const layers = num(cfg, file, 'num_hidden_layers')
  const fin = upTo === layers
    ? { w: await p.get('gpt_neox.final_layer_norm.weight', [d]), b: await p.get('gpt_neox.final_layer_norm.bias', [d]) }
    : null
  // Pythia's fused QKV is laid out per head as [q | k | v], each head_dim wide: regroup to [Q | K | V].
  const qkvIndex = tf.tensor1d(
    Array.from({ length: 3 * d }, (_, j) => {
      const part = Math.floor(j / d)
      const within = j % d
      const head = Math.floor(within / hd)
      return head * 3 * hd + part * hd + (within % hd)
    }),
    'int32'
  )
  for (const b of blocks) {
    const qkvW = tf.gather(b.qkvW, qkvIndex, 1)
    const qkvB = tf.gather(b.qkvB, qkvIndex)
    b.qkvW.dispose()
    b.qkvB.dispose()
    b.qkvW = qkvW
    b.qkvB = qkvB
  }
  qkvIndex.dispose()
  const tensors = [embedding, ...blocks.flatMap((b) => Object.values(b)), ...(fin ? [fin.w, fin.b] : [])]
  const arch: Architecture = {
    embed: (ids) => tf.gather(embedding, tf.reshape(ids, [-1])) as tf.Tensor2D,
    ropeFor: (T) => ropeTables(T, ropeDims, base),
    block(i, x, { B, T, mask, rope }) {
      const b = blocks[i]!
      const h = layerNorm(x, b.ln1w, b.ln1b, eps)
      const qkv = linear(h, b.qkvW, b.qkvB)
      const [q, k, v] = tf.split(qkv, 3, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D]
      const attn = linear(causalAttention(q, k, v, { B, T, heads: H, kvHeads: H, headDim: hd }, mask, rope), b.oW, b.oB)
      const mlp = (z: tf.Tensor2D): tf.Tensor2D => linear(geluExact(linear(z, b.upW, b.upB)) as tf.Tensor2D, b.downW, b.downB)
      if (parallel) return tf.addN([x, attn, mlp(layerNorm(x, b.ln2w, b.ln2b, eps))])
      const mid: tf.Tensor2D = tf.add(x, attn)
      return tf.add(mid, mlp(layerNorm(mid, b.ln2w, b.ln2b, eps)))
    },
    finalNorm: (x) => layerNorm(x, fin!.w, fin!.b, eps)
  }
  return { arch, tensors }
}

/** One Llama block's weights, projections stored [in, out]. */
export interface LlamaBlockWeights {
  ln1: tf.Tensor
  ln2: tf.Tensor
  q: tf.Tensor
  k: tf.Tensor
  v: tf.Tensor
  o: tf.Tensor
  gate: tf.Tensor
  up: tf.Tensor
  down: tf.Tensor
}

export interface LlamaShape {
  heads: number
  kvHeads: number
  headDim: number
  eps: number
}

/**
 * A Llama block (RMSNorm, rotary attention, SwiGLU MLP), shared by inference and the demo model's
 * training, which passes a `lin` whose gradient avoids transposed matMuls.
 */
export function llamaBlock(
  b: LlamaBlockWeights,
  x: tf.Tensor2D,
  ctx: { B: number; T: number; mask: tf.Tensor2D; rope?: Rope },
  s: LlamaShape,
  lin: (x: tf.Tensor2D, w: tf.Tensor) => tf.Tensor2D = linear
): tf.Tensor2D {
  const h = rmsNorm(x, b.ln1, s.eps)
  const attn = causalAttention(lin(h, b.q), lin(h, b.k), lin(h, b.v), { B: ctx.B, T: ctx.T, heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim }, ctx.mask, ctx.rope)
  const mid: tf.Tensor2D = tf.add(x, lin(attn, b.o))
  const h2 = rmsNorm(mid, b.ln2, s.eps)
  const gate = lin(h2, b.gate)
  const swiglu = tf.mul(tf.mul(gate, tf.sigmoid(gate)), lin(h2, b.up)) as tf.Tensor2D
  return tf.add(mid, lin(swiglu, b.down))
}

const loadLlama: Loader = async (w, cfg, file, upTo) => {
  const d = num(cfg, file, 'hidden_size')
  const H = num(cfg, file, 'num_attention_heads')
  const KV = optNum(cfg, H, 'num_key_value_heads')
  const I = num(cfg, file, 'intermediate_size')
  const V = num(cfg, file, 'vocab_size')
  const eps = optNum(cfg, 1e-6, 'rms_norm_eps')
  const hd = optNum(cfg, d / H, 'head_dim')
  if (H % KV !== 0) throw new UserError(`${file}: num_attention_heads (${H}) is not a multiple of num_key_value_heads (${KV}).`)
  const base = optNum(cfg, 10000, 'rope_theta')
  if (cfg.rope_scaling && typeof cfg.rope_scaling === 'object') {
    throw new UserError(`${file} uses rope_scaling, which FeatureTrace does not implement; harvest with resources/harvest_activations.py.`)
  }
  const p = new Params(w)
  const embedding = await p.get('model.embed_tokens.weight', [V, d])
  const loadBlock = async (i: number) => {
    const n = `model.layers.${i}.`
    return {
      ln1: await p.get(n + 'input_layernorm.weight', [d]),
      ln2: await p.get(n + 'post_attention_layernorm.weight', [d]),
      q: await p.linearT(n + 'self_attn.q_proj.weight', H * hd, d),
      k: await p.linearT(n + 'self_attn.k_proj.weight', KV * hd, d),
      v: await p.linearT(n + 'self_attn.v_proj.weight', KV * hd, d),
      o: await p.linearT(n + 'self_attn.o_proj.weight', d, H * hd),
      gate: await p.linearT(n + 'mlp.gate_proj.weight', I, d),
      up: await p.linearT(n + 'mlp.up_proj.weight', I, d),
      down: await p.linearT(n + 'mlp.down_proj.weight', d, I)
    }
  }
  const blocks: Awaited<ReturnType<typeof loadBlock>>[] = []
  for (let i = 0; i < upTo; i++) blocks.push(await loadBlock(i))
  const layers = num(cfg, file, 'num_hidden_layers')
  const norm = upTo === layers ? await p.get('model.norm.weight', [d]) : null
  const shape: LlamaShape = { heads: H, kvHeads: KV, headDim: hd, eps }
  const arch: Architecture = {
    embed: (ids) => tf.gather(embedding, tf.reshape(ids, [-1])) as tf.Tensor2D,
    ropeFor: (T) => ropeTables(T, hd, base),
    block: (i, x, ctx) => llamaBlock(blocks[i]!, x, ctx, shape),
    finalNorm: (x) => rmsNorm(x, norm!, eps)
  }
  return { arch, tensors: [...p.all] }
}

const loadGpt2: Loader = async (w, cfg, file, upTo) => {
  const d = num(cfg, file, 'n_embd', 'hidden_size')
  const H = num(cfg, file, 'n_head', 'num_attention_heads')
  const V = num(cfg, file, 'vocab_size')
  const P = optNum(cfg, 1024, 'n_positions', 'max_position_embeddings')
  const I = optNum(cfg, 4 * d, 'n_inner')
  const eps = optNum(cfg, 1e-5, 'layer_norm_epsilon')
  const act = typeof cfg.activation_function === 'string' ? cfg.activation_function : 'gelu_new'
  if (!['gelu_new', 'gelu_pytorch_tanh', 'gelu'].includes(act)) {
    throw new UserError(`${file}: activation_function "${act}" is not supported (gelu_new, gelu_pytorch_tanh, gelu).`)
  }
  const prefix = w.has('transformer.wte.weight') ? 'transformer.' : ''
  const p = new Params(w)
  // GPT-2's Conv1D layers store weights [in, out] already: no transpose.
  const wte = await p.get(prefix + 'wte.weight', [V, d])
  const wpe = await p.get(prefix + 'wpe.weight', [P, d])
  const loadBlock = async (i: number) => {
    const n = `${prefix}h.${i}.`
    return {
      ln1w: await p.get(n + 'ln_1.weight', [d]),
      ln1b: await p.get(n + 'ln_1.bias', [d]),
      ln2w: await p.get(n + 'ln_2.weight', [d]),
      ln2b: await p.get(n + 'ln_2.bias', [d]),
      attnW: await p.get(n + 'attn.c_attn.weight', [d, 3 * d]),
      attnB: await p.get(n + 'attn.c_attn.bias', [3 * d]),
      projW: await p.get(n + 'attn.c_proj.weight', [d, d]),
      projB: await p.get(n + 'attn.c_proj.bias', [d]),
      fcW: await p.get(n + 'mlp.c_fc.weight', [d, I]),
      fcB: await p.get(n + 'mlp.c_fc.bias', [I]),
      outW: await p.get(n + 'mlp.c_proj.weight', [I, d]),
      outB: await p.get(n + 'mlp.c_proj.bias', [d])
    }
  }
  const blocks: Awaited<ReturnType<typeof loadBlock>>[] = []
  for (let i = 0; i < upTo; i++) blocks.push(await loadBlock(i))
  const layers = num(cfg, file, 'n_layer', 'num_hidden_layers')
  const fin = upTo === layers ? { w: await p.get(prefix + 'ln_f.weight', [d]), b: await p.get(prefix + 'ln_f.bias', [d]) } : null
  const gelu = act === 'gelu' ? geluExact : geluTanh
  const arch: Architecture = {
    embed: (ids) => {
      const [B, T] = ids.shape
      const pos = tf.tile(tf.slice(wpe, [0, 0], [T, d]), [B, 1])
      return tf.add(tf.gather(wte, tf.reshape(ids, [-1])), pos) as tf.Tensor2D
    },
    block(i, x, { B, T: t, mask }) {
      const b = blocks[i]!
      const h = layerNorm(x, b.ln1w, b.ln1b, eps)
      const [q, k, v] = tf.split(linear(h, b.attnW, b.attnB), 3, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D]
      const mid: tf.Tensor2D = tf.add(x, linear(causalAttention(q, k, v, { B, T: t, heads: H, kvHeads: H, headDim: d / H }, mask), b.projW, b.projB))
      const h2 = gelu(linear(layerNorm(mid, b.ln2w, b.ln2b, eps), b.fcW, b.fcB)) as tf.Tensor2D
      return tf.add(mid, linear(h2, b.outW, b.outB))
    },
    finalNorm: (x) => layerNorm(x, fin!.w, fin!.b, eps)
  }
  return { arch, tensors: [...p.all] }
}

const LOADERS: Record<(typeof SUPPORTED_MODEL_TYPES)[number], Loader> = { gpt_neox: loadNeox, llama: loadLlama, gpt2: loadGpt2 }

/**
 * Loads a Hugging Face checkpoint for capturing layers up to `maxLayer` (blocks beyond it are never read).
 * The caller disposes the model when done with the checkpoint.
 */
export async function loadModel(folder: string, maxLayer?: number): Promise<LanguageModel> {
  const config = readCheckpointConfig(folder)
  const file = join(folder, 'config.json')
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(config.modelType)) {
    throw new UserError(
      `${file}: model_type "${config.modelType}" is not supported (FeatureTrace runs ${SUPPORTED_MODEL_TYPES.join(', ')}). ` +
        'Harvest its activations with resources/harvest_activations.py and import them.'
    )
  }
  const upTo = maxLayer ?? config.layers
  if (!Number.isInteger(upTo) || upTo < 0 || upTo > config.layers) {
    throw new UserError(`Layer ${upTo} is out of range for ${folder}: it has ${config.layers} layers, so layers 0–${config.layers} exist.`)
  }
  const weights = await CheckpointWeights.open(folder)
  let loaded: { arch: Architecture; tensors: tf.Tensor[] }
  try {
    loaded = await LOADERS[config.modelType as keyof typeof LOADERS](weights, config.raw, file, upTo)
  } finally {
    await weights.close()
  }
  const { arch, tensors } = loaded
  const maxPositions = config.modelType === 'gpt2' ? optNum(config.raw, 1024, 'n_positions', 'max_position_embeddings') : null
  const ropeCache = new Map<number, Rope>()
  const maskCache = new Map<number, tf.Tensor2D>()
  const { dModel, layers } = config
  return {
    modelType: config.modelType,
    dModel,
    layers,
    maxPositions,
    hiddenStates(ids, wanted, opts = {}) {
      const [B, T] = ids.shape
      for (const L of wanted) {
        if (!Number.isInteger(L) || L < 0 || L > upTo) throw new UserError(`Layer ${L} is out of range: this model was loaded for layers 0–${upTo}.`)
      }
      if (maxPositions !== null && T > maxPositions) throw new UserError(`Sequences of ${T} tokens exceed this model's ${maxPositions} positions.`)
      if (!maskCache.has(T)) maskCache.set(T, causalMask(T))
      if (arch.ropeFor && !ropeCache.has(T)) ropeCache.set(T, arch.ropeFor(T))
      const ctx = { B, T, mask: maskCache.get(T)!, rope: ropeCache.get(T) }
      const last = Math.max(...wanted)
      const out = new Map<number, tf.Tensor3D>()
      let x = tf.tidy(() => arch.embed(ids))
      const keep = (L: number, h: tf.Tensor2D): void => {
        if (!wanted.includes(L)) return
        const normed = L === upTo && L === layers && opts.finalNorm
        out.set(L, tf.tidy(() => tf.reshape(normed ? arch.finalNorm(h) : h, [B, T, dModel])))
      }
      keep(0, x)
      for (let i = 0; i < last; i++) {
        const next = tf.tidy(() => arch.block(i, x, ctx))
        x.dispose() // a captured layer lives on in its own reshaped handle
        x = next
        keep(i + 1, x)
      }
      x.dispose()
      return wanted.map((L) => out.get(L)!)
    },
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

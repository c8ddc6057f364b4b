// Trains a small Llama-layout language model with TensorFlow.js and saves Hugging Face checkpoint
// folders that loadModel() reads like any LLM-jp or TinyLlama checkpoint. Used to build the bundled
// demo series (scripts/demo/build.mjs); the forward pass is model.ts's llamaBlock, so what is trained is
// exactly what is harvested.
import * as tf from '@tensorflow/tfjs-core'
// tfjs-core alone registers no gradients; training needs them.
import '@tensorflow/tfjs-core/dist/register_all_gradients'
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeSafetensors, type TensorToWrite } from '../../src/core/io/safetensors'
import { Rng } from '../../src/core/random'
import { segmentSum } from '../../src/core/sae/topk'
import { causalMask, llamaBlock, rmsNorm, ropeTables, type LlamaBlockWeights, type LlamaShape } from '../../src/core/lm/model'
import { runSync } from '../../src/core/tf/products'

export interface TinyLlamaConfig {
  vocabSize: number
  hiddenSize: number
  layers: number
  heads: number
  intermediateSize: number
  maxPositions: number
  ropeTheta: number
  rmsNormEps: number
  bosId: number
  eosId: number
}

export interface LmTrainOptions {
  /** Sequences per step and tokens per sequence (the model sees T inputs and predicts T targets). */
  batch: number
  context: number
  steps: number
  lr: number
  warmup: number
  seed: number
  /** Steps after which a checkpoint folder is written (0 = the initialisation). */
  saveAt: number[]
  /** Where checkpoint folders go (stepN/), and the tokenizer files copied into each. */
  out: string
  tokenizerFiles: string[]
  onStep?: (step: number, loss: number) => void
}

/** x: [N, in] · w: [in, out]. The gradient uses explicit transposes: tfjs-wasm's transposed matMul is ~10× slower. */
const trainLinear = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc]
  save([x, w])
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D]
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy as tf.Tensor2D)]
    }
  }
}) as (x: tf.Tensor2D, w: tf.Tensor) => tf.Tensor2D

/** Embedding lookup whose gradient is a segment sum (tfjs-wasm lacks gather's UnsortedSegmentSum). */
function embedLookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [t, save] = args as [tf.Tensor2D, tf.GradSaveFunc]
    save([ids])
    return { value: tf.gather(t, ids), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [segmentSum(dy, saved[0] as tf.Tensor1D, table.shape[0])] }
  }) as (t: tf.Tensor) => tf.Tensor2D
  return lookup(table)
}

interface Weights {
  embed: tf.Variable
  blocks: (LlamaBlockWeights & Record<keyof LlamaBlockWeights, tf.Variable>)[]
  norm: tf.Variable
}

function initWeights(c: TinyLlamaConfig, rng: Rng): Weights {
  // A variable keeps its own handle on the data: the initial tensor is disposed.
  const variable = (t: tf.Tensor): tf.Variable => {
    const v = tf.variable(t)
    t.dispose()
    return v
  }
  const normal = (shape: number[], std: number): tf.Variable => {
    const n = shape.reduce((a, b) => a * b, 1)
    const v = new Float32Array(n)
    for (let i = 0; i < n; i++) v[i] = std * rng.gaussian()
    return variable(tf.tensor(v, shape))
  }
  const ones = (n: number): tf.Variable => variable(tf.ones([n]))
  const d = c.hiddenSize
  const I = c.intermediateSize
  // GPT-2's scheme: 0.02, with the projections into the residual stream scaled down by depth.
  const std = 0.02
  const resid = std / Math.sqrt(2 * c.layers)
  return {
    embed: normal([c.vocabSize, d], std),
    blocks: Array.from({ length: c.layers }, () => ({
      ln1: ones(d),
      ln2: ones(d),
      q: normal([d, d], std),
      k: normal([d, d], std),
      v: normal([d, d], std),
      o: normal([d, d], resid),
      gate: normal([d, I], std),
      up: normal([d, I], std),
      down: normal([I, d], resid)
    })),
    norm: ones(d)
  }
}

function allVariables(w: Weights): tf.Variable[] {
  return [w.embed, w.norm, ...w.blocks.flatMap((b) => Object.values(b) as tf.Variable[])]
}

/** The training forward pass: mean next-token cross-entropy of ids [B, T+1]. */
function lossOf(w: Weights, c: TinyLlamaConfig, ids: tf.Tensor2D, ctx: { mask: tf.Tensor2D; rope: ReturnType<typeof ropeTables> }): tf.Scalar {
  const [B, T1] = ids.shape
  const T = T1 - 1
  const inputs = tf.reshape(tf.slice(ids, [0, 0], [B, T]), [-1])
  const targets = tf.reshape(tf.slice(ids, [0, 1], [B, T]), [-1])
  const shape: LlamaShape = { heads: c.heads, kvHeads: c.heads, headDim: c.hiddenSize / c.heads, eps: c.rmsNormEps }
  let x = embedLookup(w.embed as tf.Tensor2D, inputs as tf.Tensor1D)
  for (const b of w.blocks) x = runSync(llamaBlock(b, x, { B, T, mask: ctx.mask, rope: ctx.rope }, shape), trainLinear)
  // Tied embeddings: the output projection is the embedding matrix, transposed explicitly once.
  const logits = trainLinear(rmsNorm(x, w.norm, c.rmsNormEps), tf.transpose(w.embed))
  const logp = tf.logSoftmax(logits)
  const picked = tf.sum(tf.mul(logp, tf.oneHot(targets, c.vocabSize)), -1)
  return tf.neg(tf.mean(picked)) as tf.Scalar
}

/** Hugging Face's names and [out, in] layout for our [in, out] weights. */
function hfTensors(w: Weights): Record<string, TensorToWrite> {
  const out: Record<string, TensorToWrite> = {}
  const put = (name: string, t: tf.Tensor, transpose: boolean): void => {
    const v = transpose ? tf.tidy(() => tf.transpose(t)) : t
    out[name] = { dtype: 'F32', shape: v.shape, data: v.dataSync() as Float32Array }
    if (transpose) v.dispose()
  }
  put('model.embed_tokens.weight', w.embed, false)
  w.blocks.forEach((b, i) => {
    const n = `model.layers.${i}.`
    put(n + 'input_layernorm.weight', b.ln1, false)
    put(n + 'post_attention_layernorm.weight', b.ln2, false)
    put(n + 'self_attn.q_proj.weight', b.q, true)
    put(n + 'self_attn.k_proj.weight', b.k, true)
    put(n + 'self_attn.v_proj.weight', b.v, true)
    put(n + 'self_attn.o_proj.weight', b.o, true)
    put(n + 'mlp.gate_proj.weight', b.gate, true)
    put(n + 'mlp.up_proj.weight', b.up, true)
    put(n + 'mlp.down_proj.weight', b.down, true)
  })
  put('model.norm.weight', w.norm, false)
  return out
}

export function hfConfig(c: TinyLlamaConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    num_key_value_heads: c.heads,
    max_position_embeddings: c.maxPositions,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    hidden_act: 'silu',
    tie_word_embeddings: true,
    bos_token_id: c.bosId,
    eos_token_id: c.eosId,
    torch_dtype: 'float32'
  }
}

async function saveCheckpoint(w: Weights, c: TinyLlamaConfig, o: LmTrainOptions, step: number, loss: number | null): Promise<void> {
  const dir = join(o.out, `step${step}`)
  const tmp = `${dir}.partial`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  writeFileSync(
    join(tmp, 'config.json'),
    JSON.stringify({ ...hfConfig(c), featuretrace: { step, tokens_seen: step * o.batch * o.context, train_loss: loss } }, null, 2) + '\n'
  )
  await writeSafetensors(join(tmp, 'model.safetensors'), hfTensors(w), { format: 'pt' })
  for (const f of o.tokenizerFiles) copyFileSync(f, join(tmp, f.split('/').pop()!))
  rmSync(dir, { recursive: true, force: true })
  renameSync(tmp, dir)
}

/**
 * Trains on a token stream (documents joined, each starting with BOS), sampling windows of context+1
 * tokens at seeded random offsets. Returns the loss at every step.
 */
export async function trainTinyLlama(stream: Int32Array, c: TinyLlamaConfig, o: LmTrainOptions): Promise<number[]> {
  if (stream.length < o.context + 2) throw new Error(`The token stream (${stream.length} tokens) is shorter than one training window.`)
  const rng = new Rng(o.seed)
  const w = initWeights(c, rng)
  const vars = allVariables(w)
  const opt = tf.train.adam(o.lr, 0.9, 0.95, 1e-8)
  const ctx = { mask: causalMask(o.context), rope: ropeTables(o.context, c.hiddenSize / c.heads, c.ropeTheta) }
  const losses: number[] = []
  if (!existsSync(o.out)) mkdirSync(o.out, { recursive: true })
  if (o.saveAt.includes(0)) await saveCheckpoint(w, c, o, 0, null)
  const batch = new Int32Array(o.batch * (o.context + 1))
  for (let step = 1; step <= o.steps; step++) {
    for (let b = 0; b < o.batch; b++) {
      const start = rng.int(stream.length - o.context - 1)
      batch.set(stream.subarray(start, start + o.context + 1), b * (o.context + 1))
    }
    // Linear warm-up, then cosine decay to a tenth of the peak.
    const decay = Math.min(1, Math.max(0, (step - o.warmup) / Math.max(1, o.steps - o.warmup)))
    ;(opt as unknown as { learningRate: number }).learningRate =
      step <= o.warmup ? (o.lr * step) / o.warmup : o.lr * (0.1 + 0.45 * (1 + Math.cos(Math.PI * decay)))
    const ids = tf.tensor2d(batch, [o.batch, o.context + 1], 'int32')
    const cost = opt.minimize(() => lossOf(w, c, ids, ctx), true, vars)!
    const loss = (await cost.data())[0]!
    cost.dispose()
    ids.dispose()
    if (!Number.isFinite(loss)) throw new Error(`Training diverged at step ${step} (loss ${loss}); lower the learning rate.`)
    losses.push(loss)
    o.onStep?.(step, loss)
    if (o.saveAt.includes(step)) await saveCheckpoint(w, c, o, step, loss)
  }
  ctx.mask.dispose()
  ctx.rope.cos.dispose()
  ctx.rope.sin.dispose()
  opt.dispose()
  for (const v of vars) v.dispose()
  return losses
}

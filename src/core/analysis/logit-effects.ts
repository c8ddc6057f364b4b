// Logit effects of SAE features: which tokens a feature's decoder direction most promotes and most suppresses
// when read straight through the model's head, as SAEDashboard and Neuronpedia compute them
// (W_dec[i] ⊙ γ_final · W_Uᵀ: the final norm's scale elementwise, no centring and no division by the norm).
import * as tf from '@tensorflow/tfjs-core'
import { UserError } from '../../shared/api'
import type { CheckpointFolder } from '../lm/checkpoint'
import { lmHeadName, weightPlanFor } from '../lm/model'
import { transpose } from '../matrix'
import type { OrtDenseProducts } from '../ort/engine'
import type { Scaling } from '../sae/scaling'

/** The part of a model's head that logit effects read: the final norm's scale and the unembedding. */
export interface LmHead {
  /** γ of the final LayerNorm / RMSNorm [d]. */
  gamma: Float32Array
  /**
   * W_Uᵀ [d, vocab] (columns are tokens; stored transposed once, as wasm's matMul with transposeB is ~30× slower):
   * a tensor on the tf backend (the caller disposes it, disposeLmHead), or for onnxruntime its row-major host copy.
   */
  unembeddingT: tf.Tensor2D | Float32Array
  vocab: number
  d: number
  /** The unembedding is the token embedding (tie_word_embeddings true). */
  tied: boolean
  /** Tensor names read, for messages and the UI. */
  names: { gamma: string; unembedding: string }
}

/** One feature's logit effects: the top tokens each way and a histogram over the whole vocabulary. */
export interface LogitEffects {
  /** Most promoted tokens, largest first: vocabulary id and effect (logit units per unit of feature activation). */
  positive: { token: number; value: number }[]
  /** Most suppressed tokens, most negative first. */
  negative: { token: number; value: number }[]
  /** Effects of every vocabulary token in equal-width bins between lo (the minimum) and hi (the maximum). */
  histogram: { lo: number; hi: number; counts: Float32Array }
}

/**
 * Reads γ_final and W_U from a checkpoint (the one parsed folder, its weight files); the unembedding is the
 * tensor lmHeadName names (transformers' tying rule). `where` 'host': W_Uᵀ is read and transposed on the host into
 * one array (for onnxruntime, made once per job), never entering tfjs. Returns `{ absent }`, a sentence for the user, when the
 * checkpoint has no head to read (weights saved from the base model without tying). Errors: as weightPlanFor and
 * CheckpointWeights.tensor.
 */
export async function readLmHead(checkpoint: CheckpointFolder, where: 'tensor' | 'host' = 'tensor'): Promise<LmHead | { absent: string }> {
  const { spec, folder } = checkpoint
  const weights = await checkpoint.weights()
  const plan = weightPlanFor(spec, weights.namesWithData(), folder)
  const found = lmHeadName(weights, spec, plan, folder)
  if ('missing' in found)
    return { absent: `${found.missing}: the weights were saved from the base model, so there is no unembedding to read logit effects from.` }
  const { name: head, tied } = found
  const { dModel: d, vocab } = spec
  const gammaT = await weights.tensor(plan.finalNorm, [d])
  const gamma = (await gammaT.data()) as Float32Array
  gammaT.dispose()
  let unembeddingT: tf.Tensor2D | Float32Array
  if (where === 'host') {
    // Read and transposed on the host: never the 2 × [vocab, d] a tfjs-wasm transpose needs at once in its heap.
    unembeddingT = transpose(await weights.float32(head, [vocab, d]), vocab, d)
  } else {
    const unembedding = await weights.tensor(head, [vocab, d])
    unembeddingT = tf.transpose(unembedding) as tf.Tensor2D
    unembedding.dispose()
  }
  return { gamma, unembeddingT, vocab, d, tied, names: { gamma: plan.finalNorm, unembedding: head } }
}

/** Frees the head's W_Uᵀ tensor, if it holds one (a host copy is left to the garbage collector). */
export function disposeLmHead(head: LmHead): void {
  if (!(head.unembeddingT instanceof Float32Array)) head.unembeddingT.dispose()
}

/**
 * The factor that carries one unit of an SAE's decoder output back to the model's residual units, given the input
 * scaling the SAE encodes with: 1/α for α·x (none, constant: exact); ‖x‖/α for the per-token norm scalings
 * (unit_norm, norm_rescale) and std(x) + 1e-5 for per-token layer norm, averaged over `rows` [rows, d] (the rows
 * the statistics read), since those factors vary from token to token.
 */
export function residualUnitFactor(scaling: Scaling, rows: { sumNorm: number; sumStd: number; count: number }): number {
  switch (scaling.kind) {
    case 'none':
      return 1
    case 'constant':
      return 1 / scaling.factor
    case 'unit_norm':
      return rows.count > 0 ? rows.sumNorm / rows.count : 1
    case 'norm_rescale':
      return rows.count > 0 ? rows.sumNorm / rows.count / scaling.factor : 1
    case 'layer_norm':
    case 'std_layer_norm':
      return rows.count > 0 ? rows.sumStd / rows.count : 1
  }
}

/** Adds a block of rows [count, d] to the running sums residualUnitFactor averages (norm and Bessel std + 1e-5). */
export function accumulateRowScales(block: Float32Array, count: number, d: number, into: { sumNorm: number; sumStd: number; count: number }): void {
  for (let r = 0; r < count; r++) {
    let s = 0
    let m = 0
    for (let j = 0; j < d; j++) {
      const x = block[r * d + j]!
      s += x * x
      m += x
    }
    m /= d
    let v = 0
    for (let j = 0; j < d; j++) v += (block[r * d + j]! - m) ** 2
    into.sumNorm += Math.sqrt(s)
    into.sumStd += Math.sqrt(v / Math.max(d - 1, 1)) + 1e-5
    into.count++
  }
}

/**
 * Logit effects of every feature: E = (scale · W_dec) ⊙ γ · W_Uᵀ, shape [n, vocab], in blocks of features. W_dec
 * is [n, d] row-major (SAELens orientation), `scale` the factor to residual units (residualUnitFactor). Keeps the
 * `top` largest and smallest per feature and a `bins`-bin histogram of all vocab effects. `onBlock` reports
 * progress (features done).
 * With `products` (the `ort` engine) and a host W_Uᵀ (readLmHead 'host'), the product runs on onnxruntime with every
 * core (OrtDenseProducts.product), in blocks whose [m, vocab] output stays within ~256 MB; the rows (W_dec · scale) ⊙ γ
 * are formed on the host in float32, rounding after each product as tfjs does. Otherwise tfjs computes it, in
 * blocks of ~64 MB of E.
 * Errors: W_dec's size does not match n × head.d; a host W_Uᵀ without `products`.
 */
export async function computeLogitEffects(
  Wdec: Float32Array,
  n: number,
  head: LmHead,
  opts: { scale?: number; top?: number; bins?: number; onBlock?: (done: number) => void; products?: OrtDenseProducts | null } = {}
): Promise<LogitEffects[]> {
  const { d, vocab } = head
  if (Wdec.length !== n * d) throw new UserError(`The SAE's W_dec holds ${Wdec.length} values but the model's head needs [${n}, ${d}] (d_in = d_model).`)
  const top = Math.min(opts.top ?? 10, vocab)
  const bins = opts.bins ?? 40
  const scale = opts.scale ?? 1
  const out: LogitEffects[] = []
  const wuT = head.unembeddingT
  let product: (s: number, m: number) => Promise<Float32Array>
  let block: number
  let release = (): void => {}
  if (wuT instanceof Float32Array) {
    const products = opts.products
    if (!products) throw new Error('computeLogitEffects: a host W_Uᵀ needs the onnxruntime products (opts.products).')
    block = Math.max(1, Math.floor((256 * 2 ** 20) / (4 * vocab)))
    const rows = new Float32Array(Math.min(block, n) * d)
    const scale32 = Math.fround(scale)
    product = (s, m) => {
      const x = rows.subarray(0, m * d)
      for (let r = 0; r < m; r++)
        for (let j = 0; j < d; j++) {
          x[r * d + j] = Wdec[(s + r) * d + j]! * scale32
          x[r * d + j] = x[r * d + j]! * head.gamma[j]!
        }
      return products.product(x, wuT, null, d, vocab)
    }
  } else {
    const gamma = tf.tensor1d(head.gamma)
    release = () => gamma.dispose()
    block = Math.max(1, Math.floor((64 * 2 ** 20) / (4 * vocab)))
    product = async (s, m) => {
      const effects = tf.tidy(() => tf.matMul(tf.mul(tf.mul(tf.tensor2d(Wdec.subarray(s * d, (s + m) * d), [m, d]), scale), gamma), wuT))
      const all = (await effects.data()) as Float32Array
      effects.dispose()
      return all
    }
  }
  try {
    for (let s = 0; s < n; s += block) {
      const m = Math.min(block, n - s)
      const all = await product(s, m)
      for (let r = 0; r < m; r++) out.push(summarise(all.subarray(r * vocab, (r + 1) * vocab), top, bins))
      opts.onBlock?.(s + m)
    }
  } finally {
    release()
  }
  return out
}

/** One feature's row of effects [vocab]: the `top` largest and smallest (one pass, sorted insertion) and the histogram. */
function summarise(row: Float32Array, top: number, bins: number): LogitEffects {
  const best: { token: number; value: number }[] = []
  const worst: { token: number; value: number }[] = []
  let lo = Infinity
  let hi = -Infinity
  for (let j = 0; j < row.length; j++) {
    const x = row[j]!
    if (x < lo) lo = x
    if (x > hi) hi = x
    if (best.length < top || x > best[best.length - 1]!.value) insert(best, { token: j, value: x }, top, (a, b) => a > b)
    if (worst.length < top || x < worst[worst.length - 1]!.value) insert(worst, { token: j, value: x }, top, (a, b) => a < b)
  }
  const counts = new Float32Array(bins)
  const width = (hi - lo) / bins
  for (const x of row) counts[width > 0 ? Math.min(bins - 1, Math.floor((x - lo) / width)) : 0]!++
  return { positive: best, negative: worst, histogram: { lo, hi, counts } }
}

/** Inserts into a list kept sorted by `before` (ties: the earlier token first) and at most `max` long. */
function insert(list: { token: number; value: number }[], e: { token: number; value: number }, max: number, before: (a: number, b: number) => boolean): void {
  let i = list.length
  while (i > 0 && before(e.value, list[i - 1]!.value)) i--
  list.splice(i, 0, e)
  if (list.length > max) list.pop()
}

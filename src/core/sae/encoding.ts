// How an SAE turns a token's activation into latent activations, for every SAE FeatureTrace reads: its own
// TopK SAEs and those imported from SAELens, sparsify, Gemma Scope and llm-jp-sae. The rule is kept from
// the source library so the activations computed here equal the library's own.
import * as tf from '@tensorflow/tfjs-core'
import { scaleInputs, type Scaling } from './scaling'
import { disposeParams, encode, type Encoded, type SaeTensors } from './topk'

export const ARCHITECTURES = ['topk', 'jumprelu', 'standard'] as const
export type Architecture = (typeof ARCHITECTURES)[number]

export interface EncodingRule {
  /**
   * topk: the k largest of ReLU(pre); jumprelu: ReLU(pre) where pre > threshold (per latent); standard:
   * ReLU(pre) (SAELens' "standard" SAE, every positive latent fires).
   */
  architecture: Architecture
  /** TopK's k; null for JumpReLU and standard. */
  k: number | null
  /** Subtract b_dec from the (scaled) input before the encoder (SAELens' apply_b_dec_to_input). */
  applyBDecToInput: boolean
  scaling: Scaling
}

/**
 * Most (value, index) pairs a token's code can hold: k for TopK; every latent for JumpReLU and standard
 * SAEs, whose number of active latents varies (SAELens #494: ~500 of 1024 at the initial threshold). The
 * codes of a batch are as wide as its busiest token needs (see SaeEncoder.encode), never capped.
 */
export function codeWidth(rule: Pick<EncodingRule, 'architecture' | 'k'>, n: number): number {
  return rule.architecture === 'topk' ? Math.min(rule.k!, n) : n
}

export interface SaeWeights {
  W_enc: Float32Array
  W_dec: Float32Array
  b_enc: Float32Array
  b_dec: Float32Array
  /** JumpReLU only. */
  threshold?: Float32Array | null
}

/** An SAE's tensors plus its encoding rule; dispose() when done. */
export class SaeEncoder {
  readonly p: SaeTensors
  readonly threshold: tf.Tensor1D | null
  /** Most (value, index) pairs per token encode() can return (k for TopK, n otherwise). */
  readonly maxWidth: number

  constructor(
    readonly d: number,
    readonly n: number,
    weights: SaeWeights,
    readonly rule: EncodingRule
  ) {
    this.p = {
      Wenc: tf.variable(tf.tensor2d(weights.W_enc, [d, n])),
      benc: tf.variable(tf.tensor1d(weights.b_enc)),
      Wdec: tf.variable(tf.tensor2d(weights.W_dec, [n, d])),
      bdec: tf.variable(tf.tensor1d(weights.b_dec))
    }
    this.threshold = rule.architecture === 'jumprelu' ? tf.tensor1d(weights.threshold!) : null
    this.maxWidth = codeWidth(rule, n)
  }

  /**
   * Codes of raw (unscaled) activations x [rows, d]: values and indices [rows, w], largest first, 0 where
   * inactive. w is k for TopK; for JumpReLU and standard SAEs it is the most latents any row of this batch
   * fires (at least 1), so every active latent is kept, however many.
   */
  encode(x: tf.Tensor2D): Encoded {
    const scaled = scaleInputs(x, this.rule.scaling)
    // FeatureTrace's own SAEs take the same path as training.
    if (this.rule.architecture === 'topk' && this.rule.applyBDecToInput) {
      const codes = encode(this.p, scaled, this.maxWidth)
      scaled.dispose()
      return codes
    }
    const act = tf.tidy(() => {
      const input = this.rule.applyBDecToInput ? tf.sub(scaled, this.p.bdec) : scaled
      const pre = tf.add(tf.matMul(input, this.p.Wenc), this.p.benc)
      return this.threshold ? tf.mul(tf.relu(pre), tf.cast(tf.greater(pre, this.threshold), 'float32')) : tf.relu(pre)
    })
    scaled.dispose()
    let width = this.maxWidth
    if (this.rule.architecture !== 'topk') {
      const busiest = tf.tidy(() => tf.max(tf.sum(tf.cast(tf.greater(act, 0), 'int32'), 1)))
      width = Math.min(this.n, Math.max(1, busiest.dataSync()[0]!))
      busiest.dispose()
    }
    const { values, indices } = tf.topk(act, width)
    act.dispose()
    return { values: values as tf.Tensor2D, indices: indices as tf.Tensor2D }
  }

  /** Codes of `rows` rows of row-major activations, on the host: `width` (value, index) pairs per row. */
  async encodeRows(acts: Float32Array, rows: number): Promise<{ v: Float32Array; i: Int32Array; width: number }> {
    const x = tf.tensor2d(acts.subarray(0, rows * this.d), [rows, this.d])
    const { values, indices } = this.encode(x)
    const width = values.shape[1]
    const [v, i] = (await Promise.all([values.data(), indices.data()])) as [Float32Array, Int32Array]
    tf.dispose([x, values, indices])
    return { v, i, width }
  }

  /** Dense latent activations [rows, n] (for tests and exports). */
  async dense(acts: Float32Array, rows: number): Promise<Float32Array> {
    const { v, i, width: w } = await this.encodeRows(acts, rows)
    const out = new Float32Array(rows * this.n)
    for (let r = 0; r < rows; r++) for (let j = 0; j < w; j++) if (v[r * w + j]! > 0) out[r * this.n + i[r * w + j]!] = v[r * w + j]!
    return out
  }

  dispose(): void {
    disposeParams(this.p)
    this.threshold?.dispose()
  }
}

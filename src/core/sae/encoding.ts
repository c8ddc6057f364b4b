// How an SAE turns a token's activation into latent activations, for every SAE FeatureTrace reads: its own
// TopK SAEs and those imported from SAELens, sparsify, Gemma Scope and llm-jp-sae. The rule is kept from
// the source library so the activations computed here equal the library's own.
import * as tf from '@tensorflow/tfjs-core'
import { scaleInputs, type Scaling } from './scaling'
import { disposeParams, encode, type Encoded, type SaeTensors } from './topk'

export const ARCHITECTURES = ['topk', 'jumprelu'] as const
export type Architecture = (typeof ARCHITECTURES)[number]

export interface EncodingRule {
  /** topk: the k largest of ReLU(pre); jumprelu: ReLU(pre) where pre > threshold (per latent). */
  architecture: Architecture
  /** TopK's k; null for JumpReLU. */
  k: number | null
  /** Subtract b_dec from the (scaled) input before the encoder (SAELens' apply_b_dec_to_input). */
  applyBDecToInput: boolean
  scaling: Scaling
}

/**
 * Latents kept per token for a JumpReLU SAE, whose number of active latents varies. Consumers read codes
 * as a fixed number of (value, index) pairs per token; Gemma Scope's SAEs fire ~20–150 latents a token.
 */
export const JUMPRELU_CODE_WIDTH = 256

/** (value, index) pairs per token in an encoded batch: k for TopK, up to JUMPRELU_CODE_WIDTH for JumpReLU. */
export function codeWidth(rule: Pick<EncodingRule, 'architecture' | 'k'>, n: number): number {
  return rule.architecture === 'topk' ? Math.min(rule.k!, n) : Math.min(n, JUMPRELU_CODE_WIDTH)
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
  /** (value, index) pairs per token returned by encode(). */
  readonly width: number

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
    this.width = codeWidth(rule, n)
  }

  /** Codes of raw (unscaled) activations: `width` values per token, largest first, 0 where inactive. */
  encode(x: tf.Tensor2D): Encoded {
    const scaled = scaleInputs(x, this.rule.scaling)
    // FeatureTrace's own SAEs take the same path as training.
    if (this.rule.architecture === 'topk' && this.rule.applyBDecToInput) {
      const codes = encode(this.p, scaled, this.width)
      scaled.dispose()
      return codes
    }
    return tf.tidy(() => {
      const input = this.rule.applyBDecToInput ? tf.sub(scaled, this.p.bdec) : scaled
      const pre = tf.add(tf.matMul(input, this.p.Wenc), this.p.benc)
      const act = this.threshold ? tf.mul(tf.relu(pre), tf.cast(tf.greater(pre, this.threshold), 'float32')) : tf.relu(pre)
      const { values, indices } = tf.topk(act, this.width)
      scaled.dispose()
      return { values: values as tf.Tensor2D, indices: indices as tf.Tensor2D }
    })
  }

  /** Codes of `rows` rows of row-major activations, on the host. */
  async encodeRows(acts: Float32Array, rows: number): Promise<{ v: Float32Array; i: Int32Array }> {
    const x = tf.tensor2d(acts.subarray(0, rows * this.d), [rows, this.d])
    const { values, indices } = this.encode(x)
    const [v, i] = (await Promise.all([values.data(), indices.data()])) as [Float32Array, Int32Array]
    tf.dispose([x, values, indices])
    return { v, i }
  }

  /** Dense latent activations [rows, n] (for tests and exports). */
  async dense(acts: Float32Array, rows: number): Promise<Float32Array> {
    const { v, i } = await this.encodeRows(acts, rows)
    const out = new Float32Array(rows * this.n)
    for (let r = 0; r < rows; r++) for (let j = 0; j < this.width; j++) if (v[r * this.width + j]! > 0) out[r * this.n + i[r * this.width + j]!] = v[r * this.width + j]!
    return out
  }

  dispose(): void {
    disposeParams(this.p)
    this.threshold?.dispose()
  }
}

// Rotary position embeddings and the scaling variants transformers implements in modeling_rope_utils.py
// (linear, dynamic NTK, llama3, YaRN), computed in float64 and stored as float32 tables.
import * as tf from '@tensorflow/tfjs-core'
import type { RopeSpec } from './model-config'

export interface Rope {
  dims: number
  cos: tf.Tensor2D
  sin: tf.Tensor2D
}

/** transformers' default inverse frequencies: base^(−2i/dims) for i < dims/2. */
function defaultInvFreq(base: number, dims: number): Float64Array {
  const half = dims / 2
  const inv = new Float64Array(half)
  for (let i = 0; i < half; i++) inv[i] = 1 / base ** ((2 * i) / dims)
  return inv
}

/** YaRN's attention factor (Peng et al. 2023, §3.4), with DeepSeek's mscale / mscale_all_dim ratio when both are set. */
function yarnAttentionFactor(r: RopeSpec): number {
  if (r.attentionFactor !== null) return r.attentionFactor
  const mscale = (scale: number, m = 1): number => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1)
  if (r.mscale && r.mscaleAllDim) return mscale(r.factor, r.mscale) / mscale(r.factor, r.mscaleAllDim)
  return mscale(r.factor)
}

/**
 * Inverse frequencies [dims/2] and the factor cos and sin are multiplied by, for a sequence of T tokens,
 * as transformers' ROPE_INIT_FUNCTIONS compute them for a freshly loaded model. `dynamic` depends on T:
 * above max_position_embeddings the base grows (dynamic NTK), below it the default frequencies hold.
 */
export function ropeFrequencies(r: RopeSpec, T: number): { inv: Float64Array; scale: number } {
  const dims = r.dims
  switch (r.type) {
    case 'default':
      return { inv: defaultInvFreq(r.theta, dims), scale: 1 }
    case 'linear':
      return { inv: defaultInvFreq(r.theta, dims).map((f) => f / r.factor), scale: 1 }
    case 'dynamic': {
      const seqLen = Math.max(T, r.maxPositions)
      const base = r.theta * ((r.factor * seqLen) / r.maxPositions - (r.factor - 1)) ** (dims / (dims - 2))
      return { inv: defaultInvFreq(base, dims), scale: 1 }
    }
    case 'llama3': {
      const inv = defaultInvFreq(r.theta, dims)
      const lowWavelen = r.originalMaxPositions / r.lowFreqFactor
      const highWavelen = r.originalMaxPositions / r.highFreqFactor
      for (let i = 0; i < inv.length; i++) {
        const wavelen = (2 * Math.PI) / inv[i]!
        if (wavelen > lowWavelen) inv[i] = inv[i]! / r.factor
        else if (wavelen >= highWavelen) {
          const smooth = (r.originalMaxPositions / wavelen - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor)
          inv[i] = (1 - smooth) * (inv[i]! / r.factor) + smooth * inv[i]!
        }
      }
      return { inv, scale: 1 }
    }
    case 'yarn': {
      const correctionDim = (rotations: number): number => (dims * Math.log(r.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(r.theta))
      let low = correctionDim(r.betaFast)
      let high = correctionDim(r.betaSlow)
      if (r.truncate) {
        low = Math.floor(low)
        high = Math.ceil(high)
      }
      low = Math.max(low, 0)
      high = Math.min(high, dims - 1)
      if (low === high) high += 0.001 // transformers' guard against a zero-width ramp
      const inv = new Float64Array(dims / 2)
      for (let i = 0; i < inv.length; i++) {
        const pos = r.theta ** ((2 * i) / dims)
        const ramp = Math.min(Math.max((i - low) / (high - low), 0), 1)
        const extrapolation = 1 - ramp
        inv[i] = (1 / (r.factor * pos)) * (1 - extrapolation) + (1 / pos) * extrapolation
      }
      return { inv, scale: yarnAttentionFactor(r) }
    }
  }
}

function tables(T: number, inv: Float64Array, scale: number): Rope {
  const half = inv.length
  const dims = 2 * half
  const cos = new Float32Array(T * dims)
  const sin = new Float32Array(T * dims)
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = t * inv[i]!
      cos[t * dims + i] = cos[t * dims + i + half] = Math.cos(angle) * scale
      sin[t * dims + i] = sin[t * dims + i + half] = Math.sin(angle) * scale
    }
  }
  return { dims, cos: tf.tensor2d(cos, [T, dims]), sin: tf.tensor2d(sin, [T, dims]) }
}

/** cos/sin tables [T, dims] in the rotate-half layout for a model's RoPE setting and a sequence of T tokens. */
export function ropeTablesFor(r: RopeSpec, T: number): Rope {
  const { inv, scale } = ropeFrequencies(r, T)
  return tables(T, inv, scale)
}

/** Plain RoPE tables [T, dims] (base period `base`), as the demo model's training uses. */
export function ropeTables(T: number, dims: number, base: number): Rope {
  return tables(T, defaultInvFreq(base, dims), 1)
}

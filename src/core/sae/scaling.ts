// Input scaling applied to every token before the SAE sees it (and again at inference).
import * as tf from '@tensorflow/tfjs-core'
import { INPUT_SCALINGS, type InputScaling } from './config'

/**
 * Input scalings: the ones FeatureTrace trains with, and the ones imported SAEs use. 'layer_norm' (ours)
 * and 'std_layer_norm' (an imported SAELens "layer_norm") are one formula: (x − mean) / (std with Bessel's
 * correction + 1e-5), as OpenAI's and SAELens' code compute it. SAELens' "constant_norm_rescale": x · √d / ‖x‖.
 */
export type ScalingKind = InputScaling | 'std_layer_norm' | 'norm_rescale'

export interface Scaling {
  kind: ScalingKind
  /** For 'constant': the factor every activation is multiplied by; for 'norm_rescale': the target norm (√d). */
  factor: number
}

/** Scalings a TopK SAE can be trained (or warm-started) with here. */
export function isTrainingScaling(kind: ScalingKind): kind is InputScaling {
  return (INPUT_SCALINGS as readonly string[]).includes(kind)
}

export function scaleInputs(x: tf.Tensor2D, s: Scaling): tf.Tensor2D {
  return tf.tidy(() => {
    switch (s.kind) {
      case 'none':
        return tf.clone(x)
      case 'unit_norm':
        return tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12)) as tf.Tensor2D
      case 'constant':
        return tf.mul(x, s.factor) as tf.Tensor2D
      // Gao et al.'s per-token layer norm exactly as their code (and SAELens) computes it, so an SAE trained
      // here with 'layer_norm' encodes the same in SAELens as here.
      case 'layer_norm':
      case 'std_layer_norm': {
        const d = x.shape[1]
        const centred = tf.sub(x, tf.mean(x, 1, true))
        const std = tf.sqrt(tf.div(tf.sum(tf.square(centred), 1, true), Math.max(d - 1, 1)))
        return tf.div(centred, tf.add(std, 1e-5)) as tf.Tensor2D
      }
      case 'norm_rescale':
        return tf.mul(x, tf.div(s.factor, tf.norm(x, 'euclidean', 1, true))) as tf.Tensor2D
    }
  })
}

/**
 * Undoes scaleInputs on an output in the scaled space (an SAE's reconstruction x̂ of scaleInputs(x, s)), given the
 * raw rows x it was computed from, both [rows, d], as SAELens' run_time_activation_norm_fn_out does: constant
 * x̂ / factor; unit norm x̂ · ‖x‖; norm rescale (constant_norm_rescale) x̂ · ‖x‖ / factor; layer norm x̂ · std(x) + mean(x)
 * (std with Bessel's correction, without the 1e-5 the input side adds, as SAELens' run_time_activation_ln_out).
 */
export function unscaleOutputs(xhat: tf.Tensor2D, x: tf.Tensor2D, s: Scaling): tf.Tensor2D {
  return tf.tidy(() => {
    switch (s.kind) {
      case 'none':
        return tf.clone(xhat)
      case 'constant':
        return tf.div(xhat, s.factor) as tf.Tensor2D
      case 'unit_norm':
        return tf.mul(xhat, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12)) as tf.Tensor2D
      case 'norm_rescale':
        return tf.mul(xhat, tf.div(tf.norm(x, 'euclidean', 1, true), s.factor)) as tf.Tensor2D
      case 'layer_norm':
      case 'std_layer_norm': {
        const d = x.shape[1]
        const mu = tf.mean(x, 1, true)
        const std = tf.sqrt(tf.div(tf.sum(tf.square(tf.sub(x, mu)), 1, true), Math.max(d - 1, 1)))
        return tf.add(tf.mul(xhat, std), mu) as tf.Tensor2D
      }
    }
  })
}

/** The constant that brings the mean token norm to √d (measured on the initialisation sample). */
export function constantFactor(sample: Float32Array, d: number): number {
  const rows = sample.length / d
  let total = 0
  for (let r = 0; r < rows; r++) {
    let s = 0
    for (let j = 0; j < d; j++) s += sample[r * d + j]! ** 2
    total += Math.sqrt(s)
  }
  const mean = total / rows
  return mean > 0 ? Math.sqrt(d) / mean : 1
}

/**
 * Geometric median by Weiszfeld's iteration (≤ maxIter iterations, stops when the point moves less than
 * tol relative to its norm), in float64 over row-major rows.
 */
export function geometricMedian(x: Float32Array, d: number, maxIter = 100, tol = 1e-5): Float64Array {
  const rows = x.length / d
  const y = new Float64Array(d)
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) y[j]! += x[r * d + j]! / rows
  const next = new Float64Array(d)
  for (let it = 0; it < maxIter; it++) {
    next.fill(0)
    let wsum = 0
    for (let r = 0; r < rows; r++) {
      let dist = 0
      for (let j = 0; j < d; j++) dist += (x[r * d + j]! - y[j]!) ** 2
      const w = 1 / Math.max(Math.sqrt(dist), 1e-12)
      wsum += w
      for (let j = 0; j < d; j++) next[j]! += w * x[r * d + j]!
    }
    let move = 0
    let norm = 0
    for (let j = 0; j < d; j++) {
      next[j]! /= wsum
      move += (next[j]! - y[j]!) ** 2
      norm += next[j]! ** 2
    }
    y.set(next)
    if (Math.sqrt(move) < tol * Math.max(1, Math.sqrt(norm))) break
  }
  return y
}

export function mean(x: Float32Array, d: number): Float64Array {
  const rows = x.length / d
  const m = new Float64Array(d)
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) m[j]! += x[r * d + j]! / rows
  return m
}

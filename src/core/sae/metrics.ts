// Held-out evaluation of an SAE, in its input space (after input scaling).
import * as tf from '@tensorflow/tfjs-core'
import { scaleInputs, type Scaling } from './scaling'
import { decodeSparse, encode, type SaeTensors } from './topk'

export interface EvalMetrics {
  /** Pooled fraction of variance unexplained: Σ‖x − x̂‖² / Σ‖x − mean(x)‖². */
  fvu: number
  /** 1 − fvu. */
  explainedVariance: number
  /** Mean cosine(x, x̂) over rows. */
  cosine: number
  /** Mean number of positive active latents per token. */
  l0: number
  /** Latents that did not fire in the dead window at the end of training. */
  deadFraction: number
  rows: number
  /** Per-latent firing frequency on the evaluation rows. */
  density: Float32Array
  /** True when there were too few rows to hold any out and training rows were used. */
  onTrainingRows: boolean
}

const CHUNK = 1024

export async function evaluate(
  p: SaeTensors,
  scaling: Scaling,
  k: number,
  data: Float32Array,
  d: number,
  deadFraction: number,
  onTrainingRows: boolean
): Promise<EvalMetrics> {
  const rows = data.length / d
  const n = p.Wdec.shape[0]!
  // Pass 1: the pooled mean of the (scaled) inputs.
  const sum = new Float64Array(d)
  const chunks: tf.Tensor2D[] = []
  for (let r = 0; r < rows; r += CHUNK) {
    const m = Math.min(CHUNK, rows - r)
    const x = tf.tidy(() => scaleInputs(tf.tensor2d(data.subarray(r * d, (r + m) * d), [m, d]), scaling))
    chunks.push(x)
    const s = tf.sum(x, 0)
    const v = await s.data()
    s.dispose()
    for (let j = 0; j < d; j++) sum[j]! += v[j]!
  }
  const mu = tf.tensor1d(Float32Array.from(sum, (s) => s / rows))
  let sse = 0
  let sst = 0
  let cos = 0
  let active = 0
  const counts = new Float64Array(n)
  for (const x of chunks) {
    const { values, indices } = encode(p, x, k)
    const xhat = decodeSparse(p.Wdec, values, indices, p.bdec)
    const [a, b, c, e] = tf.tidy(() => [
      tf.sum(tf.square(tf.sub(x, xhat))),
      tf.sum(tf.square(tf.sub(x, mu))),
      tf.sum(tf.div(tf.sum(tf.mul(x, xhat), 1), tf.maximum(tf.mul(tf.norm(x, 'euclidean', 1), tf.norm(xhat, 'euclidean', 1)), 1e-12))),
      tf.sum(tf.cast(tf.greater(values, 0), 'float32'))
    ])
    sse += (await a!.data())[0]!
    sst += (await b!.data())[0]!
    cos += (await c!.data())[0]!
    active += (await e!.data())[0]!
    const v = await values.data()
    const idx = await indices.data()
    for (let i = 0; i < v.length; i++) if (v[i]! > 0) counts[idx[i]!]!++
    tf.dispose([values, indices, xhat, a!, b!, c!, e!, x])
  }
  mu.dispose()
  const fvu = sst > 0 ? sse / sst : 0
  return {
    fvu,
    explainedVariance: 1 - fvu,
    cosine: cos / rows,
    l0: active / rows,
    deadFraction,
    rows,
    density: Float32Array.from(counts, (c) => c / rows),
    onTrainingRows
  }
}

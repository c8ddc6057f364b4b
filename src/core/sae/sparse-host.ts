// The same loss and gradients as lossAndGradients in topk.ts, with the k-sparse parts done in plain
// typed-array loops on the host. Measured on tfjs-wasm (d = 512, n = 8192, k = 32, batch 4096): gathering
// the B·k active decoder rows and the broadcast products over [B·k, d] take ~6 s per step in tfjs
// kernels, against well under a second here, because the loops never materialise [B·k, d] tensors.
// Only the dense encoder product and the top-k stay in tfjs. Used on the wasm and cpu backends; on the
// GPU backend the all-tfjs version keeps everything on the device.
import * as tf from '@tensorflow/tfjs-core'
import type { TrainConfig } from './config'
import { Adam, HostAdam, lossAndGradients, type Gradients, type Optimizer, type SaeTensors } from './topk'

export interface HostStep {
  grads: Gradients
  loss: tf.Scalar
  auxLoss: tf.Scalar
  fired: tf.Tensor1D
  l0: tf.Scalar
}

/** x̂ for the active latents, the residual's gradient pieces, and the encoder-side scatter, in one pass. */
function sparseTerms(
  x: Float32Array,
  xc: Float32Array,
  Wdec: Float32Array,
  v: Float32Array,
  idx: Int32Array,
  kk: number,
  d: number,
  gOut: (b: number) => Float32Array,
  gWdec: Float32Array,
  gWencT: Float32Array,
  gBenc: Float32Array
): void {
  const B = x.length / d
  for (let b = 0; b < B; b++) {
    const g = gOut(b)
    const xo = b * d
    for (let j = 0; j < kk; j++) {
      const a = v[b * kk + j]!
      if (a <= 0) continue
      const row = idx[b * kk + j]! * d
      let gv = 0
      for (let i = 0; i < d; i++) {
        gv += Wdec[row + i]! * g[i]!
        gWdec[row + i]! += a * g[i]!
      }
      gBenc[row / d]! += gv
      for (let i = 0; i < d; i++) gWencT[row + i]! += gv * xc[xo + i]!
    }
  }
}

function decodeInto(out: Float32Array, o: number, Wdec: Float32Array, v: Float32Array, idx: Int32Array, b: number, kk: number, d: number): void {
  for (let j = 0; j < kk; j++) {
    const a = v[b * kk + j]!
    if (a <= 0) continue
    const row = idx[b * kk + j]! * d
    for (let i = 0; i < d; i++) out[o + i]! += a * Wdec[row + i]!
  }
}

function totalVariance(x: Float32Array, d: number): number {
  const B = x.length / d
  const mean = new Float64Array(d)
  for (let b = 0; b < B; b++) for (let i = 0; i < d; i++) mean[i]! += x[b * d + i]!
  for (let i = 0; i < d; i++) mean[i]! /= B
  let s = 0
  for (let b = 0; b < B; b++) for (let i = 0; i < d; i++) s += (x[b * d + i]! - mean[i]!) ** 2
  return Math.max(s, 1e-30)
}

export async function lossAndGradientsHost(
  p: SaeTensors,
  xt: tf.Tensor2D,
  cfg: Pick<TrainConfig, 'k' | 'auxK' | 'auxAlpha'>,
  dead: tf.Tensor1D | null,
  deadCount: number
): Promise<HostStep> {
  const [B, d] = xt.shape
  const n = p.Wdec.shape[0]!
  const k = cfg.k
  const withAux = cfg.auxK > 0 && dead !== null && deadCount > 0
  const kAux = withAux ? Math.min(cfg.auxK, deadCount) : 0
  // Dense part in tfjs: pre-activations and the top-k (ReLU commutes with top-k, so it is applied to k values only).
  const dense = tf.tidy(() => {
    const pre = tf.add(tf.matMul(tf.sub(xt, p.bdec), p.Wenc), p.benc)
    const t = tf.topk(pre, k)
    const out: Record<string, tf.Tensor> = { values: tf.relu(t.values), indices: t.indices }
    if (withAux) {
      const a = tf.topk(tf.mul(tf.relu(pre), dead!), kAux)
      out.auxValues = a.values
      out.auxIndices = a.indices
    }
    return out
  })
  const top = { values: dense.values!, indices: dense.indices! }
  const aux = withAux ? { values: dense.auxValues!, indices: dense.auxIndices! } : null
  const [x, bdec, Wdec, v, idx] = (await Promise.all([xt.data(), p.bdec.data(), p.Wdec.data(), top.values.data(), top.indices.data()])) as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Int32Array
  ]
  const xc = new Float32Array(B * d)
  for (let b = 0; b < B; b++) for (let i = 0; i < d; i++) xc[b * d + i] = x[b * d + i]! - bdec[i]!

  const xhat = new Float32Array(B * d)
  for (let b = 0; b < B; b++) {
    xhat.set(bdec, b * d)
    decodeInto(xhat, b * d, Wdec, v, idx, b, k, d)
  }
  const denom = totalVariance(x, d)
  let sse = 0
  const gXhat = new Float32Array(B * d)
  for (let i = 0; i < B * d; i++) {
    const e = xhat[i]! - x[i]!
    sse += e * e
    gXhat[i] = (2 * e) / denom
  }
  const gWdec = new Float32Array(n * d)
  const gWencT = new Float32Array(n * d)
  const gBenc = new Float32Array(n)
  const gBdec = new Float32Array(d)
  for (let b = 0; b < B; b++) for (let i = 0; i < d; i++) gBdec[i]! += gXhat[b * d + i]!
  sparseTerms(x, xc, Wdec, v, idx, k, d, (b) => gXhat.subarray(b * d, (b + 1) * d), gWdec, gWencT, gBenc)

  let auxLoss = 0
  if (aux) {
    const [va, ia] = (await Promise.all([aux.values.data(), aux.indices.data()])) as [Float32Array, Int32Array]
    // The AuxK target is the residual e = x − x̂, held constant.
    const e = new Float32Array(B * d)
    for (let i = 0; i < B * d; i++) e[i] = x[i]! - xhat[i]!
    const ehat = new Float32Array(B * d)
    for (let b = 0; b < B; b++) decodeInto(ehat, b * d, Wdec, va, ia, b, kAux, d)
    const auxDenom = totalVariance(e, d)
    const gEhat = new Float32Array(B * d)
    let s = 0
    for (let i = 0; i < B * d; i++) {
      const r = ehat[i]! - e[i]!
      s += r * r
      gEhat[i] = (2 * cfg.auxAlpha * r) / auxDenom
    }
    auxLoss = s / auxDenom
    sparseTerms(x, xc, Wdec, va, ia, kAux, d, (b) => gEhat.subarray(b * d, (b + 1) * d), gWdec, gWencT, gBenc)
  }
  let active = 0
  const fired = new Float32Array(n)
  for (let i = 0; i < v.length; i++) {
    if (v[i]! > 0) {
      active++
      fired[idx[i]!] = 1
    }
  }
  tf.dispose([top.values, top.indices, ...(aux ? [aux.values, aux.indices] : [])])
  const grads = tf.tidy(() => {
    const benc = tf.tensor1d(gBenc)
    // b_dec also enters through the encoder input: ∂/∂b_dec of (x − b_dec)·W_enc.
    const bdecGrad = tf.sub(tf.tensor1d(gBdec), tf.reshape(tf.matMul(p.Wenc, tf.reshape(benc, [n, 1])), [d]))
    return { Wenc: tf.transpose(tf.tensor2d(gWencT, [n, d])), benc, Wdec: tf.tensor2d(gWdec, [n, d]), bdec: bdecGrad }
  })
  return { grads, loss: tf.scalar(sse / denom), auxLoss: tf.scalar(auxLoss), fired: tf.tensor1d(fired), l0: tf.scalar(active / B) }
}

/** The gradient implementation for a backend: host loops for wasm and cpu, all-tfjs on the GPU backend. */
export function gradientsFor(
  backend: string
): (p: SaeTensors, x: tf.Tensor2D, cfg: Pick<TrainConfig, 'k' | 'auxK' | 'auxAlpha'>, dead: tf.Tensor1D | null, deadCount: number) => Promise<HostStep> {
  return backend === 'tensorflow' ? async (...args) => lossAndGradients(...args) : lossAndGradientsHost
}

/** Adam for a backend: on the device for the GPU backend, on the host for wasm and cpu. */
export function optimizerFor(backend: string, p: SaeTensors, cfg: Pick<TrainConfig, 'adamBeta1' | 'adamBeta2' | 'adamEps'>): Optimizer {
  return backend === 'tensorflow' ? new Adam(p, cfg.adamBeta1, cfg.adamBeta2, cfg.adamEps) : new HostAdam(p, cfg.adamBeta1, cfg.adamBeta2, cfg.adamEps)
}

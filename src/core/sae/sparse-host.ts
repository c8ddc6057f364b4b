// The same loss and gradients as lossAndGradients in topk.ts, with the k-sparse parts done in plain
// typed-array loops on the host. Measured on tfjs-wasm (d = 512, n = 8192, k = 32, batch 4096): gathering
// the B·k active decoder rows and the broadcast products over [B·k, d] take ~6 s per step in tfjs
// kernels, against well under a second here, because the loops never materialise [B·k, d] tensors.
// Only the dense encoder product and the top-k run in an engine (SaeEncoderEngine): tfjs on the wasm and
// cpu backends, onnxruntime with every core on `ort`. On the GPU backend the all-tfjs version keeps
// everything on the device.
import * as tf from '@tensorflow/tfjs-core'
import { OrtSaeEncoder, type EncodedBatch } from '../ort/engine'
import type { BackendName } from '../tf/backend'
import type { TrainConfig } from './config'
import { Adam, HostAdam, hostValues, keepHostCopy, lossAndGradients, type Gradients, type Optimizer, type SaeTensors } from './topk'

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

/** A [rows, cols] row-major matrix transposed to [cols, rows], in 32 × 32 tiles (cache-friendly at n · d = 67M). */
function transposed(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length)
  const T = 32
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T)
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T)
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = a[r * cols + c]!
    }
  }
  return out
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

/**
 * The one place the dense part of the step runs: pre = (x − b_dec)·W_enc + b_enc over all n latents,
 * then the top k per row (ReLU applied to the k values) and, for AuxK, the top kAux of ReLU(pre)·dead.
 * Everything after it is the same host code whichever engine ran it.
 */
export interface SaeEncoderEngine {
  readonly name: 'tfjs' | 'ort'
  /** x and bdec are the host copies of xt [B, d] and p.bdec [d]. */
  encode(p: SaeTensors, xt: tf.Tensor2D, x: Float32Array, bdec: Float32Array, k: number, aux: { dead: tf.Tensor1D; k: number } | null): Promise<EncodedBatch>
}

/** The dense part in tfjs kernels (wasm, cpu): one matMul and tf.topk. */
export const tfjsEncoder: SaeEncoderEngine = {
  name: 'tfjs',
  async encode(p, xt, _x, _bdec, k, aux) {
    const dense = tf.tidy(() => {
      const pre = tf.add(tf.matMul(tf.sub(xt, p.bdec), p.Wenc), p.benc)
      const t = tf.topk(pre, k)
      const out: tf.Tensor[] = [tf.relu(t.values), t.indices]
      if (aux) {
        const a = tf.topk(tf.mul(tf.relu(pre), aux.dead), aux.k)
        out.push(a.values, a.indices)
      }
      return out
    })
    const data = await Promise.all(dense.map((t) => t.data()))
    tf.dispose(dense)
    return {
      values: data[0] as Float32Array,
      indices: data[1] as Int32Array,
      aux: aux ? { values: data[2] as Float32Array, indices: data[3] as Int32Array } : null
    }
  }
}

let ortEncoder: OrtSaeEncoder | null = null

/**
 * The dense part on onnxruntime with every core (core/ort/engine.ts). W_enc and b_enc are read out of the
 * tfjs backend once per step (tfjs-wasm's data() copies out of its heap; measured in bench/train.ts).
 */
export const ortEngine: SaeEncoderEngine = {
  name: 'ort',
  async encode(p, _xt, x, bdec, k, aux) {
    ortEncoder ??= new OrtSaeEncoder()
    const [wEnc, bEnc, dead] = (await Promise.all([p.Wenc.data(), p.benc.data(), aux ? aux.dead.data() : null])) as [
      Float32Array,
      Float32Array,
      Float32Array | null
    ]
    return ortEncoder.encode(x, bdec, wEnc, bEnc, k, aux ? { dead: dead!, k: aux.k } : null)
  }
}

export async function lossAndGradientsHost(
  p: SaeTensors,
  xt: tf.Tensor2D,
  cfg: Pick<TrainConfig, 'k' | 'auxK' | 'auxAlpha'>,
  dead: tf.Tensor1D | null,
  deadCount: number,
  engine: SaeEncoderEngine = tfjsEncoder
): Promise<HostStep> {
  const [B, d] = xt.shape
  const n = p.Wdec.shape[0]!
  const k = cfg.k
  const withAux = cfg.auxK > 0 && dead !== null && deadCount > 0
  const kAux = withAux ? Math.min(cfg.auxK, deadCount) : 0
  const [x, bdec, Wdec] = await Promise.all([xt.data() as Promise<Float32Array>, hostValues(p.bdec), hostValues(p.Wdec)])
  // ReLU commutes with top-k, so the engine applies it to the k values only.
  const enc = await engine.encode(p, xt, x, bdec, k, withAux ? { dead: dead!, k: kAux } : null)
  const v = enc.values
  const idx = enc.indices
  const aux = enc.aux
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
    const { values: va, indices: ia } = aux
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
  const gWenc = transposed(gWencT, n, d)
  const grads = tf.tidy(() => {
    const benc = tf.tensor1d(gBenc)
    // b_dec also enters through the encoder input: ∂/∂b_dec of (x − b_dec)·W_enc.
    const bdecGrad = tf.sub(tf.tensor1d(gBdec), tf.reshape(tf.matMul(p.Wenc, tf.reshape(benc, [n, 1])), [d]))
    return { Wenc: tf.tensor2d(gWenc, [d, n]), benc, Wdec: tf.tensor2d(gWdec, [n, d]), bdec: bdecGrad }
  })
  // HostAdam reads these back through hostValues instead of copying them out of tfjs again.
  keepHostCopy(grads.Wenc, gWenc)
  keepHostCopy(grads.Wdec, gWdec)
  keepHostCopy(grads.benc, gBenc)
  return { grads, loss: tf.scalar(sse / denom), auxLoss: tf.scalar(auxLoss), fired: tf.tensor1d(fired), l0: tf.scalar(active / B) }
}

/**
 * The gradient implementation for an engine: all-tfjs on the GPU backend; elsewhere the host loops, with
 * the dense encoder product on onnxruntime (`ort`) or in tfjs (wasm, cpu).
 */
export function gradientsFor(
  backend: BackendName
): (p: SaeTensors, x: tf.Tensor2D, cfg: Pick<TrainConfig, 'k' | 'auxK' | 'auxAlpha'>, dead: tf.Tensor1D | null, deadCount: number) => Promise<HostStep> {
  if (backend === 'tensorflow') return async (...args) => lossAndGradients(...args)
  const engine = backend === 'ort' ? ortEngine : tfjsEncoder
  return (p, x, cfg, dead, deadCount) => lossAndGradientsHost(p, x, cfg, dead, deadCount, engine)
}

/**
 * Adam (then W_dec's rows renormalised when cfg.decoderUnitNorm) for a backend: on the device for the GPU
 * backend, on the host for ort, wasm and cpu.
 */
export function optimizerFor(
  backend: BackendName,
  p: SaeTensors,
  cfg: Pick<TrainConfig, 'adamBeta1' | 'adamBeta2' | 'adamEps' | 'decoderUnitNorm'>
): Optimizer {
  const settings = { beta1: cfg.adamBeta1, beta2: cfg.adamBeta2, eps: cfg.adamEps, decoderUnitNorm: cfg.decoderUnitNorm }
  return backend === 'tensorflow' ? new Adam(p, settings) : new HostAdam(p, settings)
}

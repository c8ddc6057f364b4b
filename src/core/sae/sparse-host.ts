// The same loss and gradients as lossAndGradients in topk.ts, with the k-sparse parts done in plain
// typed-array loops on the host. Measured on tfjs-wasm (d = 512, n = 8192, k = 32, batch 4096): gathering
// the B·k active decoder rows and the broadcast products over [B·k, d] take ~6 s per step in tfjs
// kernels, against well under a second here, because the loops never materialise [B·k, d] tensors.
// The loops themselves (host-kernel-worker.ts) run on every core through host-kernel.ts's worker threads, over
// buffers in shared memory reused from step to step. Only the dense encoder product and the top-k run in an
// engine (SaeEncoderEngine): tfjs on the wasm and cpu backends, onnxruntime with every core on `ort`. On the
// GPU backend the all-tfjs version keeps everything on the device.
import * as tf from '@tensorflow/tfjs-core'
import { OrtSaeEncoder, type EncodedBatch } from '../ort/engine'
import type { BackendName } from '../tf/backend'
import type { TrainConfig } from './config'
import { evenRanges, hostKernel, HostKernel, sharedFloat32, weightedRanges, wholeShared } from './host-kernel'
import { BLOCK_SLOTS, TOKEN_BLOCK, type StepShared } from './host-kernel-worker'
import { Adam, forgetHostCopy, HostAdam, hostValues, keepHostCopy, lossAndGradients, type Gradients, type Optimizer, type SaeTensors } from './topk'

export interface HostStep {
  grads: Gradients
  loss: tf.Scalar
  auxLoss: tf.Scalar
  fired: tf.Tensor1D
  l0: tf.Scalar
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
 * The dense part on onnxruntime with every core (core/ort/engine.ts). W_enc and b_enc are HostAdam's host
 * copies, handed to onnxruntime in place (read out of tfjs only when nobody keeps one: data() copies).
 */
export const ortEngine: SaeEncoderEngine = {
  name: 'ort',
  async encode(p, _xt, x, bdec, k, aux) {
    ortEncoder ??= new OrtSaeEncoder()
    const [wEnc, bEnc, dead] = await Promise.all([hostValues(p.Wenc), hostValues(p.benc), aux ? (aux.dead.data() as Promise<Float32Array>) : null])
    return ortEncoder.encode(x, bdec, wEnc, bEnc, k, aux ? { dead: dead!, k: aux.k } : null)
  }
}

/**
 * FVU loss (+ α·AuxK) and its gradients with the sparse parts in host loops (host-kernel-worker.ts) on the
 * kernel's threads: the decoder forward and the residuals by token blocks, the scatter of the gradients over
 * the k active rows by latent ownership (each row sums its terms in token order whatever the split, so the
 * result does not depend on the number of threads), the sums over the batch per block of 32 tokens added in
 * block order. The dense encoder product and the top-k run in `engine`. x [B, d]; `dead` a 0/1 mask [n].
 * The gradients' host copies live in the kernel's buffers until its next step; the tensors are the caller's.
 */
export async function lossAndGradientsHost(
  p: SaeTensors,
  xt: tf.Tensor2D,
  cfg: Pick<TrainConfig, 'k' | 'auxK' | 'auxAlpha'>,
  dead: tf.Tensor1D | null,
  deadCount: number,
  engine: SaeEncoderEngine = tfjsEncoder,
  kernel: HostKernel = hostKernel()
): Promise<HostStep> {
  const [B, d] = xt.shape
  const n = p.Wdec.shape[0]!
  const k = cfg.k
  const withAux = cfg.auxK > 0 && dead !== null && deadCount > 0
  const kAux = withAux ? Math.min(cfg.auxK, deadCount) : 0
  const [x, bdec, Wdec] = await Promise.all([xt.data() as Promise<Float32Array>, hostValues(p.bdec), hostValues(p.Wdec)])
  // ReLU commutes with top-k, so the engine applies it to the k values only.
  const enc = await engine.encode(p, xt, x, bdec, k, withAux ? { dead: dead!, k: kAux } : null)
  // The previous step's gradients are about to be overwritten.
  for (const t of lastGradients.get(kernel) ?? []) forgetHostCopy(t)
  const buf = kernel.step(B, d, n, k, Math.max(cfg.auxK, kAux))
  buf.x.set(x)
  buf.bdec.set(bdec)
  buf.v.set(enc.values)
  buf.idx.set(enc.indices)
  if (enc.aux) {
    buf.va.set(enc.aux.values)
    buf.ia.set(enc.aux.indices)
  }
  let WdecShared = wholeShared(Wdec)
  if (!WdecShared) {
    buf.WdecCopy ??= sharedFloat32(n * d)
    buf.WdecCopy.set(Wdec)
    WdecShared = buf.WdecCopy.buffer as SharedArrayBuffer
  }
  const s: StepShared = { ...buf.shared, kAux, Wdec: WdecShared }
  const blocks = Math.ceil(B / TOKEN_BLOCK)
  const byBlocks = (op: 'decode' | 'variance', work: number): Promise<void> =>
    kernel.run(evenRanges(blocks, kernel.parts(work)).map(([lo, hi]) => ({ op, lo, hi, s })))

  await byBlocks('decode', B * d * (k + kAux + 4))
  const { colX, colErr, means, blockSums } = buf
  means.fill(0)
  for (let blk = 0; blk < blocks; blk++) {
    for (let i = 0; i < d; i++) {
      means[i]! += colX[blk * d + i]!
      means[d + i]! += colErr[blk * d + i]!
    }
  }
  const errSum = Float64Array.from(means.subarray(d))
  for (let i = 0; i < 2 * d; i++) means[i]! /= B
  await byBlocks('variance', B * d * (withAux ? 2 : 1))
  let sse = 0
  let auxSse = 0
  let varX = 0
  let varE = 0
  for (let blk = 0; blk < blocks; blk++) {
    sse += blockSums[blk * BLOCK_SLOTS]!
    auxSse += blockSums[blk * BLOCK_SLOTS + 1]!
    varX += blockSums[blk * BLOCK_SLOTS + 2]!
    varE += blockSums[blk * BLOCK_SLOTS + 3]!
  }
  const denom = Math.max(varX, 1e-30)
  // The AuxK target is the residual e = x − x̂, held constant; its variance is err's.
  const auxDenom = Math.max(varE, 1e-30)
  const scale = 2 / denom
  const auxScale = (2 * cfg.auxAlpha) / auxDenom
  const gBdec = Float32Array.from(errSum, (e) => scale * e)

  // Which latents fired, and how the scatter's rows are split: by the number of pairs each latent has.
  const { v, idx, va, ia, pairs } = buf
  pairs.fill(0)
  let active = 0
  for (let i = 0; i < B * k; i++) {
    if (v[i]! > 0) {
      active++
      pairs[idx[i]!]!++
    }
  }
  const fired = Float32Array.from(pairs, (c) => (c > 0 ? 1 : 0))
  for (let i = 0; i < B * kAux; i++) if (va[i]! > 0) pairs[ia[i]!]!++
  // The positive pairs grouped by latent, in token order within a latent, the main pairs first (a stable
  // counting sort): the scatter sums each latent's pairs while its rows stay in cache.
  const { order, offsets } = buf
  offsets[0] = 0
  for (let l = 0; l < n; l++) offsets[l + 1] = offsets[l]! + pairs[l]!
  const next = Int32Array.from(offsets.subarray(0, n))
  for (let i = 0; i < B * k; i++) if (v[i]! > 0) order[next[idx[i]!]!++] = i
  for (let i = 0; i < B * kAux; i++) if (va[i]! > 0) order[next[ia[i]!]!++] = B * k + i
  const ranges =
    kernel.parts(B * (k + kAux) * 2 * d + n * d) === 1
      ? [[0, n] as [number, number]]
      : weightedRanges(
          Array.from(pairs, (c) => 1 + 2 * c),
          kernel.threads
        )
  await kernel.run(ranges.map(([lo, hi]) => ({ op: 'scatter' as const, lo, hi, s, scale, auxScale })))

  // The cpu backend keeps the array a tensor is made from: it gets copies of the reused buffers.
  const own = tf.getBackend() === 'cpu' ? (a: Float32Array): Float32Array => a.slice() : (a: Float32Array): Float32Array => a
  const grads = tf.tidy(() => {
    const benc = tf.tensor1d(own(buf.gBenc))
    // b_dec also enters through the encoder input: ∂/∂b_dec of (x − b_dec)·W_enc.
    const bdecGrad = tf.sub(tf.tensor1d(gBdec), tf.reshape(tf.matMul(p.Wenc, tf.reshape(benc, [n, 1])), [d]))
    return { Wenc: tf.tensor2d(own(buf.gWenc), [d, n]), benc, Wdec: tf.tensor2d(own(buf.gWdec), [n, d]), bdec: bdecGrad }
  })
  // HostAdam reads these back through hostValues instead of copying them out of tfjs again.
  keepHostCopy(grads.Wenc, buf.gWenc)
  keepHostCopy(grads.Wdec, buf.gWdec)
  keepHostCopy(grads.benc, buf.gBenc)
  lastGradients.set(kernel, [grads.Wenc, grads.Wdec, grads.benc])
  return {
    grads,
    loss: tf.scalar(sse / denom),
    auxLoss: tf.scalar(withAux ? auxSse / auxDenom : 0),
    fired: tf.tensor1d(fired),
    l0: tf.scalar(active / B)
  }
}

/** The gradient tensors whose host copies are a kernel's buffers (forgotten before the buffers are reused). */
const lastGradients = new WeakMap<HostKernel, tf.Tensor[]>()

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

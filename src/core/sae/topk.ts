// The TopK SAE and its training step, with gradients written out by hand so they use the sparsity:
// only the encoder's forward product touches all n latents; the decoder forward and every backward
// product touch just the k active latents per token (gather + segment sums), where autodiff would
// run dense [B, n] × [n, d] products. Weights stay in the orientation whose products are plain
// matMuls (tfjs-wasm is ~10× slower with a transposed operand).
import * as tf from '@tensorflow/tfjs-core'
import type { TrainConfig } from './config'
import { hostKernel, HostKernel, sharedFloat32, wholeShared } from './host-kernel'

export interface SaeTensors {
  /** [d, n] */
  Wenc: tf.Variable
  /** [n] */
  benc: tf.Variable
  /** [n, d] */
  Wdec: tf.Variable
  /** [d] */
  bdec: tf.Variable
}

export const PARAM_NAMES = ['Wenc', 'benc', 'Wdec', 'bdec'] as const
export type ParamName = (typeof PARAM_NAMES)[number]

export interface StepStats {
  loss: number
  auxLoss: number
  l0: number
}

/** Encoded batch: the k active latents of each token. */
export interface Encoded {
  values: tf.Tensor2D
  indices: tf.Tensor2D
}

export function encode(p: SaeTensors, x: tf.Tensor2D, k: number): Encoded {
  return tf.tidy(() => {
    const pre = tf.add(tf.matMul(tf.sub(x, p.bdec), p.Wenc), p.benc)
    const { values, indices } = tf.topk(tf.relu(pre), k)
    return { values: values as tf.Tensor2D, indices: indices as tf.Tensor2D }
  })
}

/** x̂ = Σ_j v_j W_dec[i_j] (+ b_dec), from gathered decoder rows. */
export function decodeSparse(Wdec: tf.Tensor, values: tf.Tensor2D, indices: tf.Tensor2D, bdec?: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, k] = values.shape
    const d = Wdec.shape[1]!
    const rows = tf.reshape(tf.gather(Wdec, tf.reshape(indices, [-1])), [B, k, d])
    const out = tf.sum(tf.mul(rows, tf.expandDims(values, 2)), 1) as tf.Tensor2D
    return bdec ? tf.add(out, bdec) : out
  })
}

/**
 * out[idx[i]] += values[i]. Built on scatterND, which sums duplicate indices and, unlike
 * unsortedSegmentSum, has a kernel on every backend (wasm included).
 */
export function segmentSum(values: tf.Tensor, idx: tf.Tensor1D, n: number): tf.Tensor {
  return tf.scatterND(tf.expandDims(idx, 1), values, [n, ...values.shape.slice(1)])
}

/** Σ‖x − mean_batch(x)‖²: the denominator of the fraction of variance unexplained. */
function totalVariance(x: tf.Tensor2D): tf.Scalar {
  return tf.sum(tf.square(tf.sub(x, tf.mean(x, 0, true))))
}

export interface Gradients {
  Wenc: tf.Tensor
  benc: tf.Tensor
  Wdec: tf.Tensor
  bdec: tf.Tensor
}

/**
 * Loss (FVU + α·AuxK) and its gradients for one batch. `dead` is a 0/1 mask [n] of latents that have
 * not fired for deadAfterTokens (AuxK reconstructs the residual from the top auxK of them).
 * Returns tensors the caller owns.
 */
export function lossAndGradients(
  p: SaeTensors,
  x: tf.Tensor2D,
  cfg: Pick<TrainConfig, 'k' | 'auxK' | 'auxAlpha'>,
  dead: tf.Tensor1D | null,
  deadCount: number
): { grads: Gradients; loss: tf.Scalar; auxLoss: tf.Scalar; fired: tf.Tensor1D; l0: tf.Scalar } {
  return tf.tidy(() => {
    const [B, d] = x.shape
    const n = p.Wdec.shape[0]!
    const xc = tf.sub(x, p.bdec) as tf.Tensor2D
    const pre = tf.add(tf.matMul(xc, p.Wenc), p.benc) as tf.Tensor2D
    const act = tf.relu(pre) as tf.Tensor2D
    const { values, indices } = tf.topk(act, cfg.k)
    const v = values as tf.Tensor2D
    const flat = tf.reshape(indices, [-1]) as tf.Tensor1D
    const rows = tf.reshape(tf.gather(p.Wdec, flat), [B, cfg.k, d])
    const xhat = tf.add(tf.sum(tf.mul(rows, tf.expandDims(v, 2)), 1), p.bdec) as tf.Tensor2D
    const err = tf.sub(xhat, x)
    const denom = tf.maximum(totalVariance(x), 1e-30)
    const loss = tf.div(tf.sum(tf.square(err)), denom) as tf.Scalar
    const gXhat = tf.div(tf.mul(err, 2), denom) as tf.Tensor2D

    // Decoder side: x̂ = Σ v·W_dec[i] + b_dec.
    let gBdec: tf.Tensor = tf.sum(gXhat, 0)
    const gV = tf.mul(tf.sum(tf.mul(rows, tf.expandDims(gXhat, 1)), 2), tf.cast(tf.greater(v, 0), 'float32'))
    let gWdec: tf.Tensor = segmentSum(tf.reshape(tf.mul(tf.expandDims(v, 2), tf.expandDims(gXhat, 1)), [B * cfg.k, d]), flat, n)
    // Encoder side, only where a latent was selected and positive: pre = (x − b_dec)·W_enc + b_enc.
    let gPreFlat: tf.Tensor = tf.reshape(gV, [-1])
    let encRows: tf.Tensor = tf.reshape(tf.mul(tf.expandDims(gV, 2), tf.expandDims(xc, 1)), [B * cfg.k, d])
    let segIdx: tf.Tensor1D = flat

    let auxLoss: tf.Scalar = tf.scalar(0)
    if (cfg.auxK > 0 && dead && deadCount > 0) {
      const kAux = Math.min(cfg.auxK, deadCount)
      const e = tf.neg(err) as tf.Tensor2D // the residual x − x̂, treated as a constant
      const aux = tf.topk(tf.mul(act, dead), kAux)
      const va = aux.values as tf.Tensor2D
      const flatA = tf.reshape(aux.indices, [-1]) as tf.Tensor1D
      const rowsA = tf.reshape(tf.gather(p.Wdec, flatA), [B, kAux, d])
      const ehat = tf.sum(tf.mul(rowsA, tf.expandDims(va, 2)), 1)
      const auxErr = tf.sub(ehat, e)
      const auxDenom = tf.maximum(totalVariance(e), 1e-30)
      auxLoss = tf.div(tf.sum(tf.square(auxErr)), auxDenom) as tf.Scalar
      const gEhat = tf.div(tf.mul(auxErr, 2 * cfg.auxAlpha), auxDenom) as tf.Tensor2D
      const gVa = tf.mul(tf.sum(tf.mul(rowsA, tf.expandDims(gEhat, 1)), 2), tf.cast(tf.greater(va, 0), 'float32'))
      gWdec = tf.add(gWdec, segmentSum(tf.reshape(tf.mul(tf.expandDims(va, 2), tf.expandDims(gEhat, 1)), [B * kAux, d]), flatA, n))
      gPreFlat = tf.concat([gPreFlat, tf.reshape(gVa, [-1])])
      encRows = tf.concat([encRows, tf.reshape(tf.mul(tf.expandDims(gVa, 2), tf.expandDims(xc, 1)), [B * kAux, d])])
      segIdx = tf.concat([segIdx, flatA])
    }
    const gBenc = segmentSum(gPreFlat, segIdx, n)
    const gWencT = segmentSum(encRows, segIdx, n)
    // b_dec also enters through the encoder input: ∂/∂b_dec of (x − b_dec)·W_enc.
    gBdec = tf.sub(gBdec, tf.reshape(tf.matMul(p.Wenc, tf.reshape(gBenc, [n, 1])), [d]))
    const positive = tf.cast(tf.greater(v, 0), 'float32')
    const fired = tf.greater(segmentSum(tf.reshape(positive, [-1]), flat, n), 0)
    return {
      grads: { Wenc: tf.transpose(gWencT), benc: gBenc, Wdec: gWdec, bdec: gBdec },
      loss,
      auxLoss,
      fired: tf.cast(fired, 'float32') as tf.Tensor1D,
      l0: tf.div(tf.sum(positive), B) as tf.Scalar
    }
  })
}

/** Removes from each decoder row's gradient its component along the (unit) row. */
export function removeParallel(gWdec: tf.Tensor, Wdec: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sub(gWdec, tf.mul(tf.sum(tf.mul(gWdec, Wdec), 1, true), Wdec)))
}

export function unitRows(W: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.div(W, tf.maximum(tf.norm(W, 'euclidean', 1, true), 1e-12)))
}

export type Moments = Record<ParamName, { m: Float32Array; v: Float32Array }>

/**
 * Adam with bias correction (the interface both implementations share), followed, when `decoderUnitNorm`
 * was asked for, by the renormalisation of W_dec's rows to unit norm (as sparsify does after each step).
 */
export interface Optimizer {
  apply(p: SaeTensors, g: Gradients, t: number, lr: number): Promise<void>
  exportMoments(): Promise<Moments>
  importMoments(name: ParamName, m: Float32Array, v: Float32Array): void
  dispose(): void
}

export interface AdamSettings {
  beta1: number
  beta2: number
  eps: number
  /** Renormalise W_dec's rows to unit norm after each update. */
  decoderUnitNorm: boolean
}

/**
 * Host copies of tensors' values, keyed by the tfjs dataId they were written to. HostAdam keeps one per
 * parameter, so the host step and the ort engine read the parameters without copying them out of
 * tfjs-wasm's heap. A tensor assigned anew by anyone else has another dataId and is read with data().
 */
const hostCopies = new WeakMap<object, Float32Array>()

/**
 * Records `values` as the host copy of tensor t (which must hold exactly these values, as a tensor just
 * made from them does). The array must not be changed afterwards except by its owner (HostAdam, which
 * re-registers after each update).
 */
export function keepHostCopy(t: tf.Tensor, values: Float32Array): void {
  hostCopies.set(t.dataId, values)
}

/** Drops t's host copy (its array is about to be reused for other values). */
export function forgetHostCopy(t: tf.Tensor): void {
  hostCopies.delete(t.dataId)
}

/** A tensor's values on the host: the registered host copy when there is one, else data(). Read-only. */
export async function hostValues(t: tf.Tensor): Promise<Float32Array> {
  return hostCopies.get(t.dataId) ?? ((await t.data()) as Float32Array)
}

/** Adam in tfjs kernels: the moments live on the device beside the parameters (GPU backend). */
export class Adam implements Optimizer {
  readonly m: Record<ParamName, tf.Variable>
  readonly v: Record<ParamName, tf.Variable>

  constructor(
    p: SaeTensors,
    private readonly settings: AdamSettings
  ) {
    const zeros = (t: tf.Tensor): tf.Variable => tf.variable(tf.zerosLike(t))
    this.m = { Wenc: zeros(p.Wenc), benc: zeros(p.benc), Wdec: zeros(p.Wdec), bdec: zeros(p.bdec) }
    this.v = { Wenc: zeros(p.Wenc), benc: zeros(p.benc), Wdec: zeros(p.Wdec), bdec: zeros(p.bdec) }
  }

  /** One update at step t (1-based) with learning rate lr. */
  async apply(p: SaeTensors, g: Gradients, t: number, lr: number): Promise<void> {
    const { beta1, beta2, eps } = this.settings
    const c1 = 1 - beta1 ** t
    const c2 = 1 - beta2 ** t
    for (const name of PARAM_NAMES) {
      tf.tidy(() => {
        const m = tf.add(tf.mul(this.m[name], beta1), tf.mul(g[name], 1 - beta1))
        const v = tf.add(tf.mul(this.v[name], beta2), tf.mul(tf.square(g[name]), 1 - beta2))
        this.m[name].assign(m)
        this.v[name].assign(v)
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), eps))
        p[name].assign(tf.sub(p[name], tf.mul(update, lr)))
      })
    }
    if (this.settings.decoderUnitNorm) p.Wdec.assign(tf.tidy(() => unitRows(p.Wdec)))
  }

  async exportMoments(): Promise<Moments> {
    const out = {} as Moments
    for (const name of PARAM_NAMES) out[name] = { m: (await this.m[name].data()) as Float32Array, v: (await this.v[name].data()) as Float32Array }
    return out
  }

  importMoments(name: ParamName, m: Float32Array, v: Float32Array): void {
    this.m[name].assign(tf.tensor(m, this.m[name].shape))
    this.v[name].assign(tf.tensor(v, this.v[name].shape))
  }

  dispose(): void {
    for (const name of PARAM_NAMES) {
      this.m[name].dispose()
      this.v[name].dispose()
    }
  }
}

/**
 * The same Adam update in host loops, moments in host memory (ort, wasm and cpu backends), split by rows over
 * the host kernel's threads (host-kernel.ts). tfjs-wasm's heap is 32-bit: at d = 2048, n = 32768 the tfjs
 * version's moments and temporaries alone exceed 4 GiB. It also keeps a host copy of each parameter (see
 * hostValues), in shared memory, updated in place and written to tfjs once per step, and renormalises each
 * W_dec row right after its update.
 */
export class HostAdam implements Optimizer {
  private readonly moments: Moments
  private readonly values = {} as Record<ParamName, Float32Array>
  /** Gradients that are not in shared memory are copied here first (one buffer per parameter, reused). */
  private readonly scratch = {} as Record<ParamName, Float32Array>

  constructor(
    p: SaeTensors,
    private readonly settings: AdamSettings,
    private readonly kernel: HostKernel = hostKernel()
  ) {
    this.moments = {} as Moments
    for (const name of PARAM_NAMES) this.moments[name] = { m: sharedFloat32(p[name].size), v: sharedFloat32(p[name].size) }
  }

  /** The host copy of a parameter, current with the tfjs variable (re-read if someone else assigned it). */
  private async current(p: SaeTensors, name: ParamName): Promise<Float32Array> {
    const mine = this.values[name]
    if (mine && hostCopies.get(p[name].dataId) === mine) return mine
    // On the cpu backend data() is the tensor's own storage: copy it before updating in place.
    const copy = sharedFloat32(p[name].size)
    copy.set((await p[name].data()) as Float32Array)
    this.values[name] = copy
    return copy
  }

  private async sharedGradient(g: tf.Tensor, name: ParamName): Promise<Float32Array> {
    const values = await hostValues(g)
    if (wholeShared(values)) return values
    this.scratch[name] ??= sharedFloat32(values.length)
    this.scratch[name].set(values)
    return this.scratch[name]
  }

  async apply(p: SaeTensors, g: Gradients, t: number, lr: number): Promise<void> {
    const { beta1, beta2, eps, decoderUnitNorm } = this.settings
    const c1 = 1 - beta1 ** t
    const c2 = 1 - beta2 ** t
    for (const name of PARAM_NAMES) {
      const w = await this.current(p, name)
      const grad = await this.sharedGradient(g[name], name)
      const { m, v } = this.moments[name]
      const rows = p[name].rank === 2 ? p[name].shape[0]! : w.length
      await this.kernel.adam(w, grad, m, v, rows, { beta1, beta2, eps, lr, c1, c2, unitRows: name === 'Wdec' && decoderUnitNorm })
      // tfjs-wasm copies into its heap; the cpu backend would keep the array itself, so it gets a copy.
      const updated = tf.tensor(tf.getBackend() === 'cpu' ? w.slice() : w, p[name].shape)
      p[name].assign(updated)
      updated.dispose()
      keepHostCopy(p[name], w)
    }
  }

  async exportMoments(): Promise<Moments> {
    return this.moments
  }

  importMoments(name: ParamName, m: Float32Array, v: Float32Array): void {
    this.moments[name].m.set(m)
    this.moments[name].v.set(v)
  }

  dispose(): void {}
}

export function disposeParams(p: SaeTensors): void {
  for (const name of PARAM_NAMES) p[name].dispose()
}

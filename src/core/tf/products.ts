// A forward pass written once, its dense products answered by whichever engine runs. The model (lm/model.ts)
// writes each block as a generator that yields every dense product it needs (`const y = yield* product(x, w, b)`)
// and does everything else in tfjs between yields. A driver answers the yields:
// - runSync, at once with tf.matMul on the active tfjs backend (wasm, cpu, tensorflow, webgpu), or with a matMul
//   of the caller's that autodiff differentiates (the demo model's training, through tf.grads);
// - runAsync, with an engine that answers asynchronously: onnxruntime on every core (ortProducts, ort/engine.ts).
import * as tf from '@tensorflow/tfjs-core'
import type { OrtDenseProducts } from '../ort/engine'

/** A dense product a forward pass asks for: x [N, in] · w [in, out] (+ b [out]) → [N, out]. */
export interface DenseProduct {
  x: tf.Tensor2D
  /** A weight of the model: the same tensor on every call, so an engine may keep its own copy of it. */
  w: tf.Tensor
  b?: tf.Tensor
}

/** A computation that yields each dense product it needs and is resumed with the product [N, out]. */
export type Forward<T> = Generator<DenseProduct, T, tf.Tensor2D>

/** x [N, in] · w [in, out] (+ b [out]) → [N, out], computed by whichever driver runs the forward pass. */
export function* product(x: tf.Tensor2D, w: tf.Tensor, b?: tf.Tensor): Forward<tf.Tensor2D> {
  return yield { x, w, b }
}

/**
 * Runs `f` inside a tfjs scope, as tf.tidy runs a synchronous function: every tensor made while it runs is
 * disposed when it ends, except those in its result. Under runAsync the scope stays open across awaits, so no
 * other tfjs work may run in the process meanwhile (its tensors would land in this scope): harvest and
 * evaluation jobs, one per process, are the only callers that run it asynchronously.
 */
export function* scoped<T extends tf.TensorContainer>(f: Forward<T>): Forward<T> {
  const engine = tf.engine()
  engine.startScope()
  let result: T | undefined
  try {
    result = yield* f
    return result
  } finally {
    engine.endScope(result)
  }
}

/** The product as one tfjs matMul: x [N, in] · w [in, out] → [N, out]. */
export type MatMul = (x: tf.Tensor2D, w: tf.Tensor) => tf.Tensor2D

const tfMatMul: MatMul = (x, w) => tf.matMul(x, w as tf.Tensor2D)

/**
 * Runs `f` to its end, answering each product at once in tfjs with `matMul` (tf.matMul on the active backend unless
 * the caller gives its own, such as one with a custom gradient) plus the bias. Synchronous throughout, so it runs
 * inside tf.tidy and under tf.grads. An error in a product is thrown into `f` first, so its scopes close.
 */
export function runSync<T>(f: Forward<T>, matMul: MatMul = tfMatMul): T {
  let step = f.next()
  while (!step.done) {
    const { x, w, b } = step.value
    let y: tf.Tensor2D
    try {
      const xw = matMul(x, w)
      y = b ? tf.add(xw, b) : xw
    } catch (err) {
      step = f.throw(err)
      continue
    }
    step = f.next(y)
  }
  return step.value
}

/** Answers one dense product asynchronously with a tensor [N, out] of the active tfjs backend. */
export type AsyncProducts = (p: DenseProduct) => Promise<tf.Tensor2D>

/**
 * Runs `f` to its end, answering each product with `answer` (awaited); the tfjs work between products runs on the
 * active backend as under runSync. An error in a product is thrown into `f` first, so its scopes close.
 */
export async function runAsync<T>(f: Forward<T>, answer: AsyncProducts): Promise<T> {
  let step = f.next()
  while (!step.done) {
    let y: tf.Tensor2D
    try {
      y = await answer(step.value)
    } catch (err) {
      step = f.throw(err)
      continue
    }
    step = f.next(y)
  }
  return step.value
}

/**
 * Dense products on onnxruntime (ort/engine.ts, every core): the activation is read out of tfjs, multiplied by a
 * host copy of the weight and bias (made from the tfjs tensor on first use, kept while `engine` is), and the result
 * becomes a tensor of the active tfjs backend. Weights thus exist twice on the host while a model runs this way.
 */
export function ortProducts(engine: OrtDenseProducts): AsyncProducts {
  const host = new WeakMap<tf.Tensor, Float32Array>()
  const onHost = (t: tf.Tensor): Float32Array => {
    let h = host.get(t)
    if (!h) {
      h = t.dataSync() as Float32Array
      host.set(t, h)
    }
    return h
  }
  return async ({ x, w, b }) => {
    const [N, inDim] = x.shape
    const outDim = w.shape[1]!
    if (w.rank !== 2 || w.shape[0] !== inDim) throw new Error(`A dense product of x [${x.shape}] needs w [${inDim}, out]; it was given w [${w.shape}].`)
    const y = await engine.product((await x.data()) as Float32Array, onHost(w), b ? onHost(b) : null, inDim, outDim)
    return tf.tensor2d(y, [N, outDim])
  }
}

// A forward pass written once, its dense products answered by whichever engine runs. The model (lm/model.ts)
// writes each block as a generator that yields every dense product it needs (`const y = yield* product(x, w, b)`,
// and attention's two batched products with the softmax between them: `yield* attention(q, k, v, scale, mask)`)
// and does everything else in tfjs between yields. A driver answers the yields:
// - runSync, at once in tfjs on the active backend (wasm, cpu, tensorflow, webgpu): tf.matMul (or a matMul of the
//   caller's that autodiff differentiates: the demo model's training, through tf.grads), ACTIVATION_FNS, and
//   attentionInTfjs (PyTorch's F.scaled_dot_product_attention with an additive mask, written out);
// - runAsync, with an engine that answers asynchronously: onnxruntime on every core (ortProducts, ort/engine.ts).
// A product's weight is a tfjs tensor or, for a model loaded with host projections (loadModel's `projections: 'host'`),
// a HostWeight: a Float32Array outside tfjs that onnxruntime reads directly, so the weight never occupies tfjs-wasm's heap.
import * as tf from '@tensorflow/tfjs-core'
import type { Activation } from '../lm/model-config'
import type { OrtDenseProducts } from '../ort/engine'
import { ACTIVATION_FNS } from './activations'

/**
 * A weight held on the host only (not in tfjs): float32 values, row-major in `shape` — a projection [in, out] or a
 * bias [out]. What loadModel's `projections: 'host'` keeps for every weight used only as a product's w or b.
 */
export class HostWeight {
  constructor(
    readonly data: Float32Array,
    readonly shape: readonly number[]
  ) {
    const size = shape.reduce((a, b) => a * b, 1)
    if (data.length !== size) throw new Error(`HostWeight: ${data.length} values do not fill shape [${shape.join(', ')}] (${size} values).`)
  }
}

/** A product's weight: a tfjs tensor (every driver) or a HostWeight (onnxruntime reads it in place; runSync copies it per call). */
export type Weight = tf.Tensor | HostWeight

/** A dense product a forward pass asks for: act(x [N, in] · w [in, out] (+ b [out])) → [N, out]. */
export interface DenseProduct {
  kind: 'product'
  x: tf.Tensor2D
  /** A weight of the model: the same object on every call, so an engine may keep its own copy of it. */
  w: Weight
  b?: Weight
  /** An activation applied to the product (ACTIVATION_FNS in tfjs), so an engine may fuse it. */
  act?: Activation
}

/**
 * Scaled dot-product attention over independent (batch, head) rows: softmax(q · kᵀ · scale + mask) · v, the softmax
 * over the last axis. q, k, v [BH, T, hd]; mask [T, T], added (0 where a query may attend, −1e30 where not) → [BH, T, hd].
 */
export interface AttentionCore {
  kind: 'attention'
  q: tf.Tensor3D
  k: tf.Tensor3D
  v: tf.Tensor3D
  scale: number
  mask: tf.Tensor2D
}

/** What a forward pass asks its driver for. */
export type Request = DenseProduct | AttentionCore

/** A computation that yields each request it needs and is resumed with its result (a product [N, out], attention [BH, T, hd]). */
export type Forward<T> = Generator<Request, T, tf.Tensor>

/** act(x [N, in] · w [in, out] (+ b [out])) → [N, out], computed by whichever driver runs the forward pass. */
export function* product(x: tf.Tensor2D, w: Weight, b?: Weight, act?: Activation): Forward<tf.Tensor2D> {
  return (yield { kind: 'product', x, w, b, act }) as tf.Tensor2D
}

/** softmax(q · kᵀ · scale + mask) · v (AttentionCore), computed by whichever driver runs the forward pass. */
export function* attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, scale: number, mask: tf.Tensor2D): Forward<tf.Tensor3D> {
  return (yield { kind: 'attention', q, k, v, scale, mask }) as tf.Tensor3D
}

/** AttentionCore in tfjs (the reference every engine's answer is tested against): kᵀ made explicit, as tfjs-wasm's matMul is ~10× slower with a transposed operand. */
export function attentionInTfjs({ q, k, v, scale, mask }: AttentionCore): tf.Tensor3D {
  const scores = tf.add(tf.mul(tf.matMul(q, tf.transpose(k, [0, 2, 1])), scale), mask)
  return tf.matMul(tf.softmax(scores), v)
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
 * Runs `f` to its end, answering each request at once in tfjs: a product with `matMul` (tf.matMul on the active
 * backend unless the caller gives its own, such as one with a custom gradient) plus the bias and activation, attention with
 * attentionInTfjs. Synchronous throughout, so it runs inside tf.tidy and under tf.grads. An error in a request is
 * thrown into `f` first, so its scopes close. A HostWeight is copied into a tfjs tensor for the one product and
 * disposed after it: correct, but it copies the weight on every call (host projections are meant for runAsync on ort).
 */
export function runSync<T>(f: Forward<T>, matMul: MatMul = tfMatMul): T {
  let step = f.next()
  while (!step.done) {
    const r = step.value
    let y: tf.Tensor
    try {
      if (r.kind === 'attention') y = attentionInTfjs(r)
      else if (r.w instanceof HostWeight || r.b instanceof HostWeight) {
        const { x, w, b, act } = r
        y = tf.tidy(() => {
          const xw = matMul(x, inTfjs(w))
          const z = b ? tf.add(xw, inTfjs(b)) : xw
          return act ? ACTIVATION_FNS[act](z) : z
        })
      } else {
        const xw = matMul(r.x, r.w)
        const z = r.b ? tf.add(xw, r.b) : xw
        y = r.act ? ACTIVATION_FNS[r.act](z) : z
      }
    } catch (err) {
      step = f.throw(err)
      continue
    }
    step = f.next(y)
  }
  return step.value
}

/** A weight as a tfjs tensor: itself, or a new tensor holding a HostWeight's values (the caller disposes it). */
function inTfjs(w: Weight): tf.Tensor {
  return w instanceof HostWeight ? tf.tensor(w.data, [...w.shape], 'float32') : w
}

/** Answers one request asynchronously with a tensor of the active tfjs backend (a product [N, out], attention [BH, T, hd]). */
export type AsyncProducts = (r: Request) => Promise<tf.Tensor>

/**
 * Runs `f` to its end, answering each product with `answer` (awaited); the tfjs work between products runs on the
 * active backend as under runSync. An error in a product is thrown into `f` first, so its scopes close.
 */
export async function runAsync<T>(f: Forward<T>, answer: AsyncProducts): Promise<T> {
  let step = f.next()
  while (!step.done) {
    let y: tf.Tensor
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
 * Requests answered on onnxruntime (ort/engine.ts, every core). A product: the activation is read out of tfjs,
 * multiplied by the weight and bias on the host, and the result becomes a tensor of the active tfjs backend. A
 * HostWeight's values are used in place; a tfjs weight is copied to the host on first use (kept while `engine` is),
 * so it then exists twice — once in tfjs, once here — unless the model was loaded with host projections.
 * Attention: q, k, v are read out (the mask once, as a weight), the whole core runs as one graph, the result comes back.
 * Errors: a weight whose shape is not [in, out] for x [N, in].
 */
export function ortProducts(engine: OrtDenseProducts): AsyncProducts {
  const host = new WeakMap<tf.Tensor, Float32Array>()
  const onHost = (t: Weight): Float32Array => {
    if (t instanceof HostWeight) return t.data
    let h = host.get(t)
    if (!h) {
      h = t.dataSync() as Float32Array
      host.set(t, h)
    }
    return h
  }
  return async (r) => {
    if (r.kind === 'attention') {
      const [BH, T, hd] = r.q.shape
      const read = async (t: tf.Tensor): Promise<Float32Array> => (await t.data()) as Float32Array
      const out = await engine.attention(await read(r.q), await read(r.k), await read(r.v), onHost(r.mask), r.scale, BH, T, hd)
      return tf.tensor3d(out, [BH, T, hd])
    }
    const { x, w, b, act } = r
    const [N, inDim] = x.shape
    const outDim = w.shape[1]!
    if (w.shape.length !== 2 || w.shape[0] !== inDim) throw new Error(`A dense product of x [${x.shape}] needs w [${inDim}, out]; it was given w [${w.shape}].`)
    const y = await engine.product((await x.data()) as Float32Array, onHost(w), b ? onHost(b) : null, inDim, outDim, act)
    return tf.tensor2d(y, [N, outDim])
  }
}

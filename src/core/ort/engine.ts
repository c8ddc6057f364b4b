// The onnxruntime-node engine: dense products that need every core, as small ONNX graphs built here
// (onnx-proto.ts) and run by onnxruntime's CPU provider (MLAS sgemm, one thread per core). Its
// `InferenceSession.run` is asynchronous, so it cannot sit in tfjs's synchronous kernel registry: callers
// hand it typed arrays and await the result. Everything sparse stays in the host loops (sae/sparse-host.ts).
import { availableParallelism } from 'node:os'
import type * as Ort from 'onnxruntime-node'
import type { Activation } from '../lm/model-config'
import { DataType, encodeModel, type Graph, type Initializer, type Node } from './onnx-proto'

type OrtModule = typeof Ort

/** Optional at run time: the package ships Linux/macOS/Windows CPU binaries; a platform without them falls back to wasm. */
const importOrt = (): Promise<OrtModule> => import(/* @vite-ignore */ 'onnxruntime-node' as string) as Promise<OrtModule>

let ort: OrtModule | null = null

/** Threads each onnxruntime session uses: every core, unless FEATURETRACE_THREADS says fewer. */
export function ortThreads(): number {
  const env = Number(process.env.FEATURETRACE_THREADS)
  return Number.isInteger(env) && env > 0 ? env : availableParallelism()
}

/**
 * Loads onnxruntime-node and runs a 2×2 MatMul through it, so that a broken native binary is found here
 * and not in the middle of a job. Returns null when it works, else one sentence saying why not.
 */
export async function tryOrt(load: () => Promise<OrtModule> = importOrt): Promise<string | null> {
  try {
    const mod = await load()
    const bytes = encodeModel({
      name: 'probe',
      nodes: [{ op: 'MatMul', inputs: ['a', 'b'], outputs: ['c'] }],
      inputs: [
        { name: 'a', type: DataType.FLOAT, shape: [2, 2] },
        { name: 'b', type: DataType.FLOAT, shape: [2, 2] }
      ],
      outputs: [{ name: 'c', type: DataType.FLOAT, shape: [2, 2] }]
    })
    const session = await mod.InferenceSession.create(bytes, { intraOpNumThreads: 1 })
    const eye = new mod.Tensor('float32', Float32Array.from([1, 0, 0, 1]), [2, 2])
    const b = new mod.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [2, 2])
    const out = await session.run({ a: eye, b })
    const c = out.c!.data as Float32Array
    await session.release()
    if (c[3] !== 4) return `onnxruntime-node loaded but computed a wrong 2×2 product (${Array.from(c).join(', ')})`
    ort = mod
    return null
  } catch (err) {
    const message = (err as Error).message?.split('\n')[0] ?? String(err)
    if (/Cannot find (module|package)/.test(message)) return 'onnxruntime-node is not installed'
    return `onnxruntime-node is installed but failed to load: ${message}`
  }
}

/** The loaded module, loading (and checking) it on first use; throws with tryOrt's reason when it cannot run. */
async function loaded(): Promise<OrtModule> {
  if (ort) return ort
  const why = await tryOrt()
  if (why !== null) throw new Error(`The ort engine cannot run: ${why}. Run with --backend wasm.`)
  return ort!
}

/** The k largest values per row (ReLU applied to them) and their column indices. */
export interface TopKRows {
  /** [B, k] row-major, ≥ 0 */
  values: Float32Array
  /** [B, k] row-major, in [0, n) */
  indices: Int32Array
}

export interface EncodedBatch extends TopKRows {
  /** AuxK: the kAux largest of relu(pre) · dead per row, or null when not asked for. */
  aux: TopKRows | null
}

/**
 * The SAE encoder's dense part as one ONNX graph:
 *   pre = (x − b_dec) · W_enc + b_enc            x [B, d], W_enc [d, n]
 *   values, indices = TopK(pre, k); values = ReLU(values)     (ReLU commutes with top-k)
 *   with AuxK: auxValues, auxIndices = TopK(ReLU(pre) · dead, kAux)
 * Indices are cast to int32 in the graph. k and kAux are graph inputs, so one session serves any k.
 */
export function encoderGraph(d: number, n: number, withAux: boolean): Graph {
  const nodes: Node[] = [
    { op: 'Sub', inputs: ['x', 'b_dec'], outputs: ['xc'] },
    { op: 'MatMul', inputs: ['xc', 'W_enc'], outputs: ['xw'] },
    { op: 'Add', inputs: ['xw', 'b_enc'], outputs: ['pre'] },
    { op: 'TopK', inputs: ['pre', 'k'], outputs: ['top', 'top_i64'], attributes: { axis: { int: -1 }, largest: { int: 1 }, sorted: { int: 1 } } },
    { op: 'Relu', inputs: ['top'], outputs: ['values'] },
    { op: 'Cast', inputs: ['top_i64'], outputs: ['indices'], attributes: { to: { int: DataType.INT32 } } }
  ]
  const inputs: Graph['inputs'] = [
    { name: 'x', type: DataType.FLOAT, shape: ['B', d] },
    { name: 'b_dec', type: DataType.FLOAT, shape: [d] },
    { name: 'W_enc', type: DataType.FLOAT, shape: [d, n] },
    { name: 'b_enc', type: DataType.FLOAT, shape: [n] },
    { name: 'k', type: DataType.INT64, shape: [1] }
  ]
  const outputs: Graph['outputs'] = [
    { name: 'values', type: DataType.FLOAT, shape: ['B', 'k'] },
    { name: 'indices', type: DataType.INT32, shape: ['B', 'k'] }
  ]
  if (withAux) {
    nodes.push(
      { op: 'Relu', inputs: ['pre'], outputs: ['act'] },
      { op: 'Mul', inputs: ['act', 'dead'], outputs: ['masked'] },
      {
        op: 'TopK',
        inputs: ['masked', 'k_aux'],
        outputs: ['aux_values', 'aux_i64'],
        attributes: { axis: { int: -1 }, largest: { int: 1 }, sorted: { int: 1 } }
      },
      { op: 'Cast', inputs: ['aux_i64'], outputs: ['aux_indices'], attributes: { to: { int: DataType.INT32 } } }
    )
    inputs.push({ name: 'dead', type: DataType.FLOAT, shape: [n] }, { name: 'k_aux', type: DataType.INT64, shape: [1] })
    outputs.push({ name: 'aux_values', type: DataType.FLOAT, shape: ['B', 'k_aux'] }, { name: 'aux_indices', type: DataType.INT32, shape: ['B', 'k_aux'] })
  }
  return { name: withAux ? 'sae_encode_topk_aux' : 'sae_encode_topk', nodes, inputs, outputs }
}

/**
 * Runs the SAE encoder's dense product and top-k on onnxruntime with every core. Weights are passed as
 * ORT tensors over the caller's Float32Arrays (onnxruntime-node reads them in place), except arrays in
 * shared memory, which it cannot read: those are copied into buffers kept for the next call. One session per (d, n, with or without AuxK), created on first use.
 */
export class OrtSaeEncoder {
  private readonly sessions = new Map<string, Promise<Ort.InferenceSession>>()
  /** Plain copies of inputs that live in shared memory, one reused buffer per input name. */
  private readonly plain = new Map<string, Float32Array>()

  /**
   * `a` itself, or, when it lives in a SharedArrayBuffer (the host kernel's parameters), its values copied
   * into a reused plain buffer: onnxruntime-node's binding rejects shared memory ("Invalid argument", from
   * napi_get_arraybuffer_info).
   */
  private readable(name: string, a: Float32Array): Float32Array {
    if (!(a.buffer instanceof SharedArrayBuffer)) return a
    let copy = this.plain.get(name)
    if (copy?.length !== a.length) {
      copy = new Float32Array(a.length)
      this.plain.set(name, copy)
    }
    copy.set(a)
    return copy
  }

  private session(d: number, n: number, withAux: boolean): Promise<Ort.InferenceSession> {
    const key = `${d}:${n}:${withAux}`
    let s = this.sessions.get(key)
    if (!s) {
      s = loaded().then((mod) =>
        mod.InferenceSession.create(encodeModel(encoderGraph(d, n, withAux)), {
          intraOpNumThreads: ortThreads(),
          interOpNumThreads: 1,
          executionMode: 'sequential',
          graphOptimizationLevel: 'all'
        })
      )
      this.sessions.set(key, s)
    }
    return s
  }

  /**
   * x [B, d], bDec [d], wEnc [d, n], bEnc [n]; `aux.dead` [n] is a 0/1 mask and aux.k ≤ its count.
   * Throws when a shape disagrees, naming the argument.
   */
  async encode(
    x: Float32Array,
    bDec: Float32Array,
    wEnc: Float32Array,
    bEnc: Float32Array,
    k: number,
    aux: { dead: Float32Array; k: number } | null
  ): Promise<EncodedBatch> {
    const d = bDec.length
    const n = bEnc.length
    if (wEnc.length !== d * n) throw new Error(`W_enc has ${wEnc.length} values; expected d × n = ${d} × ${n}.`)
    if (x.length % d !== 0) throw new Error(`x has ${x.length} values, not a multiple of d = ${d}.`)
    if (k < 1 || k > n) throw new Error(`k = ${k} must be in [1, n = ${n}].`)
    if (aux && (aux.dead.length !== n || aux.k < 1 || aux.k > n)) throw new Error(`AuxK mask has ${aux.dead.length} values for n = ${n}, k_aux = ${aux.k}.`)
    const B = x.length / d
    const mod = await loaded()
    const session = await this.session(d, n, aux !== null)
    const feeds: Record<string, Ort.Tensor> = {
      x: new mod.Tensor('float32', this.readable('x', x), [B, d]),
      b_dec: new mod.Tensor('float32', this.readable('b_dec', bDec), [d]),
      W_enc: new mod.Tensor('float32', this.readable('W_enc', wEnc), [d, n]),
      b_enc: new mod.Tensor('float32', this.readable('b_enc', bEnc), [n]),
      k: new mod.Tensor('int64', BigInt64Array.from([BigInt(k)]), [1])
    }
    if (aux) {
      feeds.dead = new mod.Tensor('float32', this.readable('dead', aux.dead), [n])
      feeds.k_aux = new mod.Tensor('int64', BigInt64Array.from([BigInt(aux.k)]), [1])
    }
    const out = await session.run(feeds)
    return {
      values: out.values!.data as Float32Array,
      indices: out.indices!.data as Int32Array,
      aux: aux ? { values: out.aux_values!.data as Float32Array, indices: out.aux_indices!.data as Int32Array } : null
    }
  }

  async release(): Promise<void> {
    const all = [...this.sessions.values()]
    this.sessions.clear()
    for (const s of all) await (await s).release()
  }
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI)

/**
 * transformers' ACT2FN (activations.py) as ONNX nodes from `x` to `y`, written as lm/model.ts's ACTIVATION_FNS
 * writes them in tfjs; the constants are scalar initializers named after the output.
 */
export function activationNodes(act: Activation, x: string, y: string): { nodes: Node[]; constants: Initializer[] } {
  const constants: Initializer[] = []
  const c = (value: number): string => {
    const name = `${y}_c${constants.length}`
    constants.push({ name, type: DataType.FLOAT, dims: [], data: Float32Array.of(value) })
    return name
  }
  const node = (op: string, inputs: string[], out: string): Node => ({ op, inputs, outputs: [out] })
  let nodes: Node[]
  // x · 0.5 · (1 + inner), the common shape of the GELUs
  const halfTimes = (inner: string): Node[] => [
    node('Mul', [x, c(0.5)], `${y}_half`),
    node('Add', [inner, c(1)], `${y}_one`),
    node('Mul', [`${y}_half`, `${y}_one`], y)
  ]
  switch (act) {
    case 'gelu':
      nodes = [node('Mul', [x, c(Math.SQRT1_2)], `${y}_s`), node('Erf', [`${y}_s`], `${y}_e`), ...halfTimes(`${y}_e`)]
      break
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      nodes = [
        node('Mul', [x, x], `${y}_x2`),
        node('Mul', [`${y}_x2`, x], `${y}_x3`),
        node('Mul', [`${y}_x3`, c(0.044715)], `${y}_cube`),
        node('Add', [x, `${y}_cube`], `${y}_sum`),
        node('Mul', [`${y}_sum`, c(SQRT_2_OVER_PI)], `${y}_arg`),
        node('Tanh', [`${y}_arg`], `${y}_t`),
        ...halfTimes(`${y}_t`)
      ]
      break
    case 'gelu_fast':
      nodes = [
        node('Mul', [x, x], `${y}_x2`),
        node('Mul', [`${y}_x2`, c(0.044715)], `${y}_sq`),
        node('Add', [`${y}_sq`, c(1)], `${y}_poly`),
        node('Mul', [x, c(0.7978845608)], `${y}_scaled`),
        node('Mul', [`${y}_scaled`, `${y}_poly`], `${y}_arg`),
        node('Tanh', [`${y}_arg`], `${y}_t`),
        ...halfTimes(`${y}_t`)
      ]
      break
    case 'quick_gelu':
      nodes = [node('Mul', [x, c(1.702)], `${y}_s`), node('Sigmoid', [`${y}_s`], `${y}_g`), node('Mul', [x, `${y}_g`], y)]
      break
    case 'relu':
      nodes = [node('Relu', [x], y)]
      break
    case 'silu':
    case 'swish':
      nodes = [node('Sigmoid', [x], `${y}_g`), node('Mul', [x, `${y}_g`], y)]
      break
  }
  return { nodes, constants }
}

/**
 * One dense product of a model's forward pass: y = act(x · w (+ b)), x [N, in] (N symbolic), w [in, out], b [out],
 * as a Gemm (MLAS sgemm, the bias added in its epilogue) followed by the activation's nodes when one is given.
 */
export function productGraph(inDim: number, outDim: number, bias: boolean, act?: Activation): Graph {
  const gemm: Node = { op: 'Gemm', inputs: bias ? ['x', 'w', 'b'] : ['x', 'w'], outputs: [act ? 'xw' : 'y'] }
  const activation = act ? activationNodes(act, 'xw', 'y') : { nodes: [], constants: [] }
  return {
    name: `dense_product${bias ? '_bias' : ''}${act ? `_${act}` : ''}`,
    nodes: [gemm, ...activation.nodes],
    initializers: activation.constants,
    inputs: [
      { name: 'x', type: DataType.FLOAT, shape: ['N', inDim] },
      { name: 'w', type: DataType.FLOAT, shape: [inDim, outDim] },
      ...(bias ? [{ name: 'b', type: DataType.FLOAT, shape: [outDim] }] : [])
    ],
    outputs: [{ name: 'y', type: DataType.FLOAT, shape: ['N', outDim] }]
  }
}

/**
 * The k largest entries of each row of a product and their columns: values, indices = TopK(x · w, k), x [N, in]
 * (N symbolic), w [in, out], sorted largest first (no ReLU: values may be negative).
 */
export function productTopKGraph(inDim: number, outDim: number): Graph {
  return {
    name: 'product_topk',
    nodes: [
      { op: 'MatMul', inputs: ['x', 'w'], outputs: ['xw'] },
      { op: 'TopK', inputs: ['xw', 'k'], outputs: ['values', 'i64'], attributes: { axis: { int: -1 }, largest: { int: 1 }, sorted: { int: 1 } } },
      { op: 'Cast', inputs: ['i64'], outputs: ['indices'], attributes: { to: { int: DataType.INT32 } } }
    ],
    inputs: [
      { name: 'x', type: DataType.FLOAT, shape: ['N', inDim] },
      { name: 'w', type: DataType.FLOAT, shape: [inDim, outDim] },
      { name: 'k', type: DataType.INT64, shape: [1] }
    ],
    outputs: [
      { name: 'values', type: DataType.FLOAT, shape: ['N', 'k'] },
      { name: 'indices', type: DataType.INT32, shape: ['N', 'k'] }
    ]
  }
}

/**
 * Scaled dot-product attention over independent (batch, head) rows as one graph:
 *   out = Softmax(q · kᵀ · scale + mask) · v      q, k, v [BH, T, hd] (BH and T symbolic), mask [T, T], scale [1]
 * the softmax over the last axis, as lm/model.ts's causal attention computes it in tfjs.
 */
export function attentionGraph(headDim: number): Graph {
  return {
    name: 'attention_core',
    nodes: [
      { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attributes: { perm: { ints: [0, 2, 1] } } },
      { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['qk'] },
      { op: 'Mul', inputs: ['qk', 'scale'], outputs: ['scaled'] },
      { op: 'Add', inputs: ['scaled', 'mask'], outputs: ['scores'] },
      { op: 'Softmax', inputs: ['scores'], outputs: ['p'], attributes: { axis: { int: -1 } } },
      { op: 'MatMul', inputs: ['p', 'v'], outputs: ['out'] }
    ],
    inputs: [
      { name: 'q', type: DataType.FLOAT, shape: ['BH', 'T', headDim] },
      { name: 'k', type: DataType.FLOAT, shape: ['BH', 'T', headDim] },
      { name: 'v', type: DataType.FLOAT, shape: ['BH', 'T', headDim] },
      { name: 'mask', type: DataType.FLOAT, shape: ['T', 'T'] },
      { name: 'scale', type: DataType.FLOAT, shape: [1] }
    ],
    outputs: [{ name: 'out', type: DataType.FLOAT, shape: ['BH', 'T', headDim] }]
  }
}

/**
 * Runs a forward pass's dense products (lm/model.ts's projections and LM head) and attention cores on onnxruntime
 * with every core.
 * The weight is a graph input over the caller's host Float32Array (read in place, never copied here), so one
 * session per (in, out, bias) shape serves every layer. Sessions do not spin-wait between runs: the tfjs work
 * between two products needs the cores the previous product's threads would otherwise hold.
 */
export class OrtDenseProducts {
  private readonly sessions = new Map<string, Promise<Ort.InferenceSession>>()

  private sessionFor(key: string, graph: () => Graph): Promise<Ort.InferenceSession> {
    let s = this.sessions.get(key)
    if (!s) {
      s = loaded().then((mod) =>
        mod.InferenceSession.create(encodeModel(graph()), {
          intraOpNumThreads: ortThreads(),
          interOpNumThreads: 1,
          executionMode: 'sequential',
          graphOptimizationLevel: 'all',
          extra: { session: { intra_op: { allow_spinning: '0' } } }
        })
      )
      this.sessions.set(key, s)
    }
    return s
  }

  /**
   * y = act(x · w (+ b)): x [N, in] row-major, w [in, out] row-major, b [out] or null, act none or an ACT2FN name
   * (activationNodes); returns y [N, out] row-major.
   * Throws when a length disagrees with in and out, naming the argument.
   */
  async product(x: Float32Array, w: Float32Array, b: Float32Array | null, inDim: number, outDim: number, act?: Activation): Promise<Float32Array> {
    if (w.length !== inDim * outDim) throw new Error(`w has ${w.length} values; expected in × out = ${inDim} × ${outDim}.`)
    if (x.length % inDim !== 0) throw new Error(`x has ${x.length} values, not a multiple of in = ${inDim}.`)
    if (b && b.length !== outDim) throw new Error(`b has ${b.length} values; expected out = ${outDim}.`)
    const N = x.length / inDim
    const mod = await loaded()
    const session = await this.sessionFor(`product:${inDim}:${outDim}:${b !== null}:${act ?? ''}`, () => productGraph(inDim, outDim, b !== null, act))
    const feeds: Record<string, Ort.Tensor> = { x: new mod.Tensor('float32', x, [N, inDim]), w: new mod.Tensor('float32', w, [inDim, outDim]) }
    if (b) feeds.b = new mod.Tensor('float32', b, [outDim])
    const out = await session.run(feeds)
    return out.y!.data as Float32Array
  }

  /**
   * The k largest entries of each row of x · w and their columns (productTopKGraph): x [N, in], w [in, out] row-major,
   * 1 ≤ k ≤ out; returns values and indices [N, k] row-major, largest first. Only [N, out] lives inside onnxruntime.
   * Throws when a length disagrees with in and out or k is out of range, naming the argument.
   */
  async productTopK(x: Float32Array, w: Float32Array, inDim: number, outDim: number, k: number): Promise<TopKRows> {
    if (w.length !== inDim * outDim) throw new Error(`w has ${w.length} values; expected in × out = ${inDim} × ${outDim}.`)
    if (x.length % inDim !== 0) throw new Error(`x has ${x.length} values, not a multiple of in = ${inDim}.`)
    if (!Number.isInteger(k) || k < 1 || k > outDim) throw new Error(`k = ${k} must be an integer in 1–${outDim}.`)
    const N = x.length / inDim
    const mod = await loaded()
    const session = await this.sessionFor(`product-topk:${inDim}:${outDim}`, () => productTopKGraph(inDim, outDim))
    const out = await session.run({
      x: new mod.Tensor('float32', x, [N, inDim]),
      w: new mod.Tensor('float32', w, [inDim, outDim]),
      k: new mod.Tensor('int64', BigInt64Array.of(BigInt(k)), [1])
    })
    return { values: out.values!.data as Float32Array, indices: out.indices!.data as Int32Array }
  }

  /**
   * Softmax(q · kᵀ · scale + mask) · v (attentionGraph): q, k, v [BH, T, hd] row-major, mask [T, T]; returns [BH, T, hd].
   * Throws when a length disagrees with BH, T and hd, naming the argument.
   */
  async attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    mask: Float32Array,
    scale: number,
    BH: number,
    T: number,
    hd: number
  ): Promise<Float32Array> {
    for (const [name, a] of [
      ['q', q],
      ['k', k],
      ['v', v]
    ] as const) {
      if (a.length !== BH * T * hd) throw new Error(`${name} has ${a.length} values; expected BH × T × hd = ${BH} × ${T} × ${hd}.`)
    }
    if (mask.length !== T * T) throw new Error(`mask has ${mask.length} values; expected T × T = ${T} × ${T}.`)
    const mod = await loaded()
    const session = await this.sessionFor(`attention:${hd}`, () => attentionGraph(hd))
    const out = await session.run({
      q: new mod.Tensor('float32', q, [BH, T, hd]),
      k: new mod.Tensor('float32', k, [BH, T, hd]),
      v: new mod.Tensor('float32', v, [BH, T, hd]),
      mask: new mod.Tensor('float32', mask, [T, T]),
      scale: new mod.Tensor('float32', Float32Array.of(scale), [1])
    })
    return out.out!.data as Float32Array
  }

  async release(): Promise<void> {
    const all = [...this.sessions.values()]
    this.sessions.clear()
    for (const s of all) await (await s).release()
  }
}

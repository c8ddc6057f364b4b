// The SAE step's host loops, as tasks over a range: the k-sparse decoder forward and the residuals (token
// blocks), their variances (token blocks), the gradient scatter over the k active rows with W_enc's gradient
// transposed (latent ranges), and Adam with W_dec's renormalisation (row ranges). Every array lives in shared
// memory; a task only says where and which range. host-kernel.ts runs a task here, in one of its worker
// threads, or in the calling thread with the whole range (one thread): the same code either way. Built as its
// own self-contained bundle (out/main/threads/sae-kernel.js); it imports nothing.
import { parentPort, workerData } from 'node:worker_threads'

/**
 * Tokens per block of the reductions over the batch. Each block's sums are written to its own slot and added
 * up in block order by the caller, so the results do not depend on how blocks are split among threads.
 */
export const TOKEN_BLOCK = 32

/** Slots per token block in `blockSums`: Σ err², Σ res², Σ (x − mean x)², Σ (err − mean err)². */
export const BLOCK_SLOTS = 4

/** One step's arrays, all over SharedArrayBuffers (float32 unless said otherwise); sizes in brackets. */
export interface StepShared {
  B: number
  d: number
  n: number
  k: number
  /** AuxK's k for this step; 0 without AuxK. */
  kAux: number
  /** The batch [B, d]. */
  x: SharedArrayBuffer
  /** x − b_dec [B, d] (written by decode). */
  xc: SharedArrayBuffer
  bdec: SharedArrayBuffer
  /** [n, d] */
  Wdec: SharedArrayBuffer
  /** The k active values [B, k] (ReLU applied) and their latents (int32). */
  v: SharedArrayBuffer
  idx: SharedArrayBuffer
  /** AuxK's values and latents [B, kAux]. */
  va: SharedArrayBuffer
  ia: SharedArrayBuffer
  /** x̂ − x [B, d] (written by decode). */
  err: SharedArrayBuffer
  /** AuxK: ê − e with e = x − x̂ [B, d] (written by decode). */
  res: SharedArrayBuffer
  /** float64 [blocks, d]: per-block column sums of x and of err (written by decode). */
  colX: SharedArrayBuffer
  colErr: SharedArrayBuffer
  /** float64 [2, d]: the batch means of x and of err (written by the caller between decode and variance). */
  means: SharedArrayBuffer
  /** float64 [blocks, BLOCK_SLOTS] */
  blockSums: SharedArrayBuffer
  /** Gradients: W_dec [n, d], W_enc transposed [n, d] and as W_enc [d, n], b_enc [n] (written by scatter). */
  gWdec: SharedArrayBuffer
  /**
   * int32: the pairs with a positive value grouped by latent (a stable counting sort, written by the caller):
   * latent l's pairs are order[offsets[l] .. offsets[l + 1]), each a pair index p — p < B·k the main pair p,
   * else the AuxK pair p − B·k — in token order, the main pairs first.
   */
  order: SharedArrayBuffer
  /** int32 [n + 1] */
  offsets: SharedArrayBuffer
  /**
   * uint8 [n]: 1 where the latent's rows of the gradient buffers hold the last step's values (it had pairs).
   * The buffers are reused from step to step; a row neither used now nor dirty is already zero and is skipped.
   */
  dirty: SharedArrayBuffer
  gWencT: SharedArrayBuffer
  gWenc: SharedArrayBuffer
  gBenc: SharedArrayBuffer
}

/** Adam's update (Kingma & Ba 2015, with bias correction) on rows [lo, hi) of a [rows, cols] parameter. */
export interface AdamTask {
  op: 'adam'
  lo: number
  hi: number
  cols: number
  /** Parameter, gradient, first and second moments: float32, same length. */
  w: SharedArrayBuffer
  g: SharedArrayBuffer
  m: SharedArrayBuffer
  v: SharedArrayBuffer
  beta1: number
  beta2: number
  eps: number
  lr: number
  /** 1 − β₁ᵗ and 1 − β₂ᵗ */
  c1: number
  c2: number
  /** Scale each row to unit norm after its update (W_dec). */
  unitRows: boolean
}

export type KernelTask =
  | { op: 'decode'; lo: number; hi: number; s: StepShared }
  | { op: 'variance'; lo: number; hi: number; s: StepShared }
  | { op: 'scatter'; lo: number; hi: number; s: StepShared; scale: number; auxScale: number }
  | AdamTask

/** Typed views of a step's shared buffers, each with its element type (StepShared says what each holds). */
function views(s: StepShared) {
  return {
    x: new Float32Array(s.x),
    xc: new Float32Array(s.xc),
    bdec: new Float32Array(s.bdec),
    W: new Float32Array(s.Wdec),
    v: new Float32Array(s.v),
    idx: new Int32Array(s.idx),
    va: new Float32Array(s.va),
    ia: new Int32Array(s.ia),
    err: new Float32Array(s.err),
    res: new Float32Array(s.res),
    colX: new Float64Array(s.colX),
    colErr: new Float64Array(s.colErr),
    means: new Float64Array(s.means),
    sums: new Float64Array(s.blockSums),
    order: new Int32Array(s.order),
    offsets: new Int32Array(s.offsets),
    dirty: new Uint8Array(s.dirty),
    gWdec: new Float32Array(s.gWdec),
    gWencT: new Float32Array(s.gWencT),
    gWenc: new Float32Array(s.gWenc),
    gBenc: new Float32Array(s.gBenc)
  }
}

/**
 * Token blocks [lo, hi): xc = x − b_dec; err = x̂ − x with x̂ = b_dec + Σ_j v_j W_dec[idx_j]; with AuxK,
 * res = ê − e = Σ_j va_j W_dec[ia_j] + err. Per block: the column sums of x and err, Σ err², Σ res².
 */
function decode(lo: number, hi: number, s: StepShared): void {
  const { B, d, k, kAux } = s
  const { x, xc, bdec, W, v, idx, va, ia, err, res, colX, colErr, sums } = views(s)
  for (let blk = lo; blk < hi; blk++) {
    const c = blk * d
    colX.fill(0, c, c + d)
    colErr.fill(0, c, c + d)
    let sse = 0
    let auxSse = 0
    for (let b = blk * TOKEN_BLOCK; b < Math.min(B, (blk + 1) * TOKEN_BLOCK); b++) {
      const o = b * d
      for (let i = 0; i < d; i++) {
        xc[o + i] = x[o + i]! - bdec[i]!
        err[o + i] = bdec[i]!
      }
      for (let j = b * k; j < (b + 1) * k; j++) {
        const a = v[j]!
        if (a <= 0) continue
        const row = idx[j]! * d
        for (let i = 0; i < d; i++) err[o + i]! += a * W[row + i]!
      }
      for (let i = 0; i < d; i++) {
        const e = (err[o + i] = err[o + i]! - x[o + i]!)
        sse += e * e
        colErr[c + i]! += e
        colX[c + i]! += x[o + i]!
      }
      if (kAux > 0) {
        for (let i = 0; i < d; i++) res[o + i] = err[o + i]!
        for (let j = b * kAux; j < (b + 1) * kAux; j++) {
          const a = va[j]!
          if (a <= 0) continue
          const row = ia[j]! * d
          for (let i = 0; i < d; i++) res[o + i]! += a * W[row + i]!
        }
        for (let i = 0; i < d; i++) auxSse += res[o + i]! * res[o + i]!
      }
    }
    sums[blk * BLOCK_SLOTS] = sse
    sums[blk * BLOCK_SLOTS + 1] = auxSse
  }
}

/** Token blocks [lo, hi): Σ (x − mean x)² and, with AuxK, Σ (err − mean err)² (the variance of e = −err). */
function variance(lo: number, hi: number, s: StepShared): void {
  const { B, d, kAux } = s
  const { x, err, means, sums } = views(s)
  for (let blk = lo; blk < hi; blk++) {
    let sx = 0
    let se = 0
    for (let b = blk * TOKEN_BLOCK; b < Math.min(B, (blk + 1) * TOKEN_BLOCK); b++) {
      const o = b * d
      for (let i = 0; i < d; i++) sx += (x[o + i]! - means[i]!) ** 2
      if (kAux > 0) for (let i = 0; i < d; i++) se += (err[o + i]! - means[d + i]!) ** 2
    }
    sums[blk * BLOCK_SLOTS + 2] = sx
    sums[blk * BLOCK_SLOTS + 3] = se
  }
}

/**
 * Latents [lo, hi), owned by this task alone. For each owned latent l, its rows of the gradients zeroed (unless
 * they are zero already: see `dirty`), then,
 * over its pairs in `order` (token order, the main pairs then AuxK's), for a pair of token b with value a and
 * output gradient g = scale · (row b of err, or of res for AuxK):
 *   gW_dec[l] += a·g;  gv = W_dec[l]·g;  gb_enc[l] += gv;  gW_encᵀ[l] += gv·xc[b]
 * so each row sums its terms in the same order whatever the split, and the three rows of l stay in cache
 * while its pairs are summed. Then the owned rows of gW_encᵀ are written as columns [lo, hi) of gW_enc [d, n],
 * in 32 × 32 tiles (those of latents with neither pairs nor last step's values are zero already).
 */
function scatter(lo: number, hi: number, s: StepShared, scale: number, auxScale: number): void {
  const { d, n, k, kAux } = s
  const { xc, W, v, va, err, res, order, offsets, gWdec, gWencT, gWenc, gBenc, dirty } = views(s)
  const Bk = s.B * k
  for (let l = lo; l < hi; l++) {
    const used = offsets[l + 1]! > offsets[l]!
    if (!used && dirty[l] === 0) continue
    const row = l * d
    gWdec.fill(0, row, row + d)
    gWencT.fill(0, row, row + d)
    let gb = 0
    for (let q = offsets[l]!; q < offsets[l + 1]!; q++) {
      const p = order[q]!
      const main = p < Bk
      const b = main ? Math.floor(p / k) : Math.floor((p - Bk) / kAux)
      const sc = main ? scale : auxScale
      const out = main ? err : res
      const ag = (main ? v[p]! : va[p - Bk]!) * sc
      const o = b * d
      let gv = 0
      for (let i = 0; i < d; i++) {
        const g = out[o + i]!
        gv += W[row + i]! * g
        gWdec[row + i]! += ag * g
      }
      gv *= sc
      gb += gv
      for (let i = 0; i < d; i++) gWencT[row + i]! += gv * xc[o + i]!
    }
    gBenc[l] = gb
  }
  const T = 32
  for (let l0 = lo; l0 < hi; l0 += T) {
    const l1 = Math.min(hi, l0 + T)
    for (let i0 = 0; i0 < d; i0 += T) {
      const i1 = Math.min(d, i0 + T)
      for (let l = l0; l < l1; l++) {
        if (dirty[l] === 0 && offsets[l + 1]! === offsets[l]!) continue
        for (let i = i0; i < i1; i++) gWenc[i * n + l] = gWencT[l * d + i]!
      }
    }
  }
  for (let l = lo; l < hi; l++) dirty[l] = offsets[l + 1]! > offsets[l]! ? 1 : 0
}

/** Adam on rows [lo, hi), each row scaled to unit norm right after its update when asked (a norm under 1e-12 counts as 1e-12, as topk.ts's unitRows). */
function adam(t: AdamTask): void {
  const w = new Float32Array(t.w)
  const g = new Float32Array(t.g)
  const m = new Float32Array(t.m)
  const v = new Float32Array(t.v)
  const { beta1: b1, beta2: b2, eps, lr, c1, c2, cols } = t
  for (let r = t.lo; r < t.hi; r++) {
    const o = r * cols
    const e = o + cols
    for (let i = o; i < e; i++) {
      const gi = g[i]!
      const mi = (m[i] = b1 * m[i]! + (1 - b1) * gi)
      const vi = (v[i] = b2 * v[i]! + (1 - b2) * gi * gi)
      w[i] = w[i]! - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps)
    }
    if (t.unitRows) {
      let ss = 0
      for (let i = o; i < e; i++) ss += w[i]! * w[i]!
      const inv = 1 / Math.max(Math.sqrt(ss), 1e-12)
      for (let i = o; i < e; i++) w[i]! *= inv
    }
  }
}

/** Runs one task in the calling thread. */
export function runTask(t: KernelTask): void {
  if (t.op === 'decode') decode(t.lo, t.hi, t.s)
  else if (t.op === 'variance') variance(t.lo, t.hi, t.s)
  else if (t.op === 'scatter') scatter(t.lo, t.hi, t.s, t.scale, t.auxScale)
  else adam(t)
}

/** What the host passes as workerData, so that importing this module anywhere else starts nothing. */
export const SAE_KERNEL_WORKER_DATA = { featuretraceSaeKernel: true } as const

// As a worker thread: one task per message; the reply is null, or the error's message.
const port = parentPort
if (port && (workerData as Partial<typeof SAE_KERNEL_WORKER_DATA> | null)?.featuretraceSaeKernel === true) {
  port.on('message', (t: KernelTask) => {
    try {
      runTask(t)
      port.postMessage(null)
    } catch (err) {
      port.postMessage(String((err as Error)?.stack ?? err))
    }
  })
}

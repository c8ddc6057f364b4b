// Feature drift along a series of SAEs (METHODS §2): for every latent, the cosine of its decoder row to the
// final SAE's and to the previous SAE's. Decoder weights are read checkpoint by checkpoint; only the final
// and the previous SAE's rows are held at once. With matching, each SAE's rows are also assigned one-to-one
// to the final SAE's rows by decoder cosine (for series that are not warm-started).
import * as tf from '@tensorflow/tfjs-core'
import { join } from 'node:path'
import { UserError } from '../../shared/api'
import { F16_TABLE, SafetensorsFile, writeSafetensors } from '../io/safetensors'
import type { JobContext } from '../jobs/job'
import { ProgressMeter } from '../jobs/progress'
import { CFG_FILE, WEIGHTS_FILE } from '../sae/io'
import { greedyAssignment, solveAssignment } from './assignment'
import { readFileSync } from 'node:fs'

/** Largest n matched exactly; beyond it the stated greedy approximation over top candidates is used. */
export const EXACT_MATCH_MAX = 16384
const CANDIDATES = 32

export interface DriftResult {
  steps: (number | null)[]
  n: number
  /** [checkpoints × n], row-major. */
  cosToFinal: Float32Array
  cosToPrevious: Float32Array
  matchToFinal: Int32Array | null
  matchCos: Float32Array | null
  /** 'exact' (Hungarian) or 'greedy-top32' (approximate) for each checkpoint when matching. */
  matchMethod: string | null
}

/** One SAE's decoder, as stored: f16 bit patterns are kept as they are and decoded on the fly. */
interface Decoder {
  n: number
  d: number
  step: number | null
  f16: Uint16Array | null
  f32: Float32Array | null
  norms: Float64Array
}

async function readDecoder(dir: string): Promise<Decoder> {
  let cfg: { d_in?: unknown; d_sae?: unknown; featuretrace?: { checkpoint_step?: unknown } }
  try {
    cfg = JSON.parse(readFileSync(join(dir, CFG_FILE), 'utf8')) as typeof cfg
  } catch {
    throw new UserError(`${dir} is not an SAE folder in SAELens layout (no readable ${CFG_FILE}).`)
  }
  const f = await SafetensorsFile.open(join(dir, WEIGHTS_FILE))
  try {
    const info = f.info('W_dec')
    const [n, d] = info.shape as [number, number]
    if (info.shape.length !== 2 || n !== cfg.d_sae || d !== cfg.d_in) {
      throw new UserError(`${f.file}: W_dec is [${info.shape.join(', ')}] but ${CFG_FILE} says d_sae ${String(cfg.d_sae)}, d_in ${String(cfg.d_in)}.`)
    }
    const step = typeof cfg.featuretrace?.checkpoint_step === 'number' ? cfg.featuretrace.checkpoint_step : null
    let f16: Uint16Array | null = null
    let f32: Float32Array | null = null
    const norms = new Float64Array(n)
    if (info.dtype === 'F16') {
      const bytes = await f.readBytes('W_dec')
      f16 = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
      for (let i = 0; i < n; i++) {
        let s = 0
        for (let j = i * d, e = j + d; j < e; j++) {
          const x = F16_TABLE[f16[j]!]!
          s += x * x
        }
        norms[i] = Math.sqrt(s)
      }
    } else {
      f32 = await f.readFloat32('W_dec')
      for (let i = 0; i < n; i++) {
        let s = 0
        for (let j = i * d, e = j + d; j < e; j++) s += f32[j]! * f32[j]!
        norms[i] = Math.sqrt(s)
      }
    }
    return { n, d, step, f16, f32, norms }
  } finally {
    await f.close()
  }
}

/** Unit rows as float32, for matching. */
function unitRows32(x: Decoder): Float32Array {
  const out = new Float32Array(x.n * x.d)
  for (let i = 0; i < x.n; i++) {
    const inv = x.norms[i]! > 0 ? 1 / x.norms[i]! : 0
    for (let j = 0; j < x.d; j++) out[i * x.d + j] = (x.f16 ? F16_TABLE[x.f16[i * x.d + j]!]! : x.f32![i * x.d + j]!) * inv
  }
  return out
}

/**
 * cos(row i of a, row i of b) for every i, written at out[offset + i]. One pass over the stored values: at
 * SAE-Track scale this loop is the whole cost of drift, so it reads f16 bit patterns directly.
 */
function rowCosines(a: Decoder, b: Decoder, out: Float32Array, offset: number): void {
  const { n, d } = a
  const T = F16_TABLE
  for (let i = 0; i < n; i++) {
    let dot = 0
    const o = i * d
    if (a.f16 && b.f16) {
      const x = a.f16
      const y = b.f16
      for (let j = o, e = o + d; j < e; j++) dot += T[x[j]!]! * T[y[j]!]!
    } else {
      for (let j = o, e = o + d; j < e; j++) {
        const u = a.f16 ? T[a.f16[j]!]! : a.f32![j]!
        const v = b.f16 ? T[b.f16[j]!]! : b.f32![j]!
        dot += u * v
      }
    }
    const den = a.norms[i]! * b.norms[i]!
    out[offset + i] = den > 0 ? dot / den : 0
  }
}


/** Row i of `a` assigned to a row of `b` by decoder cosine: exact up to EXACT_MATCH_MAX, greedy beyond. */
export async function matchRows(a: Float32Array, b: Float32Array, n: number, d: number): Promise<{ col: Int32Array; cos: Float32Array; method: string }> {
  const A = tf.tensor2d(a, [n, d])
  const BT = tf.transpose(tf.tensor2d(b, [n, d]))
  try {
    if (n <= EXACT_MATCH_MAX) {
      const sim = tf.matMul(A, BT)
      const cost = (await sim.data()) as Float32Array
      sim.dispose()
      // Minimum cost = maximum cosine; negated in place, since at n = 16,384 the matrix is 1 GiB.
      for (let i = 0; i < cost.length; i++) cost[i] = -cost[i]!
      const col = solveAssignment(cost, n)
      const cos = Float32Array.from(col, (c, i) => -cost[i * n + c]!)
      return { col, cos, method: 'exact' }
    }
    // Block by block: each row's top candidates by cosine, then the greedy pass.
    const topIdx = new Int32Array(n * CANDIDATES)
    const topSim = new Float32Array(n * CANDIDATES)
    const block = Math.max(1, Math.floor((256 * 2 ** 20) / (4 * n)))
    for (let s = 0; s < n; s += block) {
      const m = Math.min(block, n - s)
      const { values, indices } = tf.tidy(() => tf.topk(tf.matMul(tf.slice(A, [s, 0], [m, d]), BT), CANDIDATES))
      topSim.set((await values.data()) as Float32Array, s * CANDIDATES)
      topIdx.set((await indices.data()) as Int32Array, s * CANDIDATES)
      tf.dispose([values, indices])
    }
    const col = greedyAssignment(topIdx, topSim, n, CANDIDATES)
    const cos = new Float32Array(n)
    for (let i = 0; i < n; i++) {
      if (col[i] === -1) continue
      let x = 0
      for (let j = 0; j < d; j++) x += a[i * d + j]! * b[col[i]! * d + j]!
      cos[i] = x
    }
    return { col, cos, method: `greedy-top${CANDIDATES}` }
  } finally {
    tf.dispose([A, BT])
  }
}

export async function computeDrift(saeDirs: string[], opts: { match?: boolean }, ctx: JobContext): Promise<DriftResult> {
  if (saeDirs.length === 0) throw new UserError('Give at least one SAE folder, in step order.')
  const T = saeDirs.length
  const final = await readDecoder(saeDirs[T - 1]!)
  const { n, d } = final
  const finalUnit = opts.match ? unitRows32(final) : null
  const cosToFinal = new Float32Array(T * n)
  const cosToPrevious = new Float32Array(T * n)
  const matchToFinal = opts.match ? new Int32Array(T * n) : null
  const matchCos = opts.match ? new Float32Array(T * n) : null
  const steps: (number | null)[] = []
  let method: string | null = null
  const meter = new ProgressMeter(T, 'SAE')
  let previous: Decoder | null = null
  for (let t = 0; t < T; t++) {
    const cur = t === T - 1 ? final : await readDecoder(saeDirs[t]!)
    if (cur.n !== n || cur.d !== d) throw new UserError(`${saeDirs[t]} has ${cur.n} latents of width ${cur.d}; the final SAE has ${n} of width ${d}.`)
    steps.push(cur.step)
    rowCosines(cur, final, cosToFinal, t * n)
    if (previous) rowCosines(cur, previous, cosToPrevious, t * n)
    else cosToPrevious.fill(1, 0, n)
    if (matchToFinal && matchCos && finalUnit) {
      const m = await matchRows(unitRows32(cur), finalUnit, n, d)
      matchToFinal.set(m.col, t * n)
      matchCos.set(m.cos, t * n)
      method = m.method
    }
    previous = cur
    ctx.progress(meter.update(t + 1, `SAE ${t + 1}/${T}`))
    if (ctx.signal.aborted) throw new UserError('Drift computation cancelled.')
  }
  return { steps, n, cosToFinal, cosToPrevious, matchToFinal, matchCos, matchMethod: method }
}

/** The CLI's output file: float32 cos_to_final and cos_to_previous, with --match int32 match_to_final and float32 match_cos. */
export async function writeDrift(out: string, r: DriftResult): Promise<void> {
  const T = r.steps.length
  const tensors: Parameters<typeof writeSafetensors>[1] = {
    cos_to_final: { dtype: 'F32', shape: [T, r.n], data: r.cosToFinal },
    cos_to_previous: { dtype: 'F32', shape: [T, r.n], data: r.cosToPrevious }
  }
  if (r.matchToFinal && r.matchCos) {
    tensors.match_to_final = { dtype: 'I32', shape: [T, r.n], data: r.matchToFinal }
    tensors.match_cos = { dtype: 'F32', shape: [T, r.n], data: r.matchCos }
  }
  await writeSafetensors(out, tensors, { steps: JSON.stringify(r.steps), ...(r.matchMethod ? { match_method: r.matchMethod } : {}) })
}

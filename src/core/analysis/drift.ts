// Feature drift along a series of SAEs (METHODS §2): for every latent, the cosine of its decoder row to the
// final SAE's and to the previous SAE's. Decoder weights are read checkpoint by checkpoint; only the final
// and the previous SAE's rows are held at once. With matching, each SAE's rows are also assigned one-to-one
// to the final SAE's rows by decoder cosine (for series that are not warm-started).
import * as tf from '@tensorflow/tfjs-core'
import { join } from 'node:path'
import { UserError } from '../../shared/api'
import { SafetensorsFile, writeSafetensors } from '../io/safetensors'
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

/** Reads one SAE's decoder rows, unit-normalised, checking its size against the series. */
async function unitDecoder(dir: string): Promise<{ rows: Float32Array; n: number; d: number; step: number | null }> {
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
    const rows = await f.readFloat32('W_dec')
    for (let i = 0; i < n; i++) {
      let s = 0
      for (let j = 0; j < d; j++) s += rows[i * d + j]! ** 2
      const inv = s > 0 ? 1 / Math.sqrt(s) : 0
      for (let j = 0; j < d; j++) rows[i * d + j]! *= inv
    }
    const step = typeof cfg.featuretrace?.checkpoint_step === 'number' ? cfg.featuretrace.checkpoint_step : null
    return { rows, n, d, step }
  } finally {
    await f.close()
  }
}

function rowDots(a: Float32Array, b: Float32Array, n: number, d: number, out: Float32Array, offset: number): void {
  for (let i = 0; i < n; i++) {
    let s = 0
    for (let j = 0; j < d; j++) s += a[i * d + j]! * b[i * d + j]!
    out[offset + i] = s
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
  const final = await unitDecoder(saeDirs[T - 1]!)
  const { n, d } = final
  const cosToFinal = new Float32Array(T * n)
  const cosToPrevious = new Float32Array(T * n)
  const matchToFinal = opts.match ? new Int32Array(T * n) : null
  const matchCos = opts.match ? new Float32Array(T * n) : null
  const steps: (number | null)[] = []
  let method: string | null = null
  const meter = new ProgressMeter(T, 'SAE')
  let previous: Float32Array | null = null
  for (let t = 0; t < T; t++) {
    const cur = t === T - 1 ? final : await unitDecoder(saeDirs[t]!)
    if (cur.n !== n || cur.d !== d) throw new UserError(`${saeDirs[t]} has ${cur.n} latents of width ${cur.d}; the final SAE has ${n} of width ${d}.`)
    steps.push(cur.step)
    rowDots(cur.rows, final.rows, n, d, cosToFinal, t * n)
    if (previous) rowDots(cur.rows, previous, n, d, cosToPrevious, t * n)
    else cosToPrevious.fill(1, 0, n)
    if (matchToFinal && matchCos) {
      const m = await matchRows(cur.rows, final.rows, n, d)
      matchToFinal.set(m.col, t * n)
      matchCos.set(m.cos, t * n)
      method = m.method
    }
    previous = cur.rows
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

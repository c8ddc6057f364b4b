// Feature drift along a series of SAEs (METHODS §2): for every latent, the cosine of its decoder row to the
// final SAE's and to the previous SAE's. Decoder weights are read checkpoint by checkpoint; only the final
// and the previous SAE's rows are held at once. With matching, each SAE's rows are also assigned one-to-one
// to the final SAE's rows by decoder cosine (for series that are not warm-started).
import * as tf from '@tensorflow/tfjs-core'
import { join } from 'node:path'
import { UserError } from '../../shared/api'
import { readProblem } from '../io/json-file'
import { SafetensorsFile, writeSafetensors } from '../io/safetensors'
import { DriftKernel, sharedBytes, sharedRows, type SharedRows } from './drift-kernel'
import { JobCancelled, type JobContext } from '../jobs/job'
import { ProgressMeter } from '../jobs/progress'
import { CFG_FILE, WEIGHTS_FILE } from '../sae/sae'
import { greedyAssignment, solveAssignment } from './assignment'
import { readFileSync } from 'node:fs'
import { readJson } from '../io/sae-formats/common'
import { resolveSaeLensConfig } from '../io/sae-formats/saelens'

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

/** One SAE's decoder on disk: its shape and step, checked against its cfg.json, read on demand. */
interface StoredDecoder {
  dir: string
  n: number
  d: number
  step: number | null
  dtype: 'F16' | 'BF16' | 'F32'
  bytes: number
}

async function openDecoder(dir: string): Promise<StoredDecoder> {
  const cfgFile = join(dir, CFG_FILE)
  let text: string
  try {
    text = readFileSync(cfgFile, 'utf8')
  } catch (err) {
    throw new UserError(`${cfgFile} ${readProblem(err)}; expected an SAE folder in SAELens layout with its ${CFG_FILE}.`)
  }
  // The one SAELens reader resolves the config; only the decoder's bytes are read here, for the kernel.
  const cfg = resolveSaeLensConfig(cfgFile, readJson(cfgFile, text))
  const f = await SafetensorsFile.open(join(dir, WEIGHTS_FILE))
  try {
    const info = f.info('W_dec')
    const [n, d] = info.shape as [number, number]
    if (info.shape.length !== 2 || n !== cfg.n || d !== cfg.d) {
      throw new UserError(`${f.file}: W_dec is [${info.shape.join(', ')}] but ${CFG_FILE} says d_sae ${cfg.n}, d_in ${cfg.d}.`)
    }
    if (info.dtype !== 'F16' && info.dtype !== 'BF16' && info.dtype !== 'F32') {
      throw new UserError(`${f.file}: W_dec is ${info.dtype}; drift reads F16, BF16 or F32 decoders.`)
    }
    const step = typeof cfg.featuretrace?.checkpoint_step === 'number' ? cfg.featuretrace.checkpoint_step : null
    return { dir, n, d, step, dtype: info.dtype, bytes: info.end - info.begin }
  } finally {
    await f.close()
  }
}

/** Reads a decoder's stored bytes into shared memory (reusing `buffer` when it has the right size). */
async function readDecoderBytes(dec: StoredDecoder, buffer: Uint8Array | null): Promise<Uint8Array> {
  const into = buffer && buffer.byteLength === dec.bytes ? buffer : sharedBytes(dec.bytes)
  const f = await SafetensorsFile.open(join(dec.dir, WEIGHTS_FILE))
  try {
    await f.readBytes('W_dec', into)
  } finally {
    await f.close()
  }
  return into
}

/** Unit rows as float32, for matching. */
function unitRows32(x: SharedRows, n: number, d: number): Float32Array {
  const out = new Float32Array(n * d)
  for (let i = 0; i < n; i++) {
    const inv = x.norms[i]! > 0 ? 1 / x.norms[i]! : 0
    for (let j = i * d, e = j + d; j < e; j++) out[j] = x.rows[j]! * inv
  }
  return out
}

type Matching = { col: Int32Array; cos: Float32Array; method: string }

/** Row i of `a` assigned to a row of `b` by decoder cosine: exact up to EXACT_MATCH_MAX, greedy beyond. */
export async function matchRows(a: Float32Array, b: Float32Array, n: number, d: number, signal?: AbortSignal): Promise<Matching> {
  return n <= EXACT_MATCH_MAX ? exactMatch(a, b, n, d) : greedyMatch(a, b, n, d, signal)
}

/** The optimal one-to-one assignment of unit rows by cosine (Hungarian method on the full n × n similarity). */
export async function exactMatch(a: Float32Array, b: Float32Array, n: number, d: number): Promise<Matching> {
  const sim = tf.tidy(() => tf.matMul(tf.tensor2d(a, [n, d]), tf.tensor2d(b, [n, d]), false, true))
  const cost = (await sim.data()) as Float32Array
  sim.dispose()
  // Minimum cost = maximum cosine; negated in place, since at n = 16,384 the matrix is 1 GiB.
  for (let i = 0; i < cost.length; i++) cost[i] = -cost[i]!
  const col = solveAssignment(cost, n)
  const cos = Float32Array.from(col, (c, i) => -cost[i * n + c]!)
  return { col, cos, method: 'exact' }
}

/** Each row's CANDIDATES most similar rows, block by block, then pairs taken greedily (within a factor 2 of the optimum; may leave rows unmatched, -1). */
export async function greedyMatch(a: Float32Array, b: Float32Array, n: number, d: number, signal?: AbortSignal): Promise<Matching> {
  const candidates = Math.min(CANDIDATES, n)
  const A = tf.tensor2d(a, [n, d])
  const BT = tf.transpose(tf.tensor2d(b, [n, d]))
  try {
    const topIdx = new Int32Array(n * candidates)
    const topSim = new Float32Array(n * candidates)
    const block = Math.max(1, Math.floor((256 * 2 ** 20) / (4 * n)))
    for (let s = 0; s < n; s += block) {
      if (signal?.aborted) throw new JobCancelled()
      const m = Math.min(block, n - s)
      const { values, indices } = tf.tidy(() => tf.topk(tf.matMul(tf.slice(A, [s, 0], [m, d]), BT), candidates))
      topSim.set((await values.data()) as Float32Array, s * candidates)
      topIdx.set((await indices.data()) as Int32Array, s * candidates)
      tf.dispose([values, indices])
    }
    const col = greedyAssignment(topIdx, topSim, n, candidates)
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
  const decoders: StoredDecoder[] = []
  for (const dir of saeDirs) decoders.push(await openDecoder(dir))
  const { n, d } = decoders[T - 1]!
  for (const dec of decoders) {
    if (dec.n !== n || dec.d !== d) throw new UserError(`${dec.dir} has ${dec.n} latents of width ${dec.d}; the final SAE has ${n} of width ${d}.`)
  }
  const cosToFinal = new Float32Array(T * n)
  const cosToPrevious = new Float32Array(T * n)
  const matchToFinal = opts.match ? new Int32Array(T * n) : null
  const matchCos = opts.match ? new Float32Array(T * n) : null
  let method: string | null = null
  const meter = new ProgressMeter(T, 'SAE')
  const kernel = new DriftKernel()
  try {
    const final = sharedRows(n, d)
    const finalDec = decoders[T - 1]!
    await kernel.pass({ n, d, raw: { bytes: await readDecoderBytes(finalDec, null), dtype: finalDec.dtype }, into: final, final: null, previous: null })
    const finalUnit = opts.match ? unitRows32(final, n, d) : null
    const match = async (rows: SharedRows, t: number): Promise<void> => {
      if (!matchToFinal || !matchCos || !finalUnit) return
      if (ctx.signal.aborted) throw new JobCancelled()
      const m = await matchRows(unitRows32(rows, n, d), finalUnit, n, d, ctx.signal)
      matchToFinal.set(m.col, t * n)
      matchCos.set(m.cos, t * n)
      method = m.method
    }
    // Two byte buffers alternate: the next SAE is read from disk while the workers decode this one.
    const raws: (Uint8Array | null)[] = [null, null]
    let pending = T > 1 ? readDecoderBytes(decoders[0]!, null) : null
    let previous: SharedRows | null = null
    let spare: SharedRows | null = null
    for (let t = 0; t < T - 1; t++) {
      const bytes = await pending!
      raws[t % 2] = bytes
      pending = t + 1 < T - 1 ? readDecoderBytes(decoders[t + 1]!, raws[(t + 1) % 2]!) : null
      const cur: SharedRows = spare ?? sharedRows(n, d)
      const r = await kernel.pass({ n, d, raw: { bytes, dtype: decoders[t]!.dtype }, into: cur, final, previous })
      cosToFinal.set(r.cosToFinal, t * n)
      cosToPrevious.set(r.cosToPrevious, t * n)
      await match(cur, t)
      spare = previous
      previous = cur
      ctx.progress(meter.update(t + 1, `SAE ${t + 1}/${T}`))
      if (ctx.signal.aborted) throw new JobCancelled()
    }
    // The final SAE against itself (cosine 1) and against the one before it.
    const r = await kernel.pass({ n, d, into: final, final: null, previous })
    cosToFinal.set(r.cosToFinal, (T - 1) * n)
    cosToPrevious.set(r.cosToPrevious, (T - 1) * n)
    await match(final, T - 1)
    ctx.progress(meter.update(T, `SAE ${T}/${T}`))
  } finally {
    await kernel.close()
  }
  return { steps: decoders.map((x) => x.step), n, cosToFinal, cosToPrevious, matchToFinal, matchCos, matchMethod: method }
}

/** One latent's decoder row of a stored SAE, as float32 (the trajectory of one feature reads only these). */
export async function decoderRow(dir: string, feature: number): Promise<Float32Array> {
  const f = await SafetensorsFile.open(join(dir, WEIGHTS_FILE))
  try {
    return await f.readFloat32Rows('W_dec', feature, 1)
  } finally {
    await f.close()
  }
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

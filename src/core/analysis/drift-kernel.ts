// The inner loop of drift at SAE-Track scale (154 SAEs × 65,536 × 1,024): each stored decoder is decoded
// once into float32 and, in the same pass, its row norms and the dot products with the final and the
// previous SAE's rows are taken. Two worker threads split the rows (these machines have two cores) over
// shared memory, while the main thread reads the next SAE from disk.
import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import { F16_TABLE } from '../io/safetensors'

/** The worker's code, self-contained (an eval'd CommonJS script), so it needs no bundled entry file. */
const KERNEL = `
const { parentPort } = require('node:worker_threads')
parentPort.on('message', (m) => {
  const { n, d, r0, r1, dtype, decode } = m
  const cur = new Float32Array(m.cur)
  const norms = new Float64Array(m.norms)
  const fin = m.fin ? new Float32Array(m.fin) : null
  const finNorms = m.finNorms ? new Float64Array(m.finNorms) : null
  const prev = m.prev ? new Float32Array(m.prev) : null
  const prevNorms = m.prevNorms ? new Float64Array(m.prevNorms) : null
  const outF = new Float32Array(m.outF)
  const outP = new Float32Array(m.outP)
  const table = new Float32Array(m.table)
  const u16 = decode && dtype !== 'F32' ? new Uint16Array(m.raw) : null
  const f32 = decode && dtype === 'F32' ? new Float32Array(m.raw) : null
  const bits = new Uint32Array(1)
  const asFloat = new Float32Array(bits.buffer)
  for (let i = r0; i < r1; i++) {
    const o = i * d
    let ss = 0, dotF = 0, dotP = 0
    for (let j = o, e = o + d; j < e; j++) {
      let x
      if (!decode) x = cur[j]
      else {
        if (u16 === null) x = f32[j]
        else if (dtype === 'F16') x = table[u16[j]]
        else { bits[0] = u16[j] << 16; x = asFloat[0] }
        cur[j] = x
      }
      ss += x * x
      if (fin !== null) dotF += x * fin[j]
      if (prev !== null) dotP += x * prev[j]
    }
    const norm = Math.sqrt(ss)
    norms[i] = norm
    if (fin !== null) { const den = norm * finNorms[i]; outF[i] = den > 0 ? dotF / den : 0 } else outF[i] = 1
    if (prev !== null) { const den = norm * prevNorms[i]; outP[i] = den > 0 ? dotP / den : 0 } else outP[i] = 1
  }
  parentPort.postMessage(null)
})
`

/** One SAE's decoder decoded to float32 in shared memory, with its row norms. */
export interface SharedRows {
  rows: Float32Array
  norms: Float64Array
}

export interface PassInput {
  n: number
  d: number
  /** The stored bytes (F16, BF16 or F32) to decode into `into`; absent: `into` already holds the rows. */
  raw?: { bytes: Uint8Array; dtype: 'F16' | 'BF16' | 'F32' }
  into: SharedRows
  final: SharedRows | null
  previous: SharedRows | null
}

export function sharedRows(n: number, d: number): SharedRows {
  return { rows: new Float32Array(new SharedArrayBuffer(n * d * 4)), norms: new Float64Array(new SharedArrayBuffer(n * 8)) }
}

export function sharedBytes(length: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(length))
}

export class DriftKernel {
  private readonly workers: Worker[]
  private readonly table: SharedArrayBuffer

  constructor(threads = Math.max(1, Math.min(2, availableParallelism()))) {
    this.table = new SharedArrayBuffer(65536 * 4)
    new Float32Array(this.table).set(F16_TABLE)
    this.workers = Array.from({ length: threads }, () => new Worker(KERNEL, { eval: true }))
  }

  /** One fused pass: decode (if raw given), norms, cosines to the final and previous rows. */
  async pass(p: PassInput): Promise<{ cosToFinal: Float32Array; cosToPrevious: Float32Array }> {
    const outF = new Float32Array(new SharedArrayBuffer(p.n * 4))
    const outP = new Float32Array(new SharedArrayBuffer(p.n * 4))
    if (p.raw && !(p.raw.bytes.buffer instanceof SharedArrayBuffer)) throw new Error('DriftKernel.pass: raw bytes must live in shared memory (sharedBytes)')
    const W = this.workers.length
    await Promise.all(
      this.workers.map(
        (w, k) =>
          new Promise<void>((resolve, reject) => {
            const onError = (err: Error): void => reject(err)
            w.once('error', onError)
            w.once('message', () => {
              w.off('error', onError)
              resolve()
            })
            w.postMessage({
              n: p.n, d: p.d, r0: Math.floor((k * p.n) / W), r1: Math.floor(((k + 1) * p.n) / W),
              dtype: p.raw?.dtype ?? 'F32', decode: Boolean(p.raw), raw: p.raw?.bytes.buffer ?? null,
              cur: p.into.rows.buffer, norms: p.into.norms.buffer,
              fin: p.final?.rows.buffer ?? null, finNorms: p.final?.norms.buffer ?? null,
              prev: p.previous?.rows.buffer ?? null, prevNorms: p.previous?.norms.buffer ?? null,
              outF: outF.buffer, outP: outP.buffer, table: this.table
            })
          })
      )
    )
    return { cosToFinal: outF, cosToPrevious: outP }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}

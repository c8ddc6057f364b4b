// The drift kernel's worker thread: decodes its share of one SAE's decoder rows into float32 and, in the same
// pass, takes each row's norm and its cosines to the final and the previous SAE's rows. Everything lives in
// shared memory; the message only says where. Built as its own bundle (out/main/threads/drift-kernel.js).
import { parentPort, workerData } from 'node:worker_threads'

/** One pass over rows [r0, r1): what the host posts (every buffer is a SharedArrayBuffer). */
export interface KernelMessage {
  n: number
  d: number
  r0: number
  r1: number
  dtype: 'F16' | 'BF16' | 'F32'
  /** Whether `raw` holds stored bytes to decode into `cur` (else `cur` already holds the rows). */
  decode: boolean
  raw: SharedArrayBuffer | null
  cur: SharedArrayBuffer
  norms: SharedArrayBuffer
  fin: SharedArrayBuffer | null
  finNorms: SharedArrayBuffer | null
  prev: SharedArrayBuffer | null
  prevNorms: SharedArrayBuffer | null
  outF: SharedArrayBuffer
  outP: SharedArrayBuffer
  /** float16 bits → float32, 65,536 entries. */
  table: SharedArrayBuffer
}

export function kernelPass(m: KernelMessage): void {
  const { d, r0, r1, dtype, decode } = m
  const cur = new Float32Array(m.cur)
  const norms = new Float64Array(m.norms)
  const fin = m.fin ? new Float32Array(m.fin) : null
  const finNorms = m.finNorms ? new Float64Array(m.finNorms) : null
  const prev = m.prev ? new Float32Array(m.prev) : null
  const prevNorms = m.prevNorms ? new Float64Array(m.prevNorms) : null
  const outF = new Float32Array(m.outF)
  const outP = new Float32Array(m.outP)
  const table = new Float32Array(m.table)
  const u16 = decode && dtype !== 'F32' && m.raw ? new Uint16Array(m.raw) : null
  const f32 = decode && dtype === 'F32' && m.raw ? new Float32Array(m.raw) : null
  // Absent final or previous rows are stood in for by the rows themselves, so the loops have no branches;
  // those cosines are then reported as 1.
  const F = fin ?? cur
  const P = prev ?? cur
  const fromBf16 = new Float32Array(1)
  const bits = new Uint32Array(fromBf16.buffer)
  for (let i = r0; i < r1; i++) {
    const o = i * d
    const e = o + d
    let ss = 0
    let dotF = 0
    let dotP = 0
    if (!decode) {
      for (let j = o; j < e; j++) {
        const x = cur[j]!
        ss += x * x
        dotF += x * F[j]!
        dotP += x * P[j]!
      }
    } else if (u16 && dtype === 'F16') {
      for (let j = o; j < e; j++) {
        const x = table[u16[j]!]!
        cur[j] = x
        ss += x * x
        dotF += x * F[j]!
        dotP += x * P[j]!
      }
    } else if (u16) {
      for (let j = o; j < e; j++) {
        bits[0] = u16[j]! << 16
        const x = fromBf16[0]!
        cur[j] = x
        ss += x * x
        dotF += x * F[j]!
        dotP += x * P[j]!
      }
    } else if (f32) {
      for (let j = o; j < e; j++) {
        const x = f32[j]!
        cur[j] = x
        ss += x * x
        dotF += x * F[j]!
        dotP += x * P[j]!
      }
    }
    const norm = Math.sqrt(ss)
    norms[i] = norm
    if (fin !== null && finNorms !== null) {
      const den = norm * finNorms[i]!
      outF[i] = den > 0 ? dotF / den : 0
    } else outF[i] = 1
    if (prev !== null && prevNorms !== null) {
      const den = norm * prevNorms[i]!
      outP[i] = den > 0 ? dotP / den : 0
    } else outP[i] = 1
  }
}

/** What the host passes as workerData, so that importing this module anywhere else starts nothing. */
export const KERNEL_WORKER_DATA = { featuretraceDriftKernel: true } as const

// As the kernel's worker thread: one pass per message, an empty reply when done.
const port = parentPort
if (port && (workerData as Partial<typeof KERNEL_WORKER_DATA> | null)?.featuretraceDriftKernel === true) {
  port.on('message', (m: KernelMessage) => {
    kernelPass(m)
    port.postMessage(null)
  })
}

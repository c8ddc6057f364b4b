// The drift kernel's pass (the worker thread's code, imported as a module): decoding F16, BF16 and F32 rows
// and their cosines to the final and previous rows, against a plain computation.
import { describe, expect, it } from 'vitest'
import { kernelPass, type KernelMessage } from '../../src/core/analysis/drift-kernel-worker'
import { F16_TABLE, toFloat16Bits } from '../../src/core/io/safetensors'

const shared = (bytes: number): SharedArrayBuffer => new SharedArrayBuffer(bytes)
const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!
    na += a[i]! * a[i]!
    nb += b[i]! * b[i]!
  }
  return dot / Math.sqrt(na * nb)
}

function rows(n: number, d: number, seed: number): Float32Array {
  return Float32Array.from({ length: n * d }, (_, i) => Math.sin(seed * 7.1 + i * 1.3) + 0.1 * Math.cos(i * seed))
}

function run(
  dtype: KernelMessage['dtype'],
  n: number,
  d: number
): { cur: Float32Array; outF: Float32Array; outP: Float32Array; fin: Float32Array; prev: Float32Array } {
  const x = rows(n, d, 1)
  const fin = rows(n, d, 2)
  const prev = rows(n, d, 3)
  const stored =
    dtype === 'F32'
      ? new Uint8Array(x.buffer)
      : dtype === 'F16'
        ? new Uint8Array(toFloat16Bits(x).buffer)
        : new Uint8Array(Uint16Array.from(new Uint32Array(x.buffer), (b) => b >>> 16).buffer)
  const raw = shared(stored.byteLength)
  new Uint8Array(raw).set(stored)
  const put = (a: Float32Array): SharedArrayBuffer => {
    const s = shared(a.byteLength)
    new Float32Array(s).set(a)
    return s
  }
  const norms = (a: Float32Array): SharedArrayBuffer => {
    const s = shared(n * 8)
    const v = new Float64Array(s)
    for (let i = 0; i < n; i++) v[i] = Math.hypot(...a.subarray(i * d, (i + 1) * d))
    return s
  }
  const table = shared(65536 * 4)
  new Float32Array(table).set(F16_TABLE)
  const m: KernelMessage = {
    n,
    d,
    r0: 0,
    r1: n,
    dtype,
    decode: true,
    raw,
    cur: shared(n * d * 4),
    norms: shared(n * 8),
    fin: put(fin),
    finNorms: norms(fin),
    prev: put(prev),
    prevNorms: norms(prev),
    outF: shared(n * 4),
    outP: shared(n * 4),
    table
  }
  kernelPass(m)
  return { cur: new Float32Array(m.cur), outF: new Float32Array(m.outF), outP: new Float32Array(m.outP), fin, prev }
}

describe('drift kernel pass', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`decodes ${dtype} rows and gives their cosines to the final and previous rows`, () => {
      const n = 7
      const d = 13
      const { cur, outF, outP, fin, prev } = run(dtype, n, d)
      const x = rows(n, d, 1)
      const tolerance = dtype === 'F32' ? 1e-7 : dtype === 'F16' ? 2e-3 : 2e-2
      for (let j = 0; j < n * d; j++) expect(Math.abs(cur[j]! - x[j]!)).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(x[j]!)))
      for (let i = 0; i < n; i++) {
        const row = cur.subarray(i * d, (i + 1) * d)
        expect(outF[i]).toBeCloseTo(cosine(row, fin.subarray(i * d, (i + 1) * d)), 5)
        expect(outP[i]).toBeCloseTo(cosine(row, prev.subarray(i * d, (i + 1) * d)), 5)
      }
    })
  }

  it('reports cosine 1 where there is no final or previous SAE', () => {
    const n = 3
    const d = 4
    const cur = shared(n * d * 4)
    new Float32Array(cur).set(rows(n, d, 5))
    const m: KernelMessage = {
      n,
      d,
      r0: 0,
      r1: n,
      dtype: 'F32',
      decode: false,
      raw: null,
      cur,
      norms: shared(n * 8),
      fin: null,
      finNorms: null,
      prev: null,
      prevNorms: null,
      outF: shared(n * 4),
      outP: shared(n * 4),
      table: shared(4)
    }
    kernelPass(m)
    expect([...new Float32Array(m.outF)]).toEqual([1, 1, 1])
    expect([...new Float32Array(m.outP)]).toEqual([1, 1, 1])
    expect(new Float64Array(m.norms)[0]).toBeCloseTo(Math.hypot(...rows(n, d, 5).subarray(0, d)), 5)
  })
})

// How a feature's statistics and examples are stored: compact blobs (token indices and f16 activations) and
// the feature table's columns in order.
import { toFloat16Bits, toFloat32 } from '../io/safetensors'

export const SAMPLERS = ['paper', 'top', 'interval', 'imported'] as const
export type Sampler = (typeof SAMPLERS)[number]

export interface StoredExample {
  sampler: Sampler
  /** Indices into the set's token table. */
  tokens: number[]
  acts: Float32Array
}

/** Examples as one blob: [count] then per example [sampler, length, token indices…] (u32) and f16 activations. */
export function encodeExamples(examples: StoredExample[]): Buffer {
  const parts: Buffer[] = []
  const head = Buffer.alloc(4)
  head.writeUInt32LE(examples.length)
  parts.push(head)
  for (const ex of examples) {
    const meta = new Uint32Array([SAMPLERS.indexOf(ex.sampler), ex.tokens.length, ...ex.tokens])
    parts.push(Buffer.from(meta.buffer), Buffer.from(toFloat16Bits(ex.acts).buffer))
  }
  return Buffer.concat(parts)
}

export function decodeExamples(blob: Buffer): StoredExample[] {
  const out: StoredExample[] = []
  let o = 4
  const count = blob.readUInt32LE(0)
  for (let e = 0; e < count; e++) {
    const sampler = SAMPLERS[blob.readUInt32LE(o)] ?? 'imported'
    const len = blob.readUInt32LE(o + 4)
    const tokens: number[] = []
    for (let i = 0; i < len; i++) tokens.push(blob.readUInt32LE(o + 8 + 4 * i))
    o += 8 + 4 * len
    const acts = toFloat32(blob.subarray(o, o + 2 * len), 'F16')
    o += 2 * len
    out.push({ sampler, tokens, acts })
  }
  return out
}

export function floats(blob: Buffer | null): number[] {
  if (!blob) return []
  return Array.from(new Float32Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength)))
}

export interface FeatureRecord {
  feature: number
  density: number | null
  maxAct: number | null
  meanAct: number | null
  dead: boolean
  langClass: string | null
  langCounts: Record<string, number> | null
  topTokens: string
  /** [lo, hi, then 50 counts]: bins are log-spaced between lo and hi. */
  histogram: Float32Array | null
  /** Pairs of (feature, cosine). */
  neighbours: { feature: number; cosine: number }[]
  examples: StoredExample[]
}

/** A feature record as the feature table's columns after set_id, in order. */
export function featureColumns(f: FeatureRecord): unknown[] {
  const nb = new Float32Array(f.neighbours.length * 2)
  f.neighbours.forEach((x, i) => ((nb[2 * i] = x.feature), (nb[2 * i + 1] = x.cosine)))
  return [
    f.feature,
    f.density,
    f.maxAct,
    f.meanAct,
    f.dead ? 1 : 0,
    f.langClass,
    f.langCounts ? JSON.stringify(f.langCounts) : null,
    f.topTokens,
    f.histogram ? Buffer.from(f.histogram.buffer, f.histogram.byteOffset, f.histogram.byteLength) : null,
    Buffer.from(nb.buffer),
    encodeExamples(f.examples)
  ]
}

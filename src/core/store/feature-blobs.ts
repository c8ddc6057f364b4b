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
  /** Tokens the decoder row promotes and suppresses through the model's head (analysis/logit-effects.ts); null: none. */
  logitEffects?: StoredLogitEffects | null
  /** Latents whose activations correlate most with this one's (analysis/correlations.ts); null: not computed. */
  correlations?: { feature: number; r: number }[] | null
}

/** A logit-effect token: vocabulary id, index into the set's token table (its text), effect in logits. */
export interface StoredLogitToken {
  token: number
  text: number
  value: number
}

export interface StoredLogitEffects {
  positive: StoredLogitToken[]
  negative: StoredLogitToken[]
  /** Equal-width bins of every vocabulary token's effect between lo and hi. */
  histogram: { lo: number; hi: number; counts: Float32Array }
}

/** Logit effects as one blob: u32 [positive, negative, bins], f32 [lo, hi], per token u32 id, u32 text, f32 value, then f32 counts. */
export function encodeLogitEffects(e: StoredLogitEffects): Buffer {
  const tokens = [...e.positive, ...e.negative]
  const b = Buffer.alloc(20 + 12 * tokens.length + 4 * e.histogram.counts.length)
  b.writeUInt32LE(e.positive.length, 0)
  b.writeUInt32LE(e.negative.length, 4)
  b.writeUInt32LE(e.histogram.counts.length, 8)
  b.writeFloatLE(e.histogram.lo, 12)
  b.writeFloatLE(e.histogram.hi, 16)
  let o = 20
  for (const t of tokens) {
    b.writeUInt32LE(t.token, o)
    b.writeUInt32LE(t.text, o + 4)
    b.writeFloatLE(t.value, o + 8)
    o += 12
  }
  for (const c of e.histogram.counts) o = b.writeFloatLE(c, o)
  return b
}

export function decodeLogitEffects(b: Buffer): StoredLogitEffects {
  const [np, nn, bins] = [b.readUInt32LE(0), b.readUInt32LE(4), b.readUInt32LE(8)]
  const token = (i: number): StoredLogitToken => ({ token: b.readUInt32LE(20 + 12 * i), text: b.readUInt32LE(24 + 12 * i), value: b.readFloatLE(28 + 12 * i) })
  const at = 20 + 12 * (np + nn)
  return {
    positive: Array.from({ length: np }, (_, i) => token(i)),
    negative: Array.from({ length: nn }, (_, i) => token(np + i)),
    histogram: { lo: b.readFloatLE(12), hi: b.readFloatLE(16), counts: Float32Array.from({ length: bins }, (_, i) => b.readFloatLE(at + 4 * i)) }
  }
}

/** Pairs (feature, value) as f32 [feature, value, feature, value, …] (exact for feature ids below 2^24). */
export function encodePairs(pairs: { feature: number; value: number }[]): Buffer {
  const a = new Float32Array(pairs.length * 2)
  pairs.forEach((x, i) => ((a[2 * i] = x.feature), (a[2 * i + 1] = x.value)))
  return Buffer.from(a.buffer)
}

/** A feature record as the feature table's columns after set_id, in order. */
export function featureColumns(f: FeatureRecord): unknown[] {
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
    encodePairs(f.neighbours.map((x) => ({ feature: x.feature, value: x.cosine }))),
    encodeExamples(f.examples),
    f.logitEffects ? encodeLogitEffects(f.logitEffects) : null,
    f.correlations ? encodePairs(f.correlations.map((x) => ({ feature: x.feature, value: x.r }))) : null
  ]
}

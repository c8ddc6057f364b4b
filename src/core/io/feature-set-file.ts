// One SAE's feature statistics as a file: how the feature-stats worker hands a set to the host, which stores it.
// A paper-scale set (65,536 features, ~80 examples each) is far too large for one message on the job channel,
// so the worker writes it here record by record and the host reads it back record by record inside the
// transaction that stores it: neither side holds more than one feature's record beyond the token table.
// Layout: "FTFS2\n", then length-prefixed (u32 LE) parts: a JSON header, and per feature a JSON record, its
// histogram (f32), its examples blob and its logit-effects blob as feature-blobs.ts encodes them (empty: none).
import { closeSync, openSync, readSync, writeSync } from 'node:fs'
import { z } from 'zod'
import { FeatureDetailSchema, UserError } from '../../shared/api'
import { decodeExamples, decodeLogitEffects, encodeExamples, encodeLogitEffects, type FeatureRecord } from '../store/feature-blobs'

const MAGIC = Buffer.from('FTFS2\n')

const HeaderSchema = z.object({ tokens: z.array(z.string()), features: z.number().int().nonnegative() })

/** A feature's record without its histogram and examples (which follow it as bytes): its dashboard's fields. */
const RecordSchema = FeatureDetailSchema.pick({
  feature: true,
  density: true,
  maxAct: true,
  meanAct: true,
  dead: true,
  langClass: true,
  langCounts: true,
  neighbours: true,
  correlations: true
}).extend({
  topTokens: z.string()
})

function part(bytes: Buffer): Buffer[] {
  const len = Buffer.alloc(4)
  len.writeUInt32LE(bytes.byteLength)
  return [len, bytes]
}

/** Writes a set's token table and features to `file` (which the host will read with readFeatureSetFile). */
export function writeFeatureSetFile(file: string, tokens: string[], features: Iterable<FeatureRecord>, count: number): void {
  const fd = openSync(file, 'w')
  try {
    const write = (bufs: Buffer[]): void => {
      for (const b of bufs) writeSync(fd, b)
    }
    write([MAGIC, ...part(Buffer.from(JSON.stringify({ tokens, features: count })))])
    for (const f of features) {
      const { histogram, examples, logitEffects, ...meta } = f
      write([
        ...part(Buffer.from(JSON.stringify({ ...meta, correlations: meta.correlations ?? null }))),
        ...part(histogram ? Buffer.from(histogram.buffer, histogram.byteOffset, histogram.byteLength) : Buffer.alloc(0)),
        ...part(encodeExamples(examples)),
        ...part(logitEffects ? encodeLogitEffects(logitEffects) : Buffer.alloc(0))
      ])
    }
  } finally {
    closeSync(fd)
  }
}

/** Reads a set file: its token table at once, its features one by one; the caller closes it (close() is idempotent). */
export function readFeatureSetFile(file: string): { tokens: string[]; features: number; records: Iterable<FeatureRecord>; close(): void } {
  const fd = openSync(file, 'r')
  let open = true
  const close = (): void => {
    if (open) closeSync(fd)
    open = false
  }
  let at = 0
  const take = (n: number): Buffer => {
    const b = Buffer.alloc(n)
    let got = 0
    while (got < n) {
      const r = readSync(fd, b, got, n - got, at + got)
      if (r === 0) throw new UserError(`${file} ends early: the feature statistics it holds are incomplete.`)
      got += r
    }
    at += n
    return b
  }
  const next = (): Buffer => take(take(4).readUInt32LE(0))
  const json = <S extends z.ZodType>(schema: S, what: string): z.output<S> => {
    const parsed = schema.safeParse(JSON.parse(next().toString('utf8')))
    if (!parsed.success) throw new UserError(`${file}: ${what} is not what the feature-stats job writes (${parsed.error.issues[0]?.message}).`)
    return parsed.data
  }
  try {
    if (!take(MAGIC.byteLength).equals(MAGIC)) throw new UserError(`${file} is not a feature set file.`)
    const header = json(HeaderSchema, 'the header')
    function* records(): Generator<FeatureRecord> {
      for (let i = 0; i < header.features; i++) {
        const meta = json(RecordSchema, `record ${i}`)
        const h = next()
        const histogram = h.byteLength ? new Float32Array(h.buffer.slice(h.byteOffset, h.byteOffset + h.byteLength)) : null
        const examples = decodeExamples(next())
        const logit = next()
        yield { ...meta, histogram, examples, logitEffects: logit.byteLength ? decodeLogitEffects(logit) : null }
      }
    }
    return { tokens: header.tokens, features: header.features, records: records(), close }
  } catch (err) {
    close()
    throw err
  }
}

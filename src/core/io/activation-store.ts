// The activation store: sharded safetensors of one layer's activations plus a token table, a manifest,
// and the documents. Written under DIR.partial and renamed to DIR only when complete, so an interrupted
// harvest never looks finished; a partial store records its progress so a harvest resumes where it stopped.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { UserError } from '../../shared/api'
import { readJsonFile } from './json-file'
import { Rng } from '../random'
import { IO_CHUNK_BYTES, SafetensorsFile, toFloat16Bits, writeSafetensors } from './safetensors'

export const STORE_FORMAT = 'featuretrace.activations'
export const STORE_VERSION = 1

const ManifestSchema = z.object({
  format: z.literal(STORE_FORMAT),
  version: z.number().int(),
  model: z.string(),
  modelType: z.string(),
  checkpointStep: z.number().int().nullable(),
  layer: z.number().int().nonnegative(),
  finalNorm: z.boolean(),
  d: z.number().int().positive(),
  dtype: z.enum(['f16', 'f32']),
  context: z.number().int().positive(),
  bos: z.boolean(),
  seed: z.number().int(),
  corpus: z.string(),
  maxTokens: z.number().int().positive().nullable(),
  dropShort: z.boolean(),
  rows: z.number().int().nonnegative(),
  sequences: z.number().int().nonnegative(),
  shards: z.array(z.object({ file: z.string().regex(/^shard-\d{5}\.safetensors$/), rows: z.number().int().nonnegative() })),
  createdBy: z.string()
})
export type StoreManifest = z.infer<typeof ManifestSchema>
/** What the caller decides; the writer fills in rows, sequences and shards. */
export type StoreSettings = Omit<StoreManifest, 'format' | 'version' | 'rows' | 'sequences' | 'shards'>

function parseJsonLine(line: string): unknown {
  try {
    return JSON.parse(line)
  } catch {
    return undefined
  }
}

const StoredDocumentSchema = z.object({ id: z.number().int().nonnegative(), lang: z.string().nullable(), source: z.string() })
export type StoredDocument = z.infer<typeof StoredDocumentSchema>

/** What an interrupted harvest left to resume from: its settings, the shards it completed, the sequences done. */
const ProgressSchema = z.object({
  settings: ManifestSchema.omit({ format: true, version: true, rows: true, sequences: true, shards: true }),
  shards: ManifestSchema.shape.shards,
  sequencesDone: z.number().int().nonnegative()
})

const MANIFEST = 'manifest.json'
const PROGRESS = 'progress.json'
const DOCUMENTS = 'documents.jsonl'
const TOKENS = 'tokens.json'
const shardName = (i: number): string => `shard-${String(i).padStart(5, '0')}.safetensors`

/**
 * A shard closes once its activations reach this many bytes: readers hold one shard in memory as float32,
 * so a shard's size must not grow with d (an f32 harvest at d = 8,192 would make 2 GiB shards of 65,536 rows).
 */
export const SHARD_BYTES = 256 * 2 ** 20
/** A shard closes at this many rows too (what small-d stores have always used). */
export const SHARD_MAX_ROWS = 65536

/** Largest value float16 stores finitely; anything of magnitude ≥ 65520 rounds to Inf. */
export const F16_MAX = 65504
const F16_OVERFLOW = 65520

export interface ValueCheck {
  values: number
  nonFinite: number
  /** Finite values too large for the store's dtype (f16: |x| ≥ 65520, which rounds to Inf). */
  overflow: number
  /** Largest finite |x| seen. */
  maxAbs: number
}

/** Counts the values of `acts` that the dtype cannot store: non-finite ones, and for f16 those beyond its range. */
export function checkStorable(acts: Float32Array, dtype: 'f16' | 'f32'): ValueCheck {
  let nonFinite = 0
  let overflow = 0
  let maxAbs = 0
  const limit = dtype === 'f16' ? F16_OVERFLOW : Infinity
  for (let i = 0; i < acts.length; i++) {
    const a = Math.abs(acts[i]!)
    if (!Number.isFinite(a)) nonFinite++
    else {
      if (a > maxAbs) maxAbs = a
      if (a >= limit) overflow++
    }
  }
  return { values: acts.length, nonFinite, overflow, maxAbs }
}

const fmt = (n: number): string => n.toLocaleString('en')

/** What went wrong and what to do, for values the store cannot hold. `where` names layer, checkpoint and tokens. */
export function unstorableMessage(where: string, c: ValueCheck, dtype: 'f16' | 'f32'): string {
  const parts: string[] = []
  if (c.overflow) {
    parts.push(
      `${fmt(c.overflow)} of the ${fmt(c.values)} values there exceed float16's range (±${fmt(F16_MAX)}; the largest |x| is ${c.maxAbs.toPrecision(4)}) and would be stored as Inf`
    )
  }
  if (c.nonFinite) parts.push(`${fmt(c.nonFinite)} values are already Inf or NaN in the model's output`)
  const fix =
    c.overflow && !c.nonFinite
      ? 'Harvest again with --dtype f32 (twice the disk space; float32 holds up to 3.4e38).'
      : dtype === 'f16' && c.overflow
        ? 'Harvest again with --dtype f32; the Inf/NaN values point at the checkpoint itself (check its weights and config).'
        : 'The checkpoint produces Inf/NaN here: check its weights and config.json (e.g. a float16 overflow inside the model).'
  return `${where}: ${parts.join('; ')}. Nothing was stored. ${fix}`
}

/** Settings that must agree for a partial store to be resumed rather than restarted. */
function sameRun(a: StoreSettings, b: StoreSettings): boolean {
  const keys: (keyof StoreSettings)[] = ['model', 'layer', 'finalNorm', 'd', 'dtype', 'context', 'bos', 'seed', 'corpus', 'maxTokens', 'dropShort']
  return keys.every((k) => a[k] === b[k])
}

export class ActivationStoreWriter {
  /** Each buffered sequence's activations, already in the stored dtype (f16 bits or f32). */
  private buffers: { acts: (Uint16Array | Float32Array)[]; doc: number[]; position: number[]; token: number[] } = { acts: [], doc: [], position: [], token: [] }
  private bufferedRows = 0
  private readonly tokenIds = new Set<number>()
  private readonly resumedShards: number

  private constructor(
    readonly dir: string,
    private readonly partial: string,
    private readonly settings: StoreSettings,
    private readonly shardRows: number,
    private readonly shardBytes: number,
    private shards: { file: string; rows: number }[],
    /** Sequences already stored (in flushed shards): the harvest resumes after them. */
    public sequencesDone: number,
    private sequencesBuffered: number
  ) {
    this.resumedShards = shards.length
  }

  /**
   * Opens DIR.partial for writing, resuming it when it was left by the same run. A complete DIR is
   * refused unless it holds exactly this run (then `complete` is true and nothing needs doing).
   */
  static begin(
    dir: string,
    settings: StoreSettings,
    shardRows = SHARD_MAX_ROWS,
    shardBytes = SHARD_BYTES
  ): ActivationStoreWriter | { complete: true; manifest: StoreManifest } {
    if (existsSync(join(dir, MANIFEST))) {
      const existing = ActivationStore.readManifest(dir)
      if (sameRun(existing, settings)) return { complete: true, manifest: existing }
      throw new UserError(`${dir} already holds a different activation store; remove it or choose another output folder.`)
    }
    if (existsSync(dir) && readdirSync(dir).length > 0) {
      throw new UserError(`${dir} exists and is not an activation store; choose an empty or new output folder.`)
    }
    const partial = `${dir}.partial`
    let shards: { file: string; rows: number }[] = []
    let done = 0
    const progressFile = join(partial, PROGRESS)
    if (existsSync(progressFile)) {
      const progress = readJsonFile(progressFile, ProgressSchema, 'the progress record of an interrupted harvest (delete the .partial folder to start over)')
      if (sameRun(progress.settings, settings)) {
        shards = progress.shards
        done = progress.sequencesDone
        // Shards written after the last progress record are incomplete work: drop them.
        for (const f of readdirSync(partial)) {
          if (f.startsWith('shard-') && !shards.some((s) => s.file === f)) rmSync(join(partial, f))
        }
      } else {
        rmSync(partial, { recursive: true, force: true })
      }
    } else if (existsSync(partial)) {
      rmSync(partial, { recursive: true, force: true })
    }
    try {
      mkdirSync(partial, { recursive: true })
    } catch (err) {
      throw new UserError(`Cannot write the activation store at ${partial}: ${(err as Error).message}`)
    }
    return new ActivationStoreWriter(dir, partial, settings, shardRows, shardBytes, shards, done, 0)
  }

  get rows(): number {
    return this.shards.reduce((s, x) => s + x.rows, 0) + this.bufferedRows
  }

  /**
   * Adds one whole sequence's rows; shards close on sequence boundaries so resume is exact. Values the
   * store's dtype cannot hold (non-finite, or beyond float16's range) are refused, never stored lossy.
   */
  async appendSequence(acts: Float32Array, doc: number, positions: number[], tokens: number[]): Promise<void> {
    const n = positions.length
    const { d, dtype } = this.settings
    if (acts.length !== n * d) throw new Error(`appendSequence: ${acts.length} values for ${n} rows of d=${d}`)
    const check = checkStorable(acts, dtype)
    if (check.overflow || check.nonFinite) {
      throw new UserError(unstorableMessage(`${this.dir}: layer ${this.settings.layer}, document ${doc} from token ${positions[0]}`, check, dtype))
    }
    // Encoded now and written as parts at flush: a shard is never held twice, nor in float32 when stored as f16.
    this.buffers.acts.push(dtype === 'f16' ? toFloat16Bits(acts) : acts)
    for (let i = 0; i < n; i++) {
      this.buffers.doc.push(doc)
      this.buffers.position.push(positions[i]!)
      this.buffers.token.push(tokens[i]!)
      this.tokenIds.add(tokens[i]!)
    }
    this.bufferedRows += n
    this.sequencesBuffered++
    const bytesPerValue = dtype === 'f16' ? 2 : 4
    if (this.bufferedRows >= this.shardRows || this.bufferedRows * d * bytesPerValue >= this.shardBytes) await this.flush()
  }

  /** Removes DIR.partial when it holds no shard yet (nothing to resume). */
  abandonIfEmpty(): void {
    if (this.shards.length === 0 && this.bufferedRows === 0) this.abandon()
  }

  /** Removes DIR.partial: after a refusal, nothing half-written is left to resume. */
  abandon(): void {
    rmSync(this.partial, { recursive: true, force: true })
  }

  /** Writes buffered rows as a shard and records progress. */
  async flush(): Promise<void> {
    if (this.bufferedRows === 0) return
    const rows = this.bufferedRows
    const d = this.settings.d
    const file = shardName(this.shards.length)
    await writeSafetensors(join(this.partial, file), {
      activations: { dtype: this.settings.dtype === 'f16' ? 'F16' : 'F32', shape: [rows, d], data: this.buffers.acts },
      doc: { dtype: 'I32', shape: [rows], data: Int32Array.from(this.buffers.doc) },
      position: { dtype: 'I32', shape: [rows], data: Int32Array.from(this.buffers.position) },
      token: { dtype: 'I32', shape: [rows], data: Int32Array.from(this.buffers.token) }
    })
    this.shards.push({ file, rows })
    this.sequencesDone += this.sequencesBuffered
    this.sequencesBuffered = 0
    this.bufferedRows = 0
    this.buffers = { acts: [], doc: [], position: [], token: [] }
    const progress = { settings: this.settings, shards: this.shards, sequencesDone: this.sequencesDone }
    writeFileSync(join(this.partial, `${PROGRESS}.tmp`), JSON.stringify(progress))
    renameSync(join(this.partial, `${PROGRESS}.tmp`), join(this.partial, PROGRESS))
  }

  /** Flushes, writes the manifest, documents and token texts, and renames DIR.partial to DIR. */
  async finish(documents: StoredDocument[], tokenText: (id: number) => string): Promise<StoreManifest> {
    await this.flush()
    // Shards from before a resume were written by another process: collect their token ids from disk.
    for (const shard of this.shards.slice(0, this.resumedShards)) {
      const f = await SafetensorsFile.open(join(this.partial, shard.file))
      try {
        for (const id of await f.readInt32('token')) this.tokenIds.add(id)
      } finally {
        await f.close()
      }
    }
    const tokens: Record<string, string> = {}
    for (const id of [...this.tokenIds].sort((a, b) => a - b)) tokens[id] = tokenText(id)
    writeFileSync(join(this.partial, TOKENS), JSON.stringify(tokens))
    writeFileSync(join(this.partial, DOCUMENTS), documents.map((d) => JSON.stringify(d)).join('\n') + '\n')
    const manifest: StoreManifest = {
      format: STORE_FORMAT,
      version: STORE_VERSION,
      ...this.settings,
      rows: this.rows,
      sequences: this.sequencesDone,
      shards: this.shards
    }
    writeFileSync(join(this.partial, MANIFEST), JSON.stringify(manifest, null, 2))
    rmSync(join(this.partial, PROGRESS), { force: true })
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true }) // an empty folder the user created
    renameSync(this.partial, this.dir)
    return manifest
  }
}

export interface ShardData {
  acts: Float32Array
  doc: Int32Array
  position: Int32Array
  token: Int32Array
}

export class ActivationStore {
  private tokenTexts: Record<string, string> | null = null

  private constructor(
    readonly dir: string,
    readonly manifest: StoreManifest
  ) {}

  static readManifest(dir: string): StoreManifest {
    const file = join(dir, MANIFEST)
    if (!existsSync(file)) {
      const hint = existsSync(`${dir}.partial`) ? ' A harvest into it was interrupted: run it again to resume.' : ''
      throw new UserError(`${dir} is not a complete activation store (no ${MANIFEST}).${hint}`)
    }
    let raw: unknown
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'))
    } catch (err) {
      throw new UserError(`${file} is not valid JSON (${(err as Error).message}).`)
    }
    const parsed = ManifestSchema.safeParse(raw)
    if (!parsed.success) {
      throw new UserError(
        `${file} is not a FeatureTrace activation manifest: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`
      )
    }
    if (parsed.data.version > STORE_VERSION) throw new UserError(`${file} was written by a newer FeatureTrace (store version ${parsed.data.version}).`)
    return parsed.data
  }

  /** Opens a store, checking every shard's header against the manifest (no data is read). */
  static async open(dir: string): Promise<ActivationStore> {
    const manifest = ActivationStore.readManifest(dir)
    let total = 0
    for (const s of manifest.shards) {
      const path = join(dir, s.file)
      const f = await SafetensorsFile.open(path)
      try {
        const a = f.info('activations')
        const want = manifest.dtype === 'f16' ? 'F16' : 'F32'
        if (a.dtype !== want || a.shape.length !== 2 || a.shape[0] !== s.rows || a.shape[1] !== manifest.d) {
          throw new UserError(`${path}: "activations" is ${a.dtype}[${a.shape.join(', ')}] but the manifest says ${want}[${s.rows}, ${manifest.d}].`)
        }
        for (const name of ['doc', 'position', 'token']) {
          const t = f.info(name)
          if (t.dtype !== 'I32' || t.shape.length !== 1 || t.shape[0] !== s.rows) {
            throw new UserError(`${path}: "${name}" is ${t.dtype}[${t.shape.join(', ')}], expected I32[${s.rows}].`)
          }
        }
      } finally {
        await f.close()
      }
      total += s.rows
    }
    if (total !== manifest.rows) throw new UserError(`${join(dir, MANIFEST)}: shards hold ${total} rows but the manifest says ${manifest.rows}.`)
    return new ActivationStore(dir, manifest)
  }

  get rows(): number {
    return this.manifest.rows
  }

  get d(): number {
    return this.manifest.d
  }

  async readShard(i: number): Promise<ShardData> {
    const s = this.manifest.shards[i]
    if (!s) throw new Error(`shard ${i} out of range`)
    const f = await SafetensorsFile.open(join(this.dir, s.file))
    try {
      return {
        acts: await f.readFloat32('activations'),
        doc: await f.readInt32('doc'),
        position: await f.readInt32('position'),
        token: await f.readInt32('token')
      }
    } finally {
      await f.close()
    }
  }

  /** The token table of one shard, without its activations. */
  async readTokenTable(i: number): Promise<{ doc: Int32Array; position: Int32Array; token: Int32Array }> {
    const s = this.manifest.shards[i]
    if (!s) throw new Error(`shard ${i} out of range`)
    const f = await SafetensorsFile.open(join(this.dir, s.file))
    try {
      return { doc: await f.readInt32('doc'), position: await f.readInt32('position'), token: await f.readInt32('token') }
    } finally {
      await f.close()
    }
  }

  /** Reads rows [start, start+count) of one shard's activations only. */
  async readRows(shard: number, start: number, count: number): Promise<Float32Array> {
    const s = this.manifest.shards[shard]!
    const f = await SafetensorsFile.open(join(this.dir, s.file))
    try {
      return await f.readFloat32Rows('activations', start, count)
    } finally {
      await f.close()
    }
  }

  /**
   * Reads every stored value once, a bounded block of rows at a time, and counts what the store's dtype
   * could not hold: Inf/NaN (an f16 store that overflowed shows them as Inf). `first` locates the first bad row.
   */
  async checkValues(): Promise<ValueCheck & { rows: number; first: { file: string; row: number } | null }> {
    const d = this.d
    const total: ValueCheck & { rows: number; first: { file: string; row: number } | null } = {
      values: 0,
      nonFinite: 0,
      overflow: 0,
      maxAbs: 0,
      rows: 0,
      first: null
    }
    const block = Math.max(1, Math.floor(IO_CHUNK_BYTES / (4 * d)))
    for (const s of this.manifest.shards) {
      const f = await SafetensorsFile.open(join(this.dir, s.file))
      try {
        for (let start = 0; start < s.rows; start += block) {
          const acts = await f.readFloat32Rows('activations', start, Math.min(block, s.rows - start))
          const c = checkStorable(acts, 'f32')
          total.values += c.values
          total.maxAbs = Math.max(total.maxAbs, c.maxAbs)
          if (c.nonFinite === 0) continue
          total.nonFinite += c.nonFinite
          for (let r = 0; r < acts.length / d; r++) {
            if (acts.subarray(r * d, (r + 1) * d).some((x) => !Number.isFinite(x))) {
              total.rows++
              total.first ??= { file: s.file, row: start + r }
            }
          }
        }
      } finally {
        await f.close()
      }
    }
    return total
  }

  /**
   * Streams batches of rows: shard order and rows within a shard shuffled by the seed. Memory holds one
   * shard at a time, so a store far larger than memory streams fine. A last partial batch is yielded.
   */
  async *batches(opts: { batchSize: number; seed: number; shuffle?: boolean }): AsyncGenerator<Float32Array> {
    const d = this.d
    const rng = new Rng(opts.seed)
    const order = this.manifest.shards.map((_, i) => i)
    if (opts.shuffle !== false) rng.shuffle(order)
    let pending = new Float32Array(opts.batchSize * d)
    let filled = 0
    for (const i of order) {
      const { acts } = await this.readShard(i)
      const n = acts.length / d
      const rows = Array.from({ length: n }, (_, r) => r)
      if (opts.shuffle !== false) rng.shuffle(rows)
      for (const r of rows) {
        pending.set(acts.subarray(r * d, (r + 1) * d), filled * d)
        if (++filled === opts.batchSize) {
          yield pending
          pending = new Float32Array(opts.batchSize * d)
          filled = 0
        }
      }
    }
    if (filled > 0) yield pending.slice(0, filled * d)
  }

  documents(): StoredDocument[] {
    const file = join(this.dir, DOCUMENTS)
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l, i) => {
        const parsed = StoredDocumentSchema.safeParse(parseJsonLine(l))
        if (!parsed.success) throw new UserError(`${file}, line ${i + 1}: not a document record (id, lang, source) of an activation store.`)
        return parsed.data
      })
  }

  tokenText(id: number): string {
    this.tokenTexts ??= readJsonFile(join(this.dir, TOKENS), z.record(z.string(), z.string()), "an activation store's token table (token id → text)")
    return this.tokenTexts[id] ?? `<${id}>`
  }
}

export interface StoreSequence {
  start: number
  length: number
}

/** Consecutive rows of one document with consecutive positions form a context window (at most `context`). */
export function sequencesOf(doc: Int32Array, position: Int32Array, context: number): StoreSequence[] {
  const out: StoreSequence[] = []
  let start = 0
  for (let r = 1; r <= doc.length; r++) {
    const breaks = r === doc.length || doc[r] !== doc[r - 1] || position[r] !== position[r - 1]! + 1 || r - start >= context
    if (breaks) {
      out.push({ start, length: r - start })
      start = r
    }
  }
  return out
}

/** Every this many context windows, one is held out: the paper's 80/10/10 split keeps 10% for testing. */
export const HELD_OUT_EVERY = 10

/**
 * Which rows of each shard are held out: whole context windows, every HELD_OUT_EVERY-th in file order.
 * SAE training never sees them; SAE evaluation and feature statistics use them.
 */
export async function heldOutMasks(store: ActivationStore): Promise<Uint8Array[]> {
  const masks: Uint8Array[] = []
  let seq = 0
  for (let i = 0; i < store.manifest.shards.length; i++) {
    const { doc, position } = await store.readTokenTable(i)
    const mask = new Uint8Array(doc.length)
    for (const s of sequencesOf(doc, position, store.manifest.context)) {
      if (seq++ % HELD_OUT_EVERY === HELD_OUT_EVERY - 1) mask.fill(1, s.start, s.start + s.length)
    }
    masks.push(mask)
  }
  return masks
}

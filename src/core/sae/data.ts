// Training rows for an SAE: from an activation store or a single safetensors file with an
// `activations` [rows, d] tensor, streamed one shard at a time, shuffled per epoch, with a fixed
// held-out set, and resumable at an exact position.
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../../shared/api'
import { ActivationStore, heldOutMasks } from '../io/activation-store'
import { SafetensorsFile } from '../io/safetensors'
import { Rng } from '../random'

export interface RowSource {
  describe: string
  d: number
  shardRows: number[]
  /** Decoded float32 rows of one shard, row-major. */
  readShard(i: number): Promise<Float32Array>
  /** The activation store's manifest, when the source is one. */
  store: ActivationStore | null
}

function checkFinite(data: Float32Array, d: number, where: string): Float32Array {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new UserError(
        `${where}: activations contain ${Number.isNaN(data[i]!) ? 'NaN' : 'Inf'} at row ${Math.floor(i / d)}. Re-harvest, or drop those rows.`
      )
    }
  }
  return data
}

export async function openRowSource(path: string): Promise<RowSource> {
  if (!existsSync(path)) throw new UserError(`Missing activations: ${path} does not exist.`)
  if (statSync(path).isDirectory()) {
    const store = await ActivationStore.open(path)
    if (store.rows === 0) throw new UserError(`${path} holds no activation rows.`)
    return {
      describe: path,
      d: store.d,
      shardRows: store.manifest.shards.map((s) => s.rows),
      readShard: async (i) => checkFinite((await store.readShard(i)).acts, store.d, join(path, store.manifest.shards[i]!.file)),
      store
    }
  }
  const f = await SafetensorsFile.open(path)
  let rows: number
  let d: number
  try {
    const info = f.info('activations')
    if (info.shape.length !== 2) throw new UserError(`${path}: "activations" must be 2-D [rows, d], found [${info.shape.join(', ')}].`)
    ;[rows, d] = info.shape as [number, number]
    if (rows === 0 || d === 0) throw new UserError(`${path}: "activations" is empty ([${rows}, ${d}]).`)
  } finally {
    await f.close()
  }
  // Present a large single file as virtual shards so memory stays bounded.
  const per = Math.max(1, Math.floor((64 * 2 ** 20) / (4 * d)))
  const shardRows = Array.from({ length: Math.ceil(rows / per) }, (_, i) => Math.min(per, rows - i * per))
  return {
    describe: path,
    d,
    shardRows,
    store: null,
    async readShard(i) {
      const file = await SafetensorsFile.open(path)
      try {
        const { toFloat32 } = await import('../io/safetensors')
        const data = toFloat32(await file.readRows('activations', i * per, shardRows[i]!), file.info('activations').dtype)
        return checkFinite(data, d, path)
      } finally {
        await file.close()
      }
    }
  }
}

/** Where the stream is: epoch and training rows consumed in it. */
export interface StreamPosition {
  epoch: number
  row: number
}

export class TrainingRows {
  readonly totalRows: number
  /** For a single file: held out when globalRow % every === every − 1 (none when every is 0). */
  private readonly every: number
  private readonly heldOutTotal: number

  private constructor(
    readonly source: RowSource,
    evalRows: number,
    private readonly seed: number,
    /** For an activation store: held-out rows per shard (whole context windows). */
    private readonly masks: Uint8Array[] | null
  ) {
    this.totalRows = source.shardRows.reduce((a, b) => a + b, 0)
    const held = Math.min(evalRows, Math.floor(this.totalRows * 0.1))
    this.every = masks === null && held > 0 ? Math.floor(this.totalRows / held) : 0
    this.heldOutTotal = masks ? masks.reduce((a, m) => a + m.reduce((x, y) => x + y, 0), 0) : this.every > 0 ? Math.floor(this.totalRows / this.every) : 0
  }

  /**
   * An activation store holds out whole context windows (heldOutMasks: every 10th); a plain safetensors file
   * has no windows, so it holds out single rows, at most evalRows of them.
   */
  static async create(source: RowSource, evalRows: number, seed: number): Promise<TrainingRows> {
    return new TrainingRows(source, evalRows, seed, source.store ? await heldOutMasks(source.store) : null)
  }

  private isHeldOut(globalRow: number, shard: number, local: number): boolean {
    if (this.masks) return this.masks[shard]![local] === 1
    return this.every > 0 && globalRow % this.every === this.every - 1
  }

  get trainingRows(): number {
    return this.totalRows - this.heldOutCount
  }

  get heldOutCount(): number {
    return this.heldOutTotal
  }

  private shardStart(i: number): number {
    let s = 0
    for (let j = 0; j < i; j++) s += this.source.shardRows[j]!
    return s
  }

  /** Training rows of shard i in the order epoch e visits them (local indices). */
  private order(i: number, rng: Rng): number[] {
    const start = this.shardStart(i)
    const rows: number[] = []
    for (let r = 0; r < this.source.shardRows[i]!; r++) if (!this.isHeldOut(start + r, i, r)) rows.push(r)
    return rng.shuffle(rows)
  }

  /**
   * An endless stream of batches from `from` on. Each batch comes with the position after it, so a
   * saved position resumes the stream exactly.
   */
  async *batches(batchSize: number, from: StreamPosition): AsyncGenerator<{ x: Float32Array; next: StreamPosition }> {
    const d = this.source.d
    if (this.trainingRows === 0) throw new UserError(`${this.source.describe} holds no training rows.`)
    let batch = new Float32Array(batchSize * d)
    let filled = 0
    for (let epoch = from.epoch; ; epoch++) {
      const rng = new Rng(this.seed * 7919 + epoch + 1)
      const shards = rng.shuffle(this.source.shardRows.map((_, i) => i))
      let consumed = 0
      const skip = epoch === from.epoch ? from.row : 0
      for (const i of shards) {
        const order = this.order(i, rng)
        if (consumed + order.length <= skip) {
          consumed += order.length
          continue
        }
        const data = await this.source.readShard(i)
        for (const r of order) {
          if (consumed++ < skip) continue
          batch.set(data.subarray(r * d, (r + 1) * d), filled * d)
          if (++filled === batchSize) {
            const next = consumed === this.trainingRows ? { epoch: epoch + 1, row: 0 } : { epoch, row: consumed }
            yield { x: batch, next }
            batch = new Float32Array(batchSize * d)
            filled = 0
          }
        }
      }
    }
  }

  /** The held-out rows (at most `max`), in file order. */
  async heldOut(max: number): Promise<Float32Array> {
    const d = this.source.d
    const out: number[] = []
    let start = 0
    for (let i = 0; i < this.source.shardRows.length && out.length / d < max; i++) {
      const n = this.source.shardRows[i]!
      const wanted = Array.from({ length: n }, (_, r) => r).filter((r) => this.isHeldOut(start + r, i, r))
      if (wanted.length) {
        const data = await this.source.readShard(i)
        for (const r of wanted) {
          if (out.length / d >= max) break
          for (let j = 0; j < d; j++) out.push(data[r * d + j]!)
        }
      }
      start += n
    }
    return Float32Array.from(out)
  }

  /** The first `max` training rows of the first epoch's order: the initialisation sample. */
  async sample(max: number): Promise<Float32Array> {
    const it = this.batches(Math.min(max, this.trainingRows), { epoch: 0, row: 0 })
    const first = await it.next()
    await it.return(undefined)
    return first.value!.x
  }
}

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ActivationStore, ActivationStoreWriter, checkStorable, SHARD_MAX_ROWS, type StoreSettings } from '../../src/core/io/activation-store'
import { toFloat16Bits } from '../../src/core/io/safetensors'
import { sparseSafetensors, writeAt } from '../fixtures/large-files'
import { tempDir } from '../helpers'

const settings = (d: number, dtype: 'f16' | 'f32'): StoreSettings => ({
  model: '/m',
  modelType: 'llama',
  checkpointStep: 1,
  layer: 2,
  finalNorm: false,
  d,
  dtype,
  context: 4,
  bos: false,
  seed: 0,
  corpus: '/c.jsonl',
  maxTokens: null,
  dropShort: false,
  createdBy: 'test'
})

describe('activation store sizes', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('closes shards by bytes of activations (on sequence boundaries), whatever d is', async () => {
    t = tempDir()
    for (const [d, dtype, bytes, expected] of [
      [8, 'f32', 3 * 4 * 8 * 4, [12, 12, 4]],
      [16, 'f16', 3 * 4 * 16 * 2, [12, 12, 4]],
      [8, 'f16', 3 * 4 * 8 * 4, [24, 4]]
    ] as const) {
      const out = join(t.dir, `${d}-${dtype}`)
      const w = ActivationStoreWriter.begin(out, settings(d, dtype), SHARD_MAX_ROWS, bytes)
      if ('complete' in w) throw new Error('exists')
      for (let s = 0; s < 7; s++) await w.appendSequence(new Float32Array(4 * d).fill(s), s, [0, 1, 2, 3], [1, 2, 3, 4])
      const m = await w.finish(
        Array.from({ length: 7 }, (_, id) => ({ id, lang: null, source: 'x' })),
        String
      )
      expect(
        m.shards.map((s) => s.rows),
        `${d} ${dtype}`
      ).toEqual(expected)
      expect((await (await ActivationStore.open(out)).readShard(1)).acts[0]).toBe(expected[0] / 4)
    }
  })

  it('refuses values its dtype cannot hold, counting them', async () => {
    const v = new Float32Array([1, -65504, 65519, 65520, -1e9, NaN, Infinity])
    expect(checkStorable(v, 'f16')).toEqual({ values: 7, nonFinite: 2, overflow: 2, maxAbs: 1e9 })
    expect(checkStorable(v, 'f32')).toEqual({ values: 7, nonFinite: 2, overflow: 0, maxAbs: 1e9 })
    // What the check lets through is what float16 stores finitely (65519 rounds to 65504, 65520 to Inf).
    expect(Array.from(toFloat16Bits(new Float32Array([65519, 65520])))).toEqual([0x7bff, 0x7c00])
    t = tempDir()
    const w = ActivationStoreWriter.begin(join(t.dir, 's'), settings(2, 'f16'))
    if ('complete' in w) throw new Error('exists')
    await expect(w.appendSequence(new Float32Array([1, 2, 3, 7e4]), 5, [8, 9], [1, 2])).rejects.toThrow(
      /s: layer 2, document 5 from token 8: 1 of the 4 values there exceed float16's range \(±65,504; the largest \|x\| is 7\.000e\+4\) .*--dtype f32/
    )
  })

  it('opens a store whose shard is beyond 2 GiB and reads its last rows and token table (sparse file)', async () => {
    t = tempDir()
    const dir = join(t.dir, 'store')
    const { mkdirSync } = await import('node:fs')
    mkdirSync(dir)
    const d = 8192
    const rows = Math.ceil((2.25 * 2 ** 30) / (2 * d))
    const at = sparseSafetensors(join(dir, 'shard-00000.safetensors'), [
      { name: 'activations', dtype: 'F16', shape: [rows, d] },
      { name: 'doc', dtype: 'I32', shape: [rows] },
      { name: 'position', dtype: 'I32', shape: [rows] },
      { name: 'token', dtype: 'I32', shape: [rows] }
    ])
    const last = Float32Array.from({ length: d }, (_, i) => (i % 7) - 3)
    writeAt(join(dir, 'shard-00000.safetensors'), at.get('activations')! + (rows - 1) * d * 2, toFloat16Bits(last))
    writeAt(join(dir, 'shard-00000.safetensors'), at.get('token')! + (rows - 1) * 4, new Int32Array([42]))
    const manifest = {
      format: 'featuretrace.activations',
      version: 1,
      ...settings(d, 'f16'),
      rows,
      sequences: 1,
      shards: [{ file: 'shard-00000.safetensors', rows }]
    }
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest))
    const store = await ActivationStore.open(dir)
    expect(at.get('token')!).toBeGreaterThan(2 ** 31)
    expect(Array.from(await store.readRows(0, rows - 1, 1))).toEqual(Array.from(last))
    const table = await store.readTokenTable(0)
    expect(table.token[rows - 1]).toBe(42)
    expect(table.doc.length).toBe(rows)
  })
})

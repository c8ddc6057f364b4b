import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_HEADER_BYTES, readSafetensorsHeader, writeSafetensors } from '../../src/core/io/safetensors'
import { tempDir } from '../helpers'

function rawFile(header: unknown, dataBytes: number): Buffer {
  const json = Buffer.from(JSON.stringify(header))
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(json.length))
  return Buffer.concat([len, json, Buffer.alloc(dataBytes)])
}

describe('safetensors header', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('round-trips what writeSafetensors writes, 8-byte aligned', async () => {
    t = tempDir()
    const file = join(t.dir, 'a.safetensors')
    await writeSafetensors(file, {
      w: { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
      b: { dtype: 'BF16', shape: [3], data: new Uint16Array(3) }
    }, { format: 'pt' })
    const h = await readSafetensorsHeader(file)
    expect(h.metadata).toEqual({ format: 'pt' })
    const w = h.tensors.get('w')!
    expect(w).toMatchObject({ dtype: 'F32', shape: [2, 3] })
    expect((8 + h.headerBytes) % 8).toBe(0)
    const bytes = readFileSync(file)
    expect(Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset + w.begin, bytes.byteOffset + w.end)))).toEqual([1, 2, 3, 4, 5, 6])
  })

  it('refuses a header length beyond the limit without allocating it', async () => {
    t = tempDir()
    const file = join(t.dir, 'huge.safetensors')
    const len = Buffer.alloc(8)
    len.writeBigUInt64LE(BigInt(MAX_HEADER_BYTES) + 1n)
    writeFileSync(file, Buffer.concat([len, Buffer.from('{}')]))
    await expect(readSafetensorsHeader(file)).rejects.toThrow(/huge\.safetensors .*header claims \d+ bytes \(limit/)
  })

  it('refuses a header that claims more bytes than the file has', async () => {
    t = tempDir()
    const file = join(t.dir, 'short.safetensors')
    const len = Buffer.alloc(8)
    len.writeBigUInt64LE(5000n)
    writeFileSync(file, Buffer.concat([len, Buffer.from('{"a":1}')]))
    await expect(readSafetensorsHeader(file)).rejects.toThrow(/short\.safetensors .*claims 5000 bytes but the file has only/)
  })

  it('catches truncated data, wrong byte counts, bad dtypes and bad JSON', async () => {
    t = tempDir()
    const cases: [string, Buffer, RegExp][] = [
      ['trunc', rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), /truncated/],
      ['count', rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 12] } }, 12), /spans 12 bytes but F32\[4\] needs 16/],
      ['dtype', rawFile({ w: { dtype: 'F8_E9', shape: [4], data_offsets: [0, 4] } }, 4), /unsupported dtype/],
      ['offsets', rawFile({ w: { dtype: 'U8', shape: [4], data_offsets: [4, 0] } }, 4), /invalid data_offsets/],
      ['shape', rawFile({ w: { dtype: 'U8', shape: [-4], data_offsets: [0, 4] } }, 4), /invalid shape/],
      ['json', Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{x}')]), /not valid JSON/],
      ['tiny', Buffer.from([1, 2, 3]), /only 3 bytes/]
    ]
    for (const [name, buf, message] of cases) {
      const file = join(t.dir, `${name}.safetensors`)
      writeFileSync(file, buf)
      await expect(readSafetensorsHeader(file), name).rejects.toThrow(message)
      await expect(readSafetensorsHeader(file), name).rejects.toThrow(file)
    }
    await expect(readSafetensorsHeader(join(t.dir, 'absent.safetensors'))).rejects.toThrow(/Missing file/)
  })
})

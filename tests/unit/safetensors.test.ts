import { openSync, closeSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  IO_CHUNK_BYTES,
  MAX_HEADER_BYTES,
  readFully,
  readSafetensorsHeader,
  SafetensorsFile,
  toFloat16Bits,
  writeFully,
  writeSafetensors
} from '../../src/core/io/safetensors'
import { sparseSafetensors, writeAt } from '../fixtures/large-files'
import { tempDir } from '../helpers'

function rawFile(header: unknown, dataBytes: number, pad = ''): Buffer {
  const json = Buffer.from(JSON.stringify(header) + pad)
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
    await writeSafetensors(
      file,
      {
        w: { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
        b: { dtype: 'BF16', shape: [3], data: new Uint16Array(3) }
      },
      { format: 'pt' }
    )
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
      ['dtype', rawFile({ w: { dtype: 'F8_E9', shape: [4], data_offsets: [0, 4] } }, 4), /unknown dtype "F8_E9"/],
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

// The contract of the reference reader (huggingface/safetensors: read_metadata and Metadata::validate).
describe('safetensors contract', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  const write = (name: string, buf: Buffer): string => {
    const file = join(t.dir, `${name}.safetensors`)
    writeFileSync(file, buf)
    return file
  }
  const f32 = (shape: number[], begin: number): { dtype: string; shape: number[]; data_offsets: number[] } => ({
    dtype: 'F32',
    shape,
    data_offsets: [begin, begin + shape.reduce((a, b) => a * b, 1) * 4]
  })

  it("refuses overlapping byte ranges, naming both tensors (case02: v_proj reading k_proj's bytes)", async () => {
    t = tempDir()
    const file = write('aliased', rawFile({ k_proj: f32([2, 2], 0), v_proj: f32([2, 2], 0), o_proj: f32([2, 2], 16) }, 48))
    await expect(readSafetensorsHeader(file)).rejects.toThrow(
      /aliased\.safetensors is not a valid safetensors file: tensors "k_proj" \(bytes 0–16\) and "v_proj" \(bytes 0–16\) share bytes/
    )
    // The same bytes described without overlap but with v_proj's own bytes left as a hole: a gap.
    const hole = write('hole', rawFile({ k_proj: f32([2, 2], 0), o_proj: f32([2, 2], 32) }, 48))
    await expect(readSafetensorsHeader(hole)).rejects.toThrow(/bytes 16–32 of the data belong to no tensor \(between "k_proj" and "o_proj"\)/)
    const gapFirst = write('gap-first', rawFile({ w: f32([2], 8) }, 16))
    await expect(readSafetensorsHeader(gapFirst)).rejects.toThrow(/bytes 0–8 of the data belong to no tensor \(between the header and "w"\)/)
  })

  it('refuses bytes after the last tensor, and accepts ranges listed out of order', async () => {
    t = tempDir()
    await expect(readSafetensorsHeader(write('trailing', rawFile({ w: f32([2], 0) }, 12)))).rejects.toThrow(/4 bytes after the last tensor's data/)
    const h = await readSafetensorsHeader(write('unordered', rawFile({ b: f32([2], 8), a: f32([2], 0) }, 16)))
    expect([...h.tensors.keys()]).toEqual(['b', 'a'])
  })

  it('accepts zero-size tensors, wherever their equal offsets sit (case02)', async () => {
    t = tempDir()
    const header = {
      empty0: { dtype: 'F32', shape: [0], data_offsets: [0, 0] },
      w: f32([2], 0),
      mid: { dtype: 'F16', shape: [3, 0], data_offsets: [8, 8] },
      v: f32([1], 8),
      end: { dtype: 'I64', shape: [0], data_offsets: [12, 12] }
    }
    const file = write('zero', rawFile(header, 12))
    const h = await readSafetensorsHeader(file)
    expect(h.tensors.get('mid')).toMatchObject({ shape: [3, 0] })
    const f = await SafetensorsFile.open(file)
    expect(Array.from(await f.readFloat32('empty0'))).toEqual([])
    await f.close()
    // A zero-size tensor cannot claim bytes.
    await expect(readSafetensorsHeader(write('zero-bytes', rawFile({ z: { dtype: 'F32', shape: [0], data_offsets: [0, 4] } }, 4)))).rejects.toThrow(
      /"z" spans 4 bytes but F32\[0\] needs 0/
    )
  })

  it('accepts space padding before and after the JSON, refuses NUL padding (case01)', async () => {
    t = tempDir()
    const header = { w: f32([2], 0) }
    const json = JSON.stringify(header)
    const framed = (text: string): Buffer => {
      const len = Buffer.alloc(8)
      len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)))
      return Buffer.concat([len, Buffer.from(text), Buffer.from(new Float32Array([1, 2]).buffer)])
    }
    expect((await readSafetensorsHeader(write('lead', framed(`        ${json}  \n\t `)))).tensors.size).toBe(1)
    await expect(readSafetensorsHeader(write('nul', framed(json + '\0'.repeat(5))))).rejects.toThrow(
      /nul\.safetensors is not a valid safetensors file: its header is not valid JSON \(it contains NUL bytes/
    )
  })

  it('refuses a header that is not UTF-8, a byte-order mark, and non-string metadata; accepts null metadata', async () => {
    t = tempDir()
    const latin = Buffer.concat([Buffer.from('{"__metadata__":{"a":"caf'), Buffer.from([0xe9]), Buffer.from('"}}')])
    const len = Buffer.alloc(8)
    len.writeBigUInt64LE(BigInt(latin.length))
    await expect(readSafetensorsHeader(write('latin', Buffer.concat([len, latin])))).rejects.toThrow(/latin\.safetensors .*header is not valid UTF-8/)
    expect((await readSafetensorsHeader(write('empty', rawFile({}, 0)))).tensors.size).toBe(0)
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')])
    len.writeBigUInt64LE(BigInt(bom.length))
    await expect(readSafetensorsHeader(write('bom', Buffer.concat([len, bom])))).rejects.toThrow(/not valid JSON/)
    await expect(readSafetensorsHeader(write('meta', rawFile({ __metadata__: { step: 100 } }, 0)))).rejects.toThrow(
      /__metadata__ key "step" is 100, not a string/
    )
    expect((await readSafetensorsHeader(write('nullmeta', rawFile({ __metadata__: null, w: f32([1], 0) }, 4)))).metadata).toEqual({})
  })

  it('knows every dtype of the format, with sub-byte sizes, and refuses to decode the ones FeatureTrace cannot', async () => {
    t = tempDir()
    const file = write(
      'fp8',
      rawFile(
        {
          q: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] },
          f4: { dtype: 'F4', shape: [2, 3], data_offsets: [4, 7] },
          u: { dtype: 'U32', shape: [1], data_offsets: [7, 11] }
        },
        11
      )
    )
    const h = await readSafetensorsHeader(file)
    expect([...h.tensors.values()].map((x) => x.dtype)).toEqual(['F8_E4M3', 'F4', 'U32'])
    const f = await SafetensorsFile.open(file)
    await expect(f.readFloat32('q')).rejects.toThrow(/fp8\.safetensors: tensor "q" is F8_E4M3, which FeatureTrace cannot decode/)
    await f.close()
    await expect(readSafetensorsHeader(write('f4odd', rawFile({ f4: { dtype: 'F4', shape: [3], data_offsets: [0, 2] } }, 2)))).rejects.toThrow(
      /F4\[3\] is not a whole number of bytes/
    )
    await expect(
      readSafetensorsHeader(write('overflow', rawFile({ w: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, 4)))
    ).rejects.toThrow(/spans 4 bytes but F32\[1099511627776,1099511627776\] needs/)
  })
})

describe('reads and writes of any size', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('readFully and writeFully move every byte in chunks of the given size', async () => {
    t = tempDir()
    const file = join(t.dir, 'chunks.bin')
    const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) % 251)
    const w = await open(file, 'w')
    await writeFully(w, new Uint8Array(data.buffer, 3, 997), 64)
    await w.close()
    expect(statSync(file).size).toBe(997)
    const r = await open(file, 'r')
    const into = new Uint8Array(990)
    expect(await readFully(r, into, 7, 13)).toBe(990)
    expect(Array.from(into)).toEqual(Array.from(data.subarray(10, 1000)))
    // At the end of the file it returns what there was.
    expect(await readFully(r, new Uint8Array(50), 980, 13)).toBe(17)
    await r.close()
  })

  it('reads tensors spanning several I/O chunks, decoding F16 and reading F32 in place', async () => {
    t = tempDir()
    const file = join(t.dir, 'chunked.safetensors')
    // Each tensor is 1.5 chunks long; marks straddle the chunk boundary and sit at the very end.
    const rowsOf = (bytes: number): number => (IO_CHUNK_BYTES * 1.5) / (bytes * 1024)
    const at = sparseSafetensors(file, [
      { name: 'half', dtype: 'F16', shape: [rowsOf(2), 1024] },
      { name: 'full', dtype: 'F32', shape: [rowsOf(4), 1024] }
    ])
    const marks = (bytes: number): number[] => [IO_CHUNK_BYTES / bytes - 1, IO_CHUNK_BYTES / bytes, rowsOf(bytes) * 1024 - 1]
    for (const [k, i] of marks(2).entries()) writeAt(file, at.get('half')! + 2 * i, toFloat16Bits(new Float32Array([k + 0.5])))
    for (const [k, i] of marks(4).entries()) writeAt(file, at.get('full')! + 4 * i, new Float32Array([-(k + 0.25)]))
    const f = await SafetensorsFile.open(file)
    const half = await f.readFloat32('half')
    const full = await f.readFloat32('full')
    expect(marks(2).map((i) => half[i])).toEqual([0.5, 1.5, 2.5])
    expect(marks(4).map((i) => full[i])).toEqual([-0.25, -1.25, -2.25])
    expect(half.reduce((a, b) => a + b, 0)).toBe(4.5)
    expect(full.reduce((a, b) => a + b, 0)).toBe(-3.75)
    await f.close()
  })

  it('reads the last rows of a 4.5 GiB tensor and a tensor beyond it, from a sparse file', async () => {
    t = tempDir()
    const file = join(t.dir, 'huge.safetensors')
    const d = 4096
    const rows = (4.5 * 2 ** 30) / (4 * d)
    const at = sparseSafetensors(file, [
      { name: 'W', dtype: 'F32', shape: [rows, d] },
      { name: 'tail', dtype: 'I32', shape: [3] }
    ])
    const last = Float32Array.from({ length: 2 * d }, (_, i) => i - d)
    writeAt(file, at.get('W')! + (rows - 2) * d * 4, last)
    writeAt(file, at.get('tail')!, new Int32Array([7, 8, 9]))
    expect(statSync(file).size).toBeGreaterThan(4.5 * 2 ** 30)
    const f = await SafetensorsFile.open(file)
    expect(f.info('W').end).toBeGreaterThan(2 ** 32)
    expect(Array.from(await f.readFloat32Rows('W', rows - 2, 2))).toEqual(Array.from(last))
    expect(Array.from(await f.readInt32('tail'))).toEqual([7, 8, 9])
    expect(Array.from(await f.readFloat32Rows('W', 0, 1)).every((x) => x === 0)).toBe(true)
    await f.close()
    // One byte short: refused by name before any read.
    const fd = openSync(file, 'r+')
    const { ftruncateSync } = await import('node:fs')
    ftruncateSync(fd, statSync(file).size - 1)
    closeSync(fd)
    await expect(readSafetensorsHeader(file)).rejects.toThrow(
      /huge\.safetensors is not a valid safetensors file: tensor "tail" ends at byte \d+ but the file has \d+ bytes \(truncated/
    )
  })
})

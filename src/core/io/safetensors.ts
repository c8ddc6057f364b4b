// safetensors header reading with every bound FORMATS.md asks for: a hostile header cannot make us
// allocate gigabytes or read outside the file.
import { open, rename, stat, type FileHandle } from 'node:fs/promises'
import { UserError } from '../../shared/api'

export const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1
} as const
export type Dtype = keyof typeof DTYPE_BYTES

export interface TensorInfo {
  name: string
  dtype: Dtype
  shape: number[]
  /** Absolute byte range in the file. */
  begin: number
  end: number
}

export interface SafetensorsHeader {
  file: string
  fileBytes: number
  headerBytes: number
  tensors: Map<string, TensorInfo>
  metadata: Record<string, string>
}

/** Largest JSON header we accept; real headers of 100k-tensor checkpoints stay far below. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024

function bad(file: string, what: string): UserError {
  return new UserError(`${file} is not a valid safetensors file: ${what}. Re-download or re-save it.`)
}

export function parseSafetensorsHeader(
  file: string,
  fileBytes: number,
  headerBytes: number,
  json: string
): SafetensorsHeader {
  let raw: unknown
  try {
    raw = JSON.parse(json)
  } catch {
    throw bad(file, 'its header is not valid JSON')
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(file, 'its header is not a JSON object')
  const dataStart = 8 + headerBytes
  const tensors = new Map<string, TensorInfo>()
  let metadata: Record<string, string> = {}
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null) throw bad(file, '__metadata__ is not an object')
      metadata = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]))
      continue
    }
    const t = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
    if (typeof t !== 'object' || t === null) throw bad(file, `entry "${name}" is not an object`)
    if (typeof t.dtype !== 'string' || !(t.dtype in DTYPE_BYTES)) {
      throw bad(file, `tensor "${name}" has unsupported dtype ${JSON.stringify(t.dtype)}`)
    }
    const dtype = t.dtype as Dtype
    if (!Array.isArray(t.shape) || !t.shape.every((s) => Number.isSafeInteger(s) && s >= 0)) {
      throw bad(file, `tensor "${name}" has an invalid shape`)
    }
    const offsets = t.data_offsets
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      throw bad(file, `tensor "${name}" has invalid data_offsets`)
    }
    const shape = t.shape as number[]
    const expected = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype]
    const [b, e] = offsets as [number, number]
    if (e - b !== expected) {
      throw bad(file, `tensor "${name}" spans ${e - b} bytes but ${dtype}${JSON.stringify(shape)} needs ${expected}`)
    }
    if (dataStart + e > fileBytes) {
      throw bad(
        file,
        `tensor "${name}" ends at byte ${dataStart + e} but the file has ${fileBytes} bytes (truncated download?)`
      )
    }
    tensors.set(name, { name, dtype, shape, begin: dataStart + b, end: dataStart + e })
  }
  return { file, fileBytes, headerBytes, tensors, metadata }
}

/** Reads and validates the header only; tensor data stays on disk. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  let fileBytes: number
  try {
    fileBytes = (await stat(file)).size
  } catch {
    throw new UserError(`Missing file: ${file}.`)
  }
  if (fileBytes < 8) throw bad(file, `it has only ${fileBytes} bytes`)
  const fh = await open(file, 'r')
  try {
    const lenBuf = Buffer.alloc(8)
    await fh.read(lenBuf, 0, 8, 0)
    const n = lenBuf.readBigUInt64LE(0)
    if (n > BigInt(MAX_HEADER_BYTES)) throw bad(file, `its header claims ${n} bytes (limit ${MAX_HEADER_BYTES})`)
    const headerBytes = Number(n)
    if (8 + headerBytes > fileBytes) {
      throw bad(file, `its header claims ${headerBytes} bytes but the file has only ${fileBytes}`)
    }
    const buf = Buffer.alloc(headerBytes)
    await fh.read(buf, 0, headerBytes, 8)
    return parseSafetensorsHeader(file, fileBytes, headerBytes, buf.toString('utf8'))
  } finally {
    await fh.close()
  }
}

export interface TensorToWrite {
  dtype: Dtype
  shape: number[]
  data: ArrayBufferView
}

/**
 * Writes a safetensors file atomically: to a temporary name first, renamed when complete, so an
 * interrupted write never leaves a file that looks whole.
 */
export async function writeSafetensors(
  file: string,
  tensors: Record<string, TensorToWrite>,
  metadata: Record<string, string> = {}
): Promise<void> {
  const header: Record<string, unknown> = {}
  if (Object.keys(metadata).length) header.__metadata__ = metadata
  let offset = 0
  const names = Object.keys(tensors)
  for (const name of names) {
    const t = tensors[name]!
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype]
    if (t.data.byteLength !== bytes) {
      throw new Error(`Tensor ${name}: ${t.dtype}${JSON.stringify(t.shape)} needs ${bytes} bytes, data has ${t.data.byteLength}`)
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] }
    offset += bytes
  }
  let json = JSON.stringify(header)
  // Pad the header so tensor data starts 8-byte aligned, as the reference implementation does.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8)
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)))
  const tmp = `${file}.tmp-${process.pid}`
  const fh = await open(tmp, 'w')
  try {
    await fh.write(len)
    await fh.write(Buffer.from(json, 'utf8'))
    for (const name of names) {
      const d = tensors[name]!.data
      await fh.write(new Uint8Array(d.buffer, d.byteOffset, d.byteLength))
    }
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
}

/** Every half-precision bit pattern's float value: decoding is one table lookup. */
export const F16_TABLE = (() => {
  // All 65,536 half-precision values, decoded once: conversion is then a table lookup.
  const table = new Float32Array(65536)
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1
    const exp = (h >> 10) & 0x1f
    const frac = h & 0x3ff
    table[h] =
      exp === 0 ? sign * 2 ** -14 * (frac / 1024) : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * 2 ** (exp - 15) * (1 + frac / 1024)
  }
  return table
})()

/** Decodes little-endian tensor bytes of any float or integer dtype into float32. */
export function toFloat32(bytes: Uint8Array, dtype: Dtype): Float32Array {
  const n = bytes.byteLength / DTYPE_BYTES[dtype]
  // Copy into an aligned buffer: file offsets need not be aligned to the element size.
  const aligned = new Uint8Array(bytes.byteLength)
  aligned.set(bytes)
  const buf = aligned.buffer
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf)
    case 'F64':
      return Float32Array.from(new Float64Array(buf))
    case 'F16': {
      const src = new Uint16Array(buf)
      const out = new Float32Array(n)
      for (let i = 0; i < n; i++) out[i] = F16_TABLE[src[i]!]!
      return out
    }
    case 'BF16': {
      // BF16 is the top 16 bits of an F32.
      const src = new Uint16Array(buf)
      const out = new Uint32Array(n)
      for (let i = 0; i < n; i++) out[i] = src[i]! << 16
      return new Float32Array(out.buffer)
    }
    case 'I32':
      return Float32Array.from(new Int32Array(buf))
    case 'I64':
      return Float32Array.from(new BigInt64Array(buf), (v) => Number(v))
    case 'I16':
      return Float32Array.from(new Int16Array(buf))
    case 'I8':
      return Float32Array.from(new Int8Array(buf))
    case 'U8':
    case 'BOOL':
      return Float32Array.from(new Uint8Array(buf))
  }
}

/** Encodes float32 values as IEEE half precision (round to nearest even). */
export function toFloat16Bits(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length)
  const f = new Float32Array(1)
  const u = new Uint32Array(f.buffer)
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i]!
    const x = u[0]!
    const sign = (x >>> 16) & 0x8000
    const exp = (x >>> 23) & 0xff
    let mant = x & 0x7fffff
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0)
      continue
    }
    const e = exp - 127 + 15
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00
      continue
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign
        continue
      }
      mant |= 0x800000
      const shift = 14 - e
      let half = mant >> shift
      const rem = mant & ((1 << shift) - 1)
      const mid = 1 << (shift - 1)
      if (rem > mid || (rem === mid && half & 1)) half++
      out[i] = sign | half
      continue
    }
    let half = (e << 10) | (mant >> 13)
    const rem = mant & 0x1fff
    // A carry out of the mantissa rounds up into the exponent, which is the correct result.
    if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++
    out[i] = sign | half
  }
  return out
}

/** An open safetensors file: header validated, tensors read on demand with positioned reads. */
export class SafetensorsFile {
  private constructor(
    readonly header: SafetensorsHeader,
    private readonly fh: FileHandle
  ) {}

  static async open(file: string): Promise<SafetensorsFile> {
    const header = await readSafetensorsHeader(file)
    return new SafetensorsFile(header, await open(file, 'r'))
  }

  get file(): string {
    return this.header.file
  }

  info(name: string): TensorInfo {
    const t = this.header.tensors.get(name)
    if (!t) throw new UserError(`${this.header.file} has no tensor "${name}".`)
    return t
  }

  /** A tensor's raw bytes, into `into` when given (it must be exactly the tensor's size). */
  async readBytes(name: string, into?: Uint8Array): Promise<Uint8Array> {
    const t = this.info(name)
    if (into && into.byteLength !== t.end - t.begin) throw new Error(`readBytes: ${name} has ${t.end - t.begin} bytes, the target ${into.byteLength}`)
    const buf = into ?? Buffer.alloc(t.end - t.begin)
    const { bytesRead } = await this.fh.read(buf, 0, buf.length, t.begin)
    if (bytesRead !== buf.length) {
      throw new UserError(`${this.header.file} ended while reading tensor "${name}" (file changed or truncated).`)
    }
    return buf
  }

  /** Reads rows [start, start + count) of a tensor whose first dimension is rows. */
  async readRows(name: string, start: number, count: number): Promise<Uint8Array> {
    const t = this.info(name)
    const rows = t.shape[0] ?? 0
    if (start < 0 || count < 0 || start + count > rows) throw new Error(`rows ${start}+${count} outside ${name} [${rows}]`)
    const rowBytes = rows ? (t.end - t.begin) / rows : 0
    const buf = Buffer.alloc(count * rowBytes)
    const { bytesRead } = await this.fh.read(buf, 0, buf.length, t.begin + start * rowBytes)
    if (bytesRead !== buf.length) throw new UserError(`${this.header.file} ended while reading rows of "${name}".`)
    return buf
  }

  async readFloat32Rows(name: string, start: number, count: number): Promise<Float32Array> {
    return toFloat32(await this.readRows(name, start, count), this.info(name).dtype)
  }

  async readFloat32(name: string): Promise<Float32Array> {
    return toFloat32(await this.readBytes(name), this.info(name).dtype)
  }

  async readInt32(name: string): Promise<Int32Array> {
    const t = this.info(name)
    if (t.dtype !== 'I32') throw new UserError(`${this.header.file}: tensor "${name}" is ${t.dtype}, expected I32.`)
    const bytes = await this.readBytes(name)
    return new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
  }

  async close(): Promise<void> {
    await this.fh.close()
  }
}

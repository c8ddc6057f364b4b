// safetensors reading and writing with the whole contract of the reference reader (huggingface/safetensors,
// Metadata::validate and read_metadata): a hostile or broken header cannot make us allocate gigabytes, read
// outside the file, or read one tensor's bytes as another's. Every read and write goes in bounded chunks:
// Node refuses a single read or write of 2 GiB or more, and Linux returns at most 0x7ffff000 bytes per call.
import { open, rename, stat, type FileHandle } from 'node:fs/promises'
import { UserError } from '../../shared/api'
import { unreadable } from './json-file'

/** Bytes per element of the dtypes FeatureTrace decodes. */
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

/** Every dtype the reference reader knows, with its size in bits (safetensors' Dtype::bitsize). */
export const DTYPE_BITS = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64
} as const
/** A dtype a valid safetensors file may hold; FeatureTrace decodes the subset `Dtype`. */
export type StoredDtype = keyof typeof DTYPE_BITS

export function isDecodable(dtype: StoredDtype): dtype is Dtype {
  return dtype in DTYPE_BYTES
}

export interface TensorInfo {
  name: string
  dtype: StoredDtype
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

/** Largest JSON header the reference reader accepts (MAX_HEADER_SIZE); real headers stay far below. */
export const MAX_HEADER_BYTES = 100_000_000

/** Largest single read or write (64 MiB): far below Node's 2 GiB limit, large enough to cost no time. */
export const IO_CHUNK_BYTES = 64 * 2 ** 20

function bad(file: string, what: string): UserError {
  return new UserError(`${file} is not a valid safetensors file: ${what}. Re-download or re-save it.`)
}

const describeRange = (t: TensorInfo, dataStart: number): string => `bytes ${t.begin - dataStart}–${t.end - dataStart}`

/**
 * Checks a parsed header as the reference reader does and returns its tensors with absolute byte ranges.
 * `json` is the header text (already strictly UTF-8 decoded). The checks, in the reference's terms: the
 * header is a JSON object; `__metadata__` is absent, null or a map of strings; every other entry has a
 * known dtype, a shape of non-negative integers and `data_offsets` [begin, end] with begin ≤ end; its byte
 * count is dtype bits × product(shape) / 8; sorted by (begin, end) the ranges cover the data buffer exactly
 * once (no gap, no overlap); the last ends where the file ends. Errors name the file and the tensors.
 */
export function parseSafetensorsHeader(file: string, fileBytes: number, headerBytes: number, json: string): SafetensorsHeader {
  let raw: unknown
  try {
    raw = JSON.parse(json)
  } catch {
    // JSON allows only space, tab, CR and LF around the object: NUL padding is refused, as serde_json refuses it.
    throw bad(
      file,
      /\0/.test(json) ? 'its header is not valid JSON (it contains NUL bytes, e.g. padding written as zeros instead of spaces)' : 'its header is not valid JSON'
    )
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(file, 'its header is not a JSON object')
  const dataStart = 8 + headerBytes
  const tensors = new Map<string, TensorInfo>()
  let metadata: Record<string, string> = {}
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null) continue
      if (typeof value !== 'object' || Array.isArray(value)) throw bad(file, '__metadata__ is not an object')
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(file, `__metadata__ key "${k}" is ${JSON.stringify(v)}, not a string (the format allows only strings there)`)
      }
      metadata = value as Record<string, string>
      continue
    }
    const t = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
    if (typeof t !== 'object' || t === null || Array.isArray(t)) throw bad(file, `entry "${name}" is not an object`)
    if (typeof t.dtype !== 'string' || !Object.hasOwn(DTYPE_BITS, t.dtype)) {
      throw bad(file, `tensor "${name}" has unknown dtype ${JSON.stringify(t.dtype)} (the format knows ${Object.keys(DTYPE_BITS).join(', ')})`)
    }
    const dtype = t.dtype as StoredDtype
    if (!Array.isArray(t.shape) || !t.shape.every((s) => Number.isSafeInteger(s) && s >= 0)) {
      throw bad(file, `tensor "${name}" has an invalid shape ${JSON.stringify(t.shape)} (a list of non-negative integers)`)
    }
    const offsets = t.data_offsets
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      throw bad(file, `tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)} (expected [begin, end] with begin ≤ end)`)
    }
    const shape = t.shape as number[]
    const bits = shape.reduce((a, b) => a * BigInt(b), 1n) * BigInt(DTYPE_BITS[dtype])
    if (bits % 8n !== 0n) throw bad(file, `tensor "${name}": ${dtype}${JSON.stringify(shape)} is not a whole number of bytes`)
    const [b, e] = offsets as [number, number]
    if (BigInt(e - b) !== bits / 8n) {
      throw bad(file, `tensor "${name}" spans ${e - b} bytes but ${dtype}${JSON.stringify(shape)} needs ${bits / 8n}`)
    }
    tensors.set(name, { name, dtype, shape, begin: dataStart + b, end: dataStart + e })
  }
  // The data buffer must be covered exactly once, in offset order (the reference's InvalidOffset).
  const ordered = [...tensors.values()].sort((x, y) => x.begin - y.begin || x.end - y.end)
  let covered = dataStart
  let previous: TensorInfo | null = null
  for (const t of ordered) {
    if (t.end > fileBytes) {
      throw bad(file, `tensor "${t.name}" ends at byte ${t.end} but the file has ${fileBytes} bytes (truncated download?)`)
    }
    if (t.begin < covered) {
      throw bad(
        file,
        `tensors "${previous!.name}" (${describeRange(previous!, dataStart)}) and "${t.name}" (${describeRange(t, dataStart)}) share bytes; ` +
          'each tensor must have bytes of its own (the reference reader refuses overlapping data_offsets)'
      )
    }
    if (t.begin > covered) {
      throw bad(
        file,
        `bytes ${covered - dataStart}–${t.begin - dataStart} of the data belong to no tensor (between ${previous ? `"${previous.name}"` : 'the header'} and "${t.name}"); ` +
          'the reference reader refuses data_offsets that leave gaps'
      )
    }
    covered = t.end
    previous = t
  }
  if (covered !== fileBytes) {
    throw bad(
      file,
      `the file has ${fileBytes - covered} bytes after the last tensor's data that no tensor covers (the reference reader refuses trailing bytes)`
    )
  }
  return { file, fileBytes, headerBytes, tensors, metadata }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Reads and validates the header only; tensor data stays on disk. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  let fileBytes: number
  try {
    fileBytes = (await stat(file)).size
  } catch (err) {
    throw unreadable(file, 'file', err)
  }
  if (fileBytes < 8) throw bad(file, `it has only ${fileBytes} bytes`)
  const fh = await open(file, 'r')
  try {
    const lenBuf = Buffer.alloc(8)
    await readFully(fh, lenBuf, 0)
    const n = lenBuf.readBigUInt64LE(0)
    if (n > BigInt(MAX_HEADER_BYTES)) throw bad(file, `its header claims ${n} bytes (limit ${MAX_HEADER_BYTES})`)
    const headerBytes = Number(n)
    if (8 + headerBytes > fileBytes) {
      throw bad(file, `its header claims ${headerBytes} bytes but the file has only ${fileBytes}`)
    }
    const buf = Buffer.alloc(headerBytes)
    await readFully(fh, buf, 8)
    let json: string
    try {
      json = strictUtf8.decode(buf)
    } catch {
      throw bad(file, 'its header is not valid UTF-8')
    }
    return parseSafetensorsHeader(file, fileBytes, headerBytes, json)
  } finally {
    await fh.close()
  }
}

/**
 * Fills `target` from `position` on, in reads of at most `chunkBytes`, looping over short reads.
 * Returns the bytes read: fewer than target.byteLength only when the file ends first.
 */
export async function readFully(fh: FileHandle, target: Uint8Array, position: number, chunkBytes = IO_CHUNK_BYTES): Promise<number> {
  let done = 0
  while (done < target.byteLength) {
    const want = Math.min(chunkBytes, target.byteLength - done)
    const { bytesRead } = await fh.read(target, done, want, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}

/** Writes all of `data` at the file's current position, in writes of at most `chunkBytes`. */
export async function writeFully(fh: FileHandle, data: ArrayBufferView, chunkBytes = IO_CHUNK_BYTES): Promise<void> {
  for (let o = 0; o < data.byteLength;) {
    const len = Math.min(chunkBytes, data.byteLength - o)
    const { bytesWritten } = await fh.write(new Uint8Array(data.buffer, data.byteOffset + o, len), 0, len)
    o += bytesWritten
  }
}

export interface TensorToWrite {
  dtype: Dtype
  shape: number[]
  /** The tensor's bytes, whole or as consecutive parts (written in order, never concatenated). */
  data: ArrayBufferView | ArrayBufferView[]
}

/**
 * Writes a safetensors file atomically: to a temporary name first, renamed when complete, so an
 * interrupted write never leaves a file that looks whole.
 */
export async function writeSafetensors(file: string, tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): Promise<void> {
  const header: Record<string, unknown> = {}
  if (Object.keys(metadata).length) header.__metadata__ = metadata
  let offset = 0
  const names = Object.keys(tensors)
  for (const name of names) {
    const t = tensors[name]!
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype]
    const given = Array.isArray(t.data) ? t.data.reduce((a, p) => a + p.byteLength, 0) : t.data.byteLength
    if (given !== bytes) {
      throw new Error(`Tensor ${name}: ${t.dtype}${JSON.stringify(t.shape)} needs ${bytes} bytes, data has ${given}`)
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
    await writeFully(fh, len)
    await writeFully(fh, Buffer.from(json, 'utf8'))
    for (const name of names) {
      const data = tensors[name]!.data
      for (const part of Array.isArray(data) ? data : [data]) await writeFully(fh, part)
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
    table[h] = exp === 0 ? sign * 2 ** -14 * (frac / 1024) : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * 2 ** (exp - 15) * (1 + frac / 1024)
  }
  return table
})()

/**
 * Decodes little-endian elements of `dtype` into `out` from index `at` on. `bytes` may start at any byte
 * offset (file data need not be aligned to the element size) and must hold whole elements.
 */
export function decodeInto(bytes: Uint8Array, dtype: Dtype, out: Float32Array, at = 0): void {
  const size = DTYPE_BYTES[dtype]
  const n = bytes.byteLength / size
  if (!Number.isInteger(n)) throw new Error(`decodeInto: ${bytes.byteLength} bytes is not a whole number of ${dtype} elements`)
  // Typed-array views need aligned offsets: copy only when the bytes are not aligned (a Buffer's slice() is a view, not a copy).
  const src = bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes)
  const { buffer, byteOffset } = src
  switch (dtype) {
    case 'F32':
      out.set(new Float32Array(buffer, byteOffset, n), at)
      return
    case 'F64': {
      const v = new Float64Array(buffer, byteOffset, n)
      for (let i = 0; i < n; i++) out[at + i] = v[i]!
      return
    }
    case 'F16': {
      const v = new Uint16Array(buffer, byteOffset, n)
      for (let i = 0; i < n; i++) out[at + i] = F16_TABLE[v[i]!]!
      return
    }
    case 'BF16': {
      // BF16 is the top 16 bits of an F32.
      const v = new Uint16Array(buffer, byteOffset, n)
      const bits = new Uint32Array(out.buffer, out.byteOffset + at * 4, n)
      for (let i = 0; i < n; i++) bits[i] = v[i]! << 16
      return
    }
    case 'I32': {
      const v = new Int32Array(buffer, byteOffset, n)
      for (let i = 0; i < n; i++) out[at + i] = v[i]!
      return
    }
    case 'I64': {
      const v = new BigInt64Array(buffer, byteOffset, n)
      for (let i = 0; i < n; i++) out[at + i] = Number(v[i]!)
      return
    }
    case 'I16': {
      const v = new Int16Array(buffer, byteOffset, n)
      for (let i = 0; i < n; i++) out[at + i] = v[i]!
      return
    }
    case 'I8': {
      const v = new Int8Array(buffer, byteOffset, n)
      for (let i = 0; i < n; i++) out[at + i] = v[i]!
      return
    }
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < n; i++) out[at + i] = src[i]!
      return
  }
}

/** Decodes little-endian tensor bytes of any float or integer dtype into a new float32 array. */
export function toFloat32(bytes: Uint8Array, dtype: StoredDtype): Float32Array {
  if (!isDecodable(dtype)) throw new UserError(`FeatureTrace cannot decode ${dtype} tensors; convert them to F32, F16 or BF16.`)
  const out = new Float32Array(bytes.byteLength / DTYPE_BYTES[dtype])
  decodeInto(bytes, dtype, out)
  return out
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

/** An open safetensors file: header validated, tensors read on demand with positioned, chunked reads. */
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

  private decodable(t: TensorInfo): Dtype {
    if (!isDecodable(t.dtype)) {
      throw new UserError(`${this.header.file}: tensor "${t.name}" is ${t.dtype}, which FeatureTrace cannot decode; convert it to F32, F16 or BF16.`)
    }
    return t.dtype
  }

  /**
   * Fills `into` (any typed array, even one over 4 GiB) from absolute `position`, a chunk at a time; a short
   * read means the file changed under us.
   */
  private async fill(into: ArrayBufferView, position: number, what: string): Promise<void> {
    for (let o = 0; o < into.byteLength; o += IO_CHUNK_BYTES) {
      const part = new Uint8Array(into.buffer, into.byteOffset + o, Math.min(IO_CHUNK_BYTES, into.byteLength - o))
      if ((await readFully(this.fh, part, position + o)) !== part.byteLength) {
        throw new UserError(`${this.header.file} ended while reading ${what} (file changed or truncated).`)
      }
    }
  }

  /** A tensor's raw bytes, into `into` when given (it must be exactly the tensor's size); at most 4 GiB. */
  async readBytes(name: string, into?: Uint8Array): Promise<Uint8Array> {
    const t = this.info(name)
    const size = t.end - t.begin
    if (into && into.byteLength !== size) throw new Error(`readBytes: ${name} has ${size} bytes, the target ${into.byteLength}`)
    const buf = into ?? Buffer.alloc(size)
    await this.fill(buf, t.begin, `tensor "${name}"`)
    return buf
  }

  /** Reads rows [start, start + count) of a tensor whose first dimension is rows, as raw bytes. */
  async readRows(name: string, start: number, count: number): Promise<Uint8Array> {
    const t = this.info(name)
    const [offset, bytes] = this.rowRange(t, start, count)
    const buf = Buffer.alloc(bytes)
    await this.fill(buf, t.begin + offset, `rows of "${name}"`)
    return buf
  }

  private rowRange(t: TensorInfo, start: number, count: number): [offset: number, bytes: number] {
    const rows = t.shape[0] ?? 0
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > rows) {
      throw new Error(`rows ${start}+${count} outside ${t.name} [${rows}]`)
    }
    const rowBytes = rows ? (t.end - t.begin) / rows : 0
    return [start * rowBytes, count * rowBytes]
  }

  /** Decodes the bytes [offset, offset + bytes) of a tensor into float32, a bounded chunk at a time. */
  private async decodeRange(t: TensorInfo, offset: number, bytes: number): Promise<Float32Array> {
    const dtype = this.decodable(t)
    const size = DTYPE_BYTES[dtype]
    const out = new Float32Array(bytes / size)
    if (dtype === 'F32') {
      // Read straight into the result: no second copy of a tensor that may be gigabytes.
      await this.fill(out, t.begin + offset, `tensor "${t.name}"`)
      return out
    }
    const chunk = Buffer.alloc(Math.min(bytes, Math.floor(IO_CHUNK_BYTES / size) * size))
    for (let o = 0; o < bytes; o += chunk.byteLength) {
      const part = chunk.subarray(0, Math.min(chunk.byteLength, bytes - o))
      await this.fill(part, t.begin + offset + o, `tensor "${t.name}"`)
      decodeInto(part, dtype, out, o / size)
    }
    return out
  }

  async readFloat32Rows(name: string, start: number, count: number): Promise<Float32Array> {
    const t = this.info(name)
    return this.decodeRange(t, ...this.rowRange(t, start, count))
  }

  /** The whole tensor as float32, whatever its size on disk (up to 2^32 elements). */
  async readFloat32(name: string): Promise<Float32Array> {
    const t = this.info(name)
    return this.decodeRange(t, 0, t.end - t.begin)
  }

  async readInt32(name: string): Promise<Int32Array> {
    const t = this.info(name)
    if (t.dtype !== 'I32') throw new UserError(`${this.header.file}: tensor "${name}" is ${t.dtype}, expected I32.`)
    const out = new Int32Array((t.end - t.begin) / 4)
    await this.fill(out, t.begin, `tensor "${name}"`)
    return out
  }

  async close(): Promise<void> {
    await this.fh.close()
  }
}

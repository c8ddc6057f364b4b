// safetensors header reading with every bound FORMATS.md asks for: a hostile header cannot make us
// allocate gigabytes or read outside the file.
import { open, rename, stat } from 'node:fs/promises'
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

// NumPy .npz archives (what Gemma Scope ships its SAE parameters as): a zip of .npy files. No maintained
// npm package reads .npy/.npz, so the zip is read with yauzl (a maintained streaming zip reader: stored and
// deflated entries, zip64 for members over 4 GiB) and each entry's .npy header (magic, version, a Python-dict
// header giving dtype, order and shape) is parsed here, bounded like the safetensors reader. Member data is
// streamed and decoded chunk by chunk, never held whole.
import { promisify } from 'node:util'
import type { Readable } from 'node:stream'
import yauzl from 'yauzl'
import { UserError } from '../../shared/api'
import { decodeInto, type Dtype } from './safetensors'

export interface NpyHeader {
  /** The array's name in the archive (file name without .npy). */
  name: string
  /** NumPy dtype descriptor, e.g. "<f4". */
  descr: string
  fortranOrder: boolean
  shape: number[]
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]) // \x93NUMPY
const MAX_HEADER = 64 * 1024
const FLOAT_BYTES: Record<string, number> = { '<f4': 4, '<f2': 2, '<f8': 8 }
/** The same element types as safetensors names them: one decoder (safetensors.decodeInto) reads both. */
const NPY_DTYPES: Record<string, Dtype> = { '<f4': 'F32', '<f2': 'F16', '<f8': 'F64' }

function bad(file: string, what: string): UserError {
  return new UserError(`${file} is not a readable .npz file: ${what}. Re-save it with numpy.savez.`)
}

/** Parses an .npy header from the start of an entry; null while more bytes are needed. */
function parseNpyHeader(file: string, name: string, buf: Buffer): { header: NpyHeader; dataStart: number } | null {
  if (buf.length < 10) return null
  if (!buf.subarray(0, 6).equals(MAGIC)) throw bad(file, `${name}.npy does not start with the .npy magic`)
  const major = buf[6]!
  const lenBytes = major === 1 ? 2 : 4
  if (buf.length < 8 + lenBytes) return null
  const len = lenBytes === 2 ? buf.readUInt16LE(8) : buf.readUInt32LE(8)
  if (len > MAX_HEADER) throw bad(file, `${name}.npy claims a ${len}-byte header`)
  const start = 8 + lenBytes
  if (buf.length < start + len) return null
  const text = buf.subarray(start, start + len).toString('latin1')
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(text)?.[1]
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1]
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1]
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw bad(file, `${name}.npy has a header numpy did not write (${text.trim()})`)
  const shape = shapeText
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '')
    .map(Number)
  if (shape.some((x) => !Number.isSafeInteger(x) || x < 0)) throw bad(file, `${name}.npy has shape (${shapeText})`)
  return { header: { name, descr, fortranOrder: fortran === 'True', shape }, dataStart: start + len }
}

type ZipFile = yauzl.ZipFile
const openZip = promisify(yauzl.open) as (path: string, options: yauzl.Options) => Promise<ZipFile>

/** Opens an entry's data, or the byte range [start, end) of a stored (uncompressed) entry's data. */
type OpenEntry = (range?: { start: number; end: number }) => Promise<Readable>

/** Visits each .npy entry: `visit` opens its stream (whole or a range) and decides how much of it to read. */
async function eachEntry(file: string, visit: (name: string, entry: yauzl.Entry, open: OpenEntry) => Promise<void>): Promise<void> {
  let zip: ZipFile
  try {
    zip = await openZip(file, { lazyEntries: true, autoClose: false })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`Missing file: ${file}.`)
    throw bad(file, `it is not a zip archive (${(err as Error).message})`)
  }
  const openStream = promisify(zip.openReadStream.bind(zip)) as (e: yauzl.Entry, o?: yauzl.ZipFileOptions) => Promise<Readable>
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', (err: Error) => reject(bad(file, err.message)))
      zip.on('end', () => resolve())
      zip.on('entry', (entry: yauzl.Entry) => {
        if (!entry.fileName.endsWith('.npy')) return zip.readEntry()
        const name = entry.fileName.slice(0, -4)
        const open: OpenEntry = (range) =>
          openStream(entry, range ? ({ decodeFileData: false, start: range.start, end: range.end } as unknown as yauzl.ZipFileOptions) : undefined)
        visit(name, entry, open)
          .then(() => zip.readEntry())
          .catch(reject)
      })
      zip.readEntry()
    })
  } finally {
    zip.close()
  }
}

/** Reads an entry's .npy header from the start of its stream, leaving the stream destroyed. */
function readHeader(file: string, name: string, stream: Readable): Promise<{ header: NpyHeader; dataStart: number }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    let done = false
    const finish = (err: Error | null, value?: { header: NpyHeader; dataStart: number }): void => {
      if (done) return
      done = true
      stream.destroy()
      if (err) reject(err)
      else resolve(value!)
    }
    stream.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      try {
        const parsed = parseNpyHeader(file, name, buf)
        if (parsed) finish(null, parsed)
        else if (buf.length > MAX_HEADER + 16) finish(bad(file, `${name}.npy header never ends`))
      } catch (err) {
        finish(err as Error)
      }
    })
    stream.on('error', (err) => finish(bad(file, err.message)))
    stream.on('end', () => finish(bad(file, `${name}.npy ends inside its header`)))
    // A destroyed stream emits 'close' without 'end'.
    stream.on('close', () => finish(bad(file, `${name}.npy ends inside its header`)))
  })
}

/** The arrays' names, dtypes and shapes, reading only each entry's header. */
export async function readNpzHeaders(file: string): Promise<Map<string, NpyHeader>> {
  const out = new Map<string, NpyHeader>()
  await eachEntry(file, async (name, _entry, open) => {
    out.set(name, (await readHeader(file, name, await open())).header)
  })
  return out
}

/**
 * Streams `count` elements of an entry's data into a new float32 array, chunk by chunk: no buffer of the
 * entry's size is ever made (a 1M-latent Gemma Scope decoder is over 4 GiB). Fortran-ordered 2-D data is
 * placed at its row-major index as it arrives.
 */
function streamElements(file: string, name: string, stream: Readable, header: NpyHeader, skip: number, count: number, fortran: boolean): Promise<Float32Array> {
  const size = FLOAT_BYTES[header.descr]!
  const out = new Float32Array(count)
  const [rows, cols] = header.shape as [number, number]
  const scratch = fortran ? new Float32Array(65536) : null
  let skipLeft = skip
  let carry = Buffer.alloc(0)
  let filled = 0
  return new Promise((resolve, reject) => {
    let done = false
    const fail = (err: Error): void => {
      if (done) return
      done = true
      stream.destroy()
      reject(err)
    }
    stream.on('data', (chunk: Buffer) => {
      if (done) return
      if (skipLeft > 0) {
        const dropped = Math.min(skipLeft, chunk.length)
        skipLeft -= dropped
        chunk = chunk.subarray(dropped)
      }
      const bytes = carry.length ? Buffer.concat([carry, chunk]) : chunk
      const whole = Math.min(Math.floor(bytes.length / size), count - filled)
      if (scratch) {
        for (let o = 0; o < whole; o += scratch.length) {
          const n = Math.min(scratch.length, whole - o)
          decodeInto(bytes.subarray(o * size, (o + n) * size), NPY_DTYPES[header.descr]!, scratch, 0)
          for (let i = 0; i < n; i++) {
            const k = filled + o + i
            out[(k % rows) * cols + Math.floor(k / rows)] = scratch[i]!
          }
        }
      } else decodeInto(bytes.subarray(0, whole * size), NPY_DTYPES[header.descr]!, out, filled)
      filled += whole
      carry = Buffer.from(bytes.subarray(whole * size))
      if (filled === count) {
        done = true
        stream.destroy()
        resolve(out)
      }
    })
    stream.on('error', (err) => fail(bad(file, err.message)))
    stream.on('end', () => {
      if (done) return
      if (filled !== count || carry.length) return fail(bad(file, `${name}.npy has fewer data bytes than its shape (${header.shape.join(', ')}) needs`))
      done = true
      resolve(out)
    })
  })
}

function checkHeader(file: string, header: NpyHeader, entry: yauzl.Entry, dataStart: number): number {
  const { name } = header
  const itemBytes = FLOAT_BYTES[header.descr]
  if (!itemBytes) throw bad(file, `${name}.npy holds dtype ${header.descr}; FeatureTrace reads little-endian float16/32/64 arrays`)
  if (header.fortranOrder && header.shape.length > 2) throw bad(file, `${name}.npy is a Fortran-ordered ${header.shape.length}-D array; save it in C order`)
  const count = header.shape.reduce((a, b) => a * b, 1)
  if (entry.uncompressedSize - dataStart !== count * itemBytes) {
    throw bad(file, `${name}.npy has ${entry.uncompressedSize - dataStart} data bytes, its shape (${header.shape.join(', ')}) needs ${count * itemBytes}`)
  }
  return count
}

/** Reads the named float arrays (all when `names` is omitted) as row-major float32, streamed. */
export async function readNpz(file: string, names?: readonly string[]): Promise<Map<string, { header: NpyHeader; data: Float32Array }>> {
  const out = new Map<string, { header: NpyHeader; data: Float32Array }>()
  await eachEntry(file, async (name, entry, open) => {
    if (names && !names.includes(name)) return
    const { header, dataStart } = await readHeader(file, name, await open())
    const count = checkHeader(file, header, entry, dataStart)
    const fortran = header.fortranOrder && header.shape.length === 2
    out.set(name, { header, data: await streamElements(file, name, await open(), header, dataStart, count, fortran) })
  })
  return out
}

/**
 * Rows [start, start + count) of one C-ordered array (its first dimension is rows), as float32. A stored
 * (uncompressed, as numpy.savez writes) member is read at the rows' byte range only, so the last rows of
 * a member of any size cost what they hold; a deflated member is streamed up to them.
 */
export async function readNpzRows(file: string, name: string, start: number, count: number): Promise<Float32Array> {
  let result: Float32Array | null = null
  await eachEntry(file, async (entryName, entry, open) => {
    if (entryName !== name || result) return
    const { header, dataStart } = await readHeader(file, name, await open())
    checkHeader(file, header, entry, dataStart)
    if (header.fortranOrder && header.shape.length > 1) throw bad(file, `${name}.npy is in Fortran order: its rows are not contiguous; read it whole`)
    const rows = header.shape[0] ?? 0
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > rows) {
      throw new Error(`rows ${start}+${count} outside ${name} [${rows}]`)
    }
    const per = header.shape.slice(1).reduce((a, b) => a * b, 1)
    const size = FLOAT_BYTES[header.descr]!
    const from = dataStart + start * per * size
    if (entry.compressionMethod === 0) {
      const stream = await open({ start: from, end: from + count * per * size })
      result = await streamElements(file, name, stream, header, 0, count * per, false)
    } else {
      result = await streamElements(file, name, await open(), header, from, count * per, false)
    }
  })
  if (!result) throw new UserError(`${file} has no array "${name}".`)
  return result
}

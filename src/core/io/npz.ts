// NumPy .npz archives (what Gemma Scope ships its SAE parameters as): a zip of .npy files. No maintained
// npm package reads .npy/.npz, so the zip is read with yauzl (a maintained streaming zip reader, stored and
// deflated entries alike) and each entry's .npy header (magic, version, a Python-dict header giving dtype,
// order and shape) is parsed here, bounded like the safetensors reader.
import { promisify } from 'node:util'
import type { Readable } from 'node:stream'
import yauzl from 'yauzl'
import { UserError } from '../../shared/api'

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

/** Visits each .npy entry: `visit` receives its stream and decides how much of it to read. */
async function eachEntry(file: string, visit: (name: string, stream: Readable, entry: yauzl.Entry) => Promise<void>): Promise<void> {
  let zip: ZipFile
  try {
    zip = await openZip(file, { lazyEntries: true, autoClose: false })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`Missing file: ${file}.`)
    throw bad(file, `it is not a zip archive (${(err as Error).message})`)
  }
  const openStream = promisify(zip.openReadStream.bind(zip)) as (e: yauzl.Entry) => Promise<Readable>
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', (err: Error) => reject(bad(file, err.message)))
      zip.on('end', () => resolve())
      zip.on('entry', (entry: yauzl.Entry) => {
        if (!entry.fileName.endsWith('.npy')) return zip.readEntry()
        const name = entry.fileName.slice(0, -4)
        openStream(entry)
          .then((stream) => visit(name, stream, entry))
          .then(() => zip.readEntry())
          .catch(reject)
      })
      zip.readEntry()
    })
  } finally {
    zip.close()
  }
}

/** The arrays' names, dtypes and shapes, reading only each entry's header. */
export async function readNpzHeaders(file: string): Promise<Map<string, NpyHeader>> {
  const out = new Map<string, NpyHeader>()
  await eachEntry(file, (name, stream) => {
    return new Promise<void>((resolve, reject) => {
      let buf = Buffer.alloc(0)
      let done = false
      stream.on('data', (chunk: Buffer) => {
        if (done) return
        buf = Buffer.concat([buf, chunk])
        try {
          const parsed = parseNpyHeader(file, name, buf)
          if (parsed) {
            done = true
            out.set(name, parsed.header)
            stream.destroy()
            resolve()
          } else if (buf.length > MAX_HEADER + 16) {
            throw bad(file, `${name}.npy header never ends`)
          }
        } catch (err) {
          done = true
          stream.destroy()
          reject(err as Error)
        }
      })
      stream.on('error', (err) => !done && reject(bad(file, err.message)))
      stream.on('end', () => !done && reject(bad(file, `${name}.npy ends inside its header`)))
      // A destroyed stream emits 'close' without 'end'.
      stream.on('close', () => done || reject(bad(file, `${name}.npy ends inside its header`)))
    })
  })
  return out
}

function decode(bytes: Buffer, descr: string): Float32Array {
  // numpy pads headers so data starts 64-byte aligned: float32 data is viewed in place.
  if (descr === '<f4' && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
  const aligned = new Uint8Array(bytes.byteLength)
  aligned.set(bytes)
  switch (descr) {
    case '<f4':
      return new Float32Array(aligned.buffer)
    case '<f8':
      return Float32Array.from(new Float64Array(aligned.buffer))
    default: {
      const src = new Uint16Array(aligned.buffer)
      const out = new Float32Array(src.length)
      for (let i = 0; i < src.length; i++) {
        const h = src[i]!
        const sign = h & 0x8000 ? -1 : 1
        const exp = (h >> 10) & 0x1f
        const frac = h & 0x3ff
        out[i] = exp === 0 ? sign * 2 ** -14 * (frac / 1024) : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * 2 ** (exp - 15) * (1 + frac / 1024)
      }
      return out
    }
  }
}

/** Fortran-ordered 2-D data back to row-major. */
function toRowMajor(a: Float32Array, shape: number[]): Float32Array {
  if (shape.length !== 2) return a
  const [r, c] = shape as [number, number]
  const out = new Float32Array(a.length)
  for (let j = 0; j < c; j++) for (let i = 0; i < r; i++) out[i * c + j] = a[j * r + i]!
  return out
}

/** Reads the named float arrays (all when `names` is omitted) as row-major float32. */
export async function readNpz(file: string, names?: readonly string[]): Promise<Map<string, { header: NpyHeader; data: Float32Array }>> {
  const out = new Map<string, { header: NpyHeader; data: Float32Array }>()
  await eachEntry(file, (name, stream, entry) => {
    if (names && !names.includes(name)) {
      stream.destroy()
      return Promise.resolve()
    }
    return new Promise<void>((resolve, reject) => {
      // One buffer of the entry's size, filled as it streams (arrays are hundreds of MB for wide SAEs).
      const buf = Buffer.alloc(entry.uncompressedSize)
      let size = 0
      stream.on('data', (chunk: Buffer) => {
        if (size + chunk.length > buf.length) {
          stream.destroy()
          return reject(bad(file, `${name}.npy is longer than its zip entry says`))
        }
        chunk.copy(buf, size)
        size += chunk.length
      })
      stream.on('error', (err) => reject(bad(file, err.message)))
      stream.on('end', () => {
        try {
          if (size !== buf.length) throw bad(file, `${name}.npy is shorter than its zip entry says`)
          const parsed = parseNpyHeader(file, name, buf)
          if (!parsed) throw bad(file, `${name}.npy ends inside its header`)
          const { header, dataStart } = parsed
          const itemBytes = FLOAT_BYTES[header.descr]
          if (!itemBytes) throw bad(file, `${name}.npy holds dtype ${header.descr}; FeatureTrace reads little-endian float16/32/64 arrays`)
          const count = header.shape.reduce((a, b) => a * b, 1)
          if (buf.length - dataStart !== count * itemBytes) throw bad(file, `${name}.npy has ${buf.length - dataStart} data bytes, its shape (${header.shape.join(', ')}) needs ${count * itemBytes}`)
          const data = decode(buf.subarray(dataStart), header.descr)
          out.set(name, { header, data: header.fortranOrder ? toRowMajor(data, header.shape) : data })
          resolve()
        } catch (err) {
          reject(err as Error)
        }
      })
    })
  })
  return out
}

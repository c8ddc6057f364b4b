// The inner loop of drift at SAE-Track scale (154 SAEs × 65,536 × 1,024): each stored decoder is decoded
// once into float32 and, in the same pass, its row norms and the dot products with the final and the
// previous SAE's rows are taken. Two worker threads (drift-kernel-worker.ts) split the rows (these machines
// have two cores) over shared memory, while the main thread reads the next SAE from disk.
import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { F16_TABLE } from '../io/safetensors'
import { KERNEL_WORKER_DATA, type KernelMessage } from './drift-kernel-worker'

/**
 * The kernel worker's bundle (electron-vite emits it as out/main/threads/drift-kernel.js beside the main, CLI and
 * job-worker bundles; from the sources, tests use the built one). FEATURETRACE_DRIFT_KERNEL overrides it (the
 * desktop app sets it to the unpacked file: worker threads cannot read app.asar).
 */
export function kernelEntry(): string {
  const fromEnv = process.env.FEATURETRACE_DRIFT_KERNEL
  if (fromEnv) return fromEnv
  const here = dirname(fileURLToPath(import.meta.url))
  const candidates = [
    join(here, 'threads', 'drift-kernel.js'),
    join(here, '..', 'threads', 'drift-kernel.js'),
    join(here, '../../../out/main/threads/drift-kernel.js')
  ]
  const found = candidates.find((c) => existsSync(c))
  if (!found) throw new Error(`The drift kernel bundle is missing (looked for ${candidates.join(', ')}); run \`npm run build\` first.`)
  // Inside a package the bundle is unpacked beside app.asar: a worker thread can only start a real file.
  return found.replace(/\.asar(?=[\\/])/, '.asar.unpacked')
}

/** One SAE's decoder decoded to float32 in shared memory, with its row norms. */
export interface SharedRows {
  rows: Float32Array
  norms: Float64Array
}

export interface PassInput {
  n: number
  d: number
  /** The stored bytes (F16, BF16 or F32) to decode into `into`; absent: `into` already holds the rows. */
  raw?: { bytes: Uint8Array; dtype: 'F16' | 'BF16' | 'F32' }
  into: SharedRows
  final: SharedRows | null
  previous: SharedRows | null
}

/** A buffer the kernel's threads share; anything else is a bug of the caller. */
function shared(b: ArrayBufferLike | null): SharedArrayBuffer | null {
  if (b === null) return null
  if (!(b instanceof SharedArrayBuffer)) throw new Error('DriftKernel.pass: every buffer must live in shared memory (sharedRows, sharedBytes)')
  return b
}

export function sharedRows(n: number, d: number): SharedRows {
  return { rows: new Float32Array(new SharedArrayBuffer(n * d * 4)), norms: new Float64Array(new SharedArrayBuffer(n * 8)) }
}

export function sharedBytes(length: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(length))
}

export class DriftKernel {
  private readonly workers: Worker[]
  private readonly table: SharedArrayBuffer

  constructor(threads = Math.max(1, Math.min(2, availableParallelism()))) {
    this.table = new SharedArrayBuffer(65536 * 4)
    new Float32Array(this.table).set(F16_TABLE)
    const entry = kernelEntry()
    this.workers = Array.from({ length: threads }, () => new Worker(entry, { workerData: KERNEL_WORKER_DATA }))
  }

  /** One fused pass: decode (if raw given), norms, cosines to the final and previous rows. */
  async pass(p: PassInput): Promise<{ cosToFinal: Float32Array; cosToPrevious: Float32Array }> {
    const outF = new Float32Array(new SharedArrayBuffer(p.n * 4))
    const outP = new Float32Array(new SharedArrayBuffer(p.n * 4))
    const W = this.workers.length
    await Promise.all(
      this.workers.map(
        (w, k) =>
          new Promise<void>((resolve, reject) => {
            const onError = (err: Error): void => reject(err)
            w.once('error', onError)
            w.once('message', () => {
              w.off('error', onError)
              resolve()
            })
            const message: KernelMessage = {
              n: p.n,
              d: p.d,
              r0: Math.floor((k * p.n) / W),
              r1: Math.floor(((k + 1) * p.n) / W),
              dtype: p.raw?.dtype ?? 'F32',
              decode: Boolean(p.raw),
              raw: shared(p.raw?.bytes.buffer ?? null),
              cur: shared(p.into.rows.buffer)!,
              norms: shared(p.into.norms.buffer)!,
              fin: shared(p.final?.rows.buffer ?? null),
              finNorms: shared(p.final?.norms.buffer ?? null),
              prev: shared(p.previous?.rows.buffer ?? null),
              prevNorms: shared(p.previous?.norms.buffer ?? null),
              outF: shared(outF.buffer)!,
              outP: shared(outP.buffer)!,
              table: this.table
            }
            w.postMessage(message)
          })
      )
    )
    return { cosToFinal: outF, cosToPrevious: outP }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}

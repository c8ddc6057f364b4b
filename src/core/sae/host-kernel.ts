// The SAE step's host loops on every core: worker threads running host-kernel-worker.ts's tasks over shared
// memory (the decoder forward and residuals by token blocks, the gradient scatter by latent ownership, Adam and
// W_dec's renormalisation by rows). With one thread, or work too small to be worth a round trip, the same task
// runs in the calling thread over the whole range. The buffers of a step are allocated once per shape and
// reused; the parameters are read where they are (HostAdam keeps its host copies in shared memory).
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { ortThreads } from '../ort/engine'
import { BLOCK_SLOTS, runTask, SAE_KERNEL_WORKER_DATA, TOKEN_BLOCK, type AdamTask, type KernelTask, type StepShared } from './host-kernel-worker'

/** Threads the host loops use: every core, unless FEATURETRACE_THREADS says fewer (as onnxruntime's sessions). */
export function hostThreads(): number {
  return ortThreads()
}

/**
 * How a worker thread starts: from the sources (a .ts module, run under tsx or vitest), a bootstrap that
 * registers tsx's loader in the thread and imports the worker's source (Node 20 ignores --import in a worker's
 * execArgv); from a build, the self-contained bundle electron-vite emits as out/main/threads/sae-kernel.js
 * (beside the main, CLI and job-worker bundles, or one folder up from a chunk). FEATURETRACE_SAE_KERNEL
 * overrides it (the desktop app sets it to the unpacked file: worker threads cannot read app.asar).
 * Returns the Worker's first argument and whether it is code (eval) or a file.
 */
export function saeKernelEntry(): { entry: string; evalCode: boolean } {
  const fromEnv = process.env.FEATURETRACE_SAE_KERNEL
  if (fromEnv) {
    if (!existsSync(fromEnv))
      throw new Error(`FEATURETRACE_SAE_KERNEL names ${fromEnv}, which does not exist; unset it or point it at out/main/threads/sae-kernel.js.`)
    return { entry: fromEnv, evalCode: false }
  }
  const here = dirname(fileURLToPath(import.meta.url))
  if (import.meta.url.endsWith('.ts')) {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href
    const source = pathToFileURL(join(here, 'host-kernel-worker.ts')).href
    return { entry: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(source)}) })`, evalCode: true }
  }
  const candidates = [join(here, 'threads', 'sae-kernel.js'), join(here, '..', 'threads', 'sae-kernel.js')]
  const found = candidates.find((c) => existsSync(c))
  if (!found) throw new Error(`The SAE kernel bundle is missing (looked for ${candidates.join(', ')}); run \`npm run build\` first.`)
  // Inside a package the bundle is unpacked beside app.asar: a worker thread can only start a real file.
  return { entry: found.replace(/\.asar(?=[\\/])/, '.asar.unpacked'), evalCode: false }
}

/** A float32 array over a SharedArrayBuffer of its own. */
export function sharedFloat32(length: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(length * 4))
}

/** The SharedArrayBuffer an array spans exactly, or null (then its values must be copied into one). */
export function wholeShared(a: Float32Array): SharedArrayBuffer | null {
  return a.buffer instanceof SharedArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a.buffer : null
}

/** `parts` contiguous ranges of [0, total) of (nearly) equal length; fewer when total is smaller. */
export function evenRanges(total: number, parts: number): [number, number][] {
  const p = Math.max(1, Math.min(parts, total))
  return Array.from({ length: p }, (_, i) => [Math.floor((i * total) / p), Math.floor(((i + 1) * total) / p)] as [number, number])
}

/** `parts` contiguous ranges of [0, weights.length) whose weights sum to about the same; empty ranges dropped. */
export function weightedRanges(weights: ArrayLike<number>, parts: number): [number, number][] {
  let total = 0
  for (let i = 0; i < weights.length; i++) total += weights[i]!
  const out: [number, number][] = []
  let start = 0
  let acc = 0
  for (let i = 0; i < weights.length && out.length < parts - 1; i++) {
    acc += weights[i]!
    if (acc >= (total * (out.length + 1)) / parts) {
      out.push([start, i + 1])
      start = i + 1
    }
  }
  if (start < weights.length) out.push([start, weights.length])
  return out.filter(([a, b]) => b > a)
}

/** One step's shared buffers with typed views on them, for a (B, d, n, k, auxK) shape. */
export interface StepBuffers {
  shape: string
  shared: Omit<StepShared, 'kAux' | 'Wdec'>
  x: Float32Array
  bdec: Float32Array
  v: Float32Array
  idx: Int32Array
  va: Float32Array
  ia: Int32Array
  colX: Float64Array
  colErr: Float64Array
  means: Float64Array
  blockSums: Float64Array
  gWdec: Float32Array
  gWenc: Float32Array
  gBenc: Float32Array
  /** Pairs per latent (the scatter's split). */
  pairs: Int32Array
  /** The pairs grouped by latent and where each latent's group starts (StepShared.order, .offsets). */
  order: Int32Array
  offsets: Int32Array
  /** W_dec copied here when the caller's is not in shared memory (allocated on first need). */
  WdecCopy: Float32Array | null
}

function stepBuffers(B: number, d: number, n: number, k: number, auxK: number): StepBuffers {
  const blocks = Math.ceil(B / TOKEN_BLOCK)
  const sab = (bytes: number): SharedArrayBuffer => new SharedArrayBuffer(Math.max(bytes, 8))
  const shared = {
    B,
    d,
    n,
    k,
    x: sab(B * d * 4),
    xc: sab(B * d * 4),
    bdec: sab(d * 4),
    v: sab(B * k * 4),
    idx: sab(B * k * 4),
    va: sab(B * auxK * 4),
    ia: sab(B * auxK * 4),
    err: sab(B * d * 4),
    res: sab(auxK > 0 ? B * d * 4 : 0),
    colX: sab(blocks * d * 8),
    colErr: sab(blocks * d * 8),
    means: sab(2 * d * 8),
    blockSums: sab(blocks * BLOCK_SLOTS * 8),
    gWdec: sab(n * d * 4),
    order: sab(B * (k + auxK) * 4),
    offsets: sab((n + 1) * 4),
    dirty: sab(n),
    gWencT: sab(n * d * 4),
    gWenc: sab(n * d * 4),
    gBenc: sab(n * 4)
  }
  return {
    shape: `${B}:${d}:${n}:${k}:${auxK}`,
    shared,
    x: new Float32Array(shared.x),
    bdec: new Float32Array(shared.bdec),
    v: new Float32Array(shared.v),
    idx: new Int32Array(shared.idx),
    va: new Float32Array(shared.va),
    ia: new Int32Array(shared.ia),
    colX: new Float64Array(shared.colX),
    colErr: new Float64Array(shared.colErr),
    means: new Float64Array(shared.means),
    blockSums: new Float64Array(shared.blockSums),
    gWdec: new Float32Array(shared.gWdec, 0, n * d),
    gWenc: new Float32Array(shared.gWenc, 0, n * d),
    gBenc: new Float32Array(shared.gBenc, 0, n),
    pairs: new Int32Array(n),
    order: new Int32Array(shared.order),
    offsets: new Int32Array(shared.offsets),
    WdecCopy: null
  }
}

/**
 * A pool of worker threads for the host loops (`threads` of them; none when 1) and the step buffers they
 * share. Tasks of one kind run together, one range per thread, and the call returns when all are done.
 * Threads are started on first use and do not keep the process alive between calls.
 */
export class HostKernel {
  readonly threads: number
  /** Work (multiply-adds, roughly) below which a task runs in the calling thread whatever `threads` is. */
  private readonly minWork: number
  private workers: { worker: Worker; busy: boolean }[] = []
  private buffers: StepBuffers | null = null
  /** Tasks that ran in worker threads so far (tests check that a split happened). */
  dispatched = 0

  constructor(threads = hostThreads(), opts: { minWork?: number } = {}) {
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`HostKernel: threads must be a positive integer, not ${threads}`)
    this.threads = threads
    this.minWork = opts.minWork ?? 1 << 16
  }

  /** The step buffers for a shape, reused from the last step when the shape is the same. */
  step(B: number, d: number, n: number, k: number, auxK: number): StepBuffers {
    const shape = `${B}:${d}:${n}:${k}:${auxK}`
    if (this.buffers?.shape !== shape) this.buffers = null
    this.buffers ??= stepBuffers(B, d, n, k, auxK)
    return this.buffers
  }

  /** How many ranges a task of this much work is split into. */
  parts(work: number): number {
    return work < this.minWork ? 1 : this.threads
  }

  /** Runs the tasks (disjoint ranges of one kind): in the calling thread when there is one, else one per thread. */
  async run(tasks: KernelTask[]): Promise<void> {
    if (tasks.length <= 1) {
      for (const t of tasks) runTask(t)
      return
    }
    if (tasks.length > this.threads) throw new Error(`HostKernel.run: ${tasks.length} tasks for ${this.threads} threads`)
    if (this.workers.length === 0) {
      const { entry, evalCode } = saeKernelEntry()
      this.workers = Array.from({ length: this.threads }, () => {
        const worker = new Worker(entry, { workerData: SAE_KERNEL_WORKER_DATA, eval: evalCode })
        worker.unref()
        return { worker, busy: false }
      })
    }
    this.dispatched += tasks.length
    await Promise.all(tasks.map((t, i) => this.post(this.workers[i]!, t)))
  }

  private post(slot: { worker: Worker; busy: boolean }, task: KernelTask): Promise<void> {
    const w = slot.worker
    if (slot.busy) return Promise.reject(new Error('HostKernel: a thread was given a second task before finishing its first'))
    slot.busy = true
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        slot.busy = false
        w.off('error', onError)
        w.off('exit', onExit)
        w.off('message', onMessage)
        w.unref()
      }
      const onError = (err: Error): void => {
        done()
        reject(err)
      }
      const onExit = (code: number): void => {
        done()
        reject(new Error(`An SAE kernel thread exited (code ${code}) during a ${task.op} task`))
      }
      const onMessage = (reply: string | null): void => {
        done()
        if (reply === null) resolve()
        else reject(new Error(`The SAE kernel's ${task.op} task failed: ${reply}`))
      }
      w.on('error', onError)
      w.on('exit', onExit)
      w.on('message', onMessage)
      w.ref()
      w.postMessage(task)
    })
  }

  /**
   * Adam on a [rows, cols] parameter, split by rows; each of W_dec's rows renormalised after its update when
   * `unitRows`. Every array must be whole over a SharedArrayBuffer (sharedFloat32).
   */
  async adam(
    w: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    rows: number,
    s: Omit<AdamTask, 'op' | 'lo' | 'hi' | 'cols' | 'w' | 'g' | 'm' | 'v'>
  ): Promise<void> {
    const cols = w.length / rows
    const buf = (a: Float32Array, what: string): SharedArrayBuffer => {
      const b = wholeShared(a)
      if (!b) throw new Error(`HostKernel.adam: ${what} is not a whole SharedArrayBuffer`)
      return b
    }
    const base = { ...s, op: 'adam' as const, cols, w: buf(w, 'the parameter'), g: buf(g, 'the gradient'), m: buf(m, 'm'), v: buf(v, 'v') }
    await this.run(evenRanges(rows, this.parts(w.length)).map(([lo, hi]) => ({ ...base, lo, hi })))
  }

  /** Ends the threads (a kernel not closed ends with the process: its threads are unref'd). */
  async close(): Promise<void> {
    const all = this.workers
    this.workers = []
    await Promise.all(all.map((s) => s.worker.terminate()))
  }
}

let shared: HostKernel | null = null

/** The process's host kernel, with hostThreads() threads. */
export function hostKernel(): HostKernel {
  shared ??= new HostKernel()
  return shared
}

// Which compute engine runs, and why, chosen here and nowhere else. The same code (model forward, SAE step)
// runs on all of them:
// - `tensorflow` (tfjs-node-gpu): every op in TensorFlow, on CUDA where a GPU is visible, else on the CPU;
// - `webgpu`: every op in tfjs's WebGPU backend over Dawn (Vulkan, Metal, D3D12: no CUDA);
// - `ort`: onnxruntime-node runs the dense products that need every core (core/ort/engine.ts: the SAE
//   encoder product and its top-k, the model's projections, feature statistics' logit effects), tfjs-wasm (else
//   tfjs-cpu) the element-wise rest;
// - `wasm`, `cpu`: every op in that tfjs backend (wasm is single-threaded in Node).
import * as tf from '@tensorflow/tfjs-core'
import '@tensorflow/tfjs-backend-cpu'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

import { UserError } from '../../shared/errors'
import { BACKEND_NAMES } from '../../shared/schema'
import { explainNodeGpuLoadError, explainNoGpuDevice, missingCudaLibraries } from './node-gpu'
import { describeAdapter, emulatedAdapter, prepareWebgpu } from './webgpu'
import { ortThreads, tryOrt } from '../ort/engine'
import { hostThreads } from '../sae/host-kernel'

/** The engines the contract names (the order tried is initBackend's: GPU first, then the native CPU engines). */
export const BACKENDS = BACKEND_NAMES
export type BackendName = (typeof BACKENDS)[number]

export interface BackendChoice {
  name: BackendName
  /** The tfjs backend running the element-wise ops (tf.getBackend()): the engine's own name except under `ort`. */
  tfjs: 'tensorflow' | 'webgpu' | 'wasm' | 'cpu'
  /** One sentence for the user: why this backend runs (and, before it, why each faster one could not). */
  reason: string
  /** Backends tried before this one, with why each could not run. */
  skipped: { name: BackendName; why: string }[]
  /** Whether tfjs's kernels run on a GPU: TensorFlow with a CUDA device, or WebGPU on a real (not emulated) adapter. */
  gpu: boolean
}

/** tfjs-wasm's heap is 32-bit: 4 GiB at most, part of it for the runtime. What tensors may use of it, in bytes. */
export const WASM_HEAP_BYTES = 3.5 * 2 ** 30

let chosen: BackendChoice | null = null

// tfjs-cpu greets a Node process with advice to install tfjs-node on its first tensor; the engine choice already says
// what runs and why, so the greeting is turned off (its own firstUse flag).
const cpuBackend = tf.findBackend('cpu') as { firstUse?: boolean } | null
if (cpuBackend) cpuBackend.firstUse = false

/** Optional dependency: present on a user's GPU machine, absent where libtensorflow cannot be downloaded. */
const importNodeGpu = (): Promise<unknown> => import(/* @vite-ignore */ '@tensorflow/tfjs-node-gpu' as string)

/** Why tfjs-node-gpu cannot be used, in one sentence naming what is missing and what to install; null when it loaded. */
export async function tryTensorflow(load: () => Promise<unknown> = importNodeGpu): Promise<string | null> {
  try {
    await load()
    return null
  } catch (err) {
    return explainNodeGpuLoadError((err as Error).message ?? String(err))
  }
}

/** Whether the active `tensorflow` backend placed its device on a GPU (tfjs-node's NodeJSKernelBackend.isUsingGpuDevice). */
function tensorflowOnGpu(): boolean {
  return (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true
}

async function tryWasm(): Promise<string | null> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm')
    const require = createRequire(import.meta.url)
    const dist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/'
    wasm.setWasmPaths(dist)
    return null
  } catch (err) {
    return `the wasm backend failed to load: ${(err as Error).message}`
  }
}

/** The tfjs backend that runs the element-wise ops beside onnxruntime: wasm where it loads, else cpu. */
async function tfjsBesideOrt(): Promise<'wasm' | 'cpu'> {
  if ((await tryWasm()) === null && (await tf.setBackend('wasm'))) return 'wasm'
  if (!(await tf.setBackend('cpu'))) throw new Error("tf.setBackend('cpu') failed")
  return 'cpu'
}

/** onnxruntime-node with tfjs beside it; why it cannot run, or null with the choice's wording. */
async function activateOrt(): Promise<{ why: string } | { tfjs: 'wasm' | 'cpu'; what: string }> {
  const why = await tryOrt()
  if (why !== null) return { why }
  const tfjs = await tfjsBesideOrt()
  await tf.ready()
  return {
    tfjs,
    what: `onnxruntime-node runs the dense products on ${ortThreads()} threads, the SAE step's sparse host loops and Adam run on ${hostThreads()} threads, tfjs ${tfjs} the rest`
  }
}

async function activate(name: Exclude<BackendName, 'ort'>): Promise<string | null> {
  if (!(await tf.setBackend(name))) return `tf.setBackend('${name}') failed`
  await tf.ready()
  return null
}

/** The forced backend, or an error saying why it cannot run. */
async function initForced(name: BackendName): Promise<BackendChoice> {
  const requested = `${name} was requested with --backend`
  const fail = (why: string): never => {
    throw new UserError(`Backend ${name} cannot run: ${why}`)
  }
  if (name === 'tensorflow') {
    const why = (await tryTensorflow()) ?? (await activate(name))
    if (why) fail(why)
    const gpu = tensorflowOnGpu()
    return {
      name,
      tfjs: name,
      gpu,
      skipped: [],
      reason: gpu ? `${requested}; TensorFlow runs on the GPU (CUDA)` : `${requested}; ${explainNoGpuDevice(missingCudaLibraries())}`
    }
  }
  if (name === 'webgpu') {
    const probe = await prepareWebgpu(true)
    const why = probe.why ?? (await activate(name))
    if (why) fail(why)
    const emulated = emulatedAdapter(probe.adapter!)
    return {
      name,
      tfjs: name,
      gpu: emulated === null,
      skipped: [],
      reason: `${requested}; WebGPU on ${describeAdapter(probe.adapter!)}, ${emulated ?? 'a GPU'}`
    }
  }
  if (name === 'ort') {
    const ort = await activateOrt()
    if ('why' in ort) return fail(ort.why)
    return { name, tfjs: ort.tfjs, gpu: false, skipped: [], reason: `${requested} (${ort.what})` }
  }
  const why = (name === 'wasm' ? await tryWasm() : null) ?? (await activate(name))
  if (why) fail(why)
  return { name, tfjs: name, gpu: false, skipped: [], reason: requested }
}

/** What the calling code asks of a backend. */
export interface BackendNeeds {
  /**
   * Whether the caller reads every tensor with `await data()` / `array()`. tfjs's WebGPU backend has no
   * synchronous read in Node (its readSync draws through an OffscreenCanvas), so only such callers
   * (harvest, SAE training) may run on it; the others choose among the remaining backends.
   */
  asyncReads?: boolean
}

const SYNC_READS = "this work reads tensors synchronously, which tfjs's WebGPU backend cannot do in Node"
/** How the current choice was made: forced, or automatic for work with or without synchronous reads. */
let chosenHow: 'forced' | 'auto-async' | 'auto-sync' = 'auto-sync'

/**
 * Picks the fastest engine that works: tfjs-node-gpu's `tensorflow` when it has a CUDA device; else WebGPU on
 * a real GPU adapter (only for callers with `asyncReads`); else TensorFlow on the CPU (where tfjs-node-gpu
 * loaded without a GPU); else onnxruntime-node (`ort`, all cores, with tfjs-wasm for the element-wise ops);
 * else wasm, else cpu. `forced` (from --backend) skips the search and fails loudly if
 * that backend cannot run; a forced webgpu accepts an emulated adapter (SwiftShader), which the search never picks.
 * Returns the choice with one sentence saying why; throws when no backend can start.
 */
export async function initBackend(forced?: BackendName, needs: BackendNeeds = {}): Promise<BackendChoice> {
  const asyncReads = needs.asyncReads === true
  if (forced === 'webgpu' && !asyncReads) throw new UserError(`Backend webgpu cannot run: ${SYNC_READS}; use --backend wasm, cpu or tensorflow.`)
  if (chosen && (chosen.name !== 'webgpu' || asyncReads)) {
    // A forced choice stands for later unforced calls; an automatic one made for work with synchronous reads
    // passed WebGPU over, so work with asynchronous reads chooses again.
    if (forced ? forced === chosen.name : chosenHow === 'forced' || !asyncReads || chosenHow === 'auto-async') return chosen
  }
  if (forced) {
    chosen = await initForced(forced)
    chosenHow = 'forced'
    return chosen
  }
  chosenHow = asyncReads ? 'auto-async' : 'auto-sync'
  const skipped: BackendChoice['skipped'] = []
  // What runs first (the status bar and the logs cut long lines), then why each engine before it did not.
  const because = (last: string): string => [last, ...skipped.map((s) => `not ${s.name}: ${s.why}`)].join('; ')

  // 1. tfjs-node-gpu, when TensorFlow found a CUDA device.
  let tensorflowCpu: string | null = null
  const tfWhy = (await tryTensorflow()) ?? (await activate('tensorflow'))
  if (tfWhy === null && tensorflowOnGpu()) {
    chosen = { name: 'tensorflow', tfjs: 'tensorflow', gpu: true, skipped, reason: 'tfjs-node-gpu loaded and TensorFlow runs on the GPU (CUDA)' }
    return chosen
  }
  if (tfWhy === null) {
    tensorflowCpu = explainNoGpuDevice(missingCudaLibraries())
    skipped.push({ name: 'tensorflow', why: tensorflowCpu })
  } else skipped.push({ name: 'tensorflow', why: tfWhy })

  // 2. WebGPU on a real GPU (never an emulated adapter).
  const probe = asyncReads ? await prepareWebgpu(false) : null
  const webgpuWhy = probe === null ? SYNC_READS : (probe.why ?? (await activate('webgpu')))
  if (webgpuWhy === null && probe?.adapter) {
    chosen = { name: 'webgpu', tfjs: 'webgpu', gpu: true, skipped, reason: because(`using WebGPU on ${describeAdapter(probe.adapter)}`) }
    return chosen
  }
  skipped.push({ name: 'webgpu', why: webgpuWhy ?? 'Dawn named no adapter' })

  // 3. TensorFlow on the CPU where tfjs-node-gpu loaded without a GPU (multi-threaded, native).
  if (tensorflowCpu !== null && (await activate('tensorflow')) === null) {
    chosen = { name: 'tensorflow', tfjs: 'tensorflow', gpu: false, skipped: skipped.slice(1), reason: because('using TensorFlow on the CPU') }
    return chosen
  }

  // 4. onnxruntime-node on every core for the dense products.
  const ort = await activateOrt()
  if (!('why' in ort)) {
    chosen = { name: 'ort', tfjs: ort.tfjs, gpu: false, skipped, reason: because(ort.what) }
    return chosen
  }
  skipped.push({ name: 'ort', why: ort.why })

  // 5. wasm, then cpu.
  for (const name of ['wasm', 'cpu'] as const) {
    const why = (name === 'wasm' ? await tryWasm() : null) ?? (await activate(name))
    if (why === null) {
      chosen = { name, tfjs: name, gpu: false, skipped, reason: because(`using ${name}`) }
      return chosen
    }
    skipped.push({ name, why })
  }
  throw new Error(`No compute engine could start: ${skipped.map((s) => `${s.name}: ${s.why}`).join('; ')}`)
}

export function currentBackend(): BackendChoice | null {
  return chosen
}

/**
 * Whether a backend keeps tensors in an accelerator's memory, so the whole SAE step and Adam stay there
 * (reading a batch back to the host would cost more than the sparse loops save): tfjs-node-gpu and WebGPU.
 */
export function onDevice(name: BackendName): boolean {
  return name === 'tensorflow' || name === 'webgpu'
}

// Which compute engine runs, and why, chosen here and nowhere else. The same code runs on all of them:
// - `tensorflow` (tfjs-node-gpu): every op in TensorFlow, on CUDA where a GPU is visible;
// - `ort`: onnxruntime-node runs the dense products that need every core (core/ort/engine.ts: the SAE
//   encoder product and its top-k), tfjs-wasm (else tfjs-cpu) the element-wise rest;
// - `wasm`, `cpu`: every op in that tfjs backend (wasm is single-threaded in Node).
import * as tf from '@tensorflow/tfjs-core'
import '@tensorflow/tfjs-backend-cpu'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

import { BACKEND_NAMES } from '../../shared/schema'
import { ortThreads, tryOrt } from '../ort/engine'

/** In the order tried: tfjs-node-gpu's `tensorflow`, then onnxruntime, then wasm, then cpu (the contract names them). */
export const BACKENDS = BACKEND_NAMES
export type BackendName = (typeof BACKENDS)[number]

export interface BackendChoice {
  name: BackendName
  /** The tfjs backend running the element-wise ops (tf.getBackend()): the engine's own name except under `ort`. */
  tfjs: 'tensorflow' | 'wasm' | 'cpu'
  /** One sentence for the user: why this backend runs. */
  reason: string
  /** Backends tried before this one, with why each could not run. */
  skipped: { name: BackendName; why: string }[]
}

let chosen: BackendChoice | null = null

/** Optional dependency: present on a user's GPU machine, absent where libtensorflow cannot be downloaded. */
const importNodeGpu = (): Promise<unknown> => import(/* @vite-ignore */ '@tensorflow/tfjs-node-gpu' as string)

/** Why tfjs-node-gpu cannot be used, in one sentence; null when it loaded. */
export async function tryTensorflow(load: () => Promise<unknown> = importNodeGpu): Promise<string | null> {
  try {
    await load()
    return null
  } catch (err) {
    const message = (err as Error).message.split('\n')[0] ?? String(err)
    if (/Cannot find (module|package)/.test(message)) return '@tensorflow/tfjs-node-gpu is not installed'
    return `@tensorflow/tfjs-node-gpu is installed but failed to load: ${message}`
  }
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

/**
 * Picks the fastest engine that works: tfjs-node-gpu's `tensorflow` backend, then onnxruntime-node (`ort`,
 * with tfjs-wasm for the element-wise ops), then wasm, then cpu. `forced` (from --backend) skips the search
 * and fails loudly if that engine cannot run. The reason says what ran, on how many threads, and why the
 * engines before it could not.
 */
export async function initBackend(forced?: BackendName): Promise<BackendChoice> {
  if (chosen && (!forced || forced === chosen.name)) return chosen
  const skipped: BackendChoice['skipped'] = []
  const order: BackendName[] = forced ? [forced] : [...BACKENDS]
  for (const name of order) {
    const why = name === 'tensorflow' ? await tryTensorflow() : name === 'ort' ? await tryOrt() : name === 'wasm' ? await tryWasm() : null
    let tfjs: BackendChoice['tfjs'] | null = null
    if (why === null) {
      if (name === 'ort') tfjs = await tfjsBesideOrt()
      else if (await tf.setBackend(name)) tfjs = name
    }
    if (tfjs !== null) {
      await tf.ready()
      const what =
        name === 'tensorflow'
          ? 'tfjs-node-gpu loaded (TensorFlow with CUDA when a GPU is visible)'
          : name === 'ort'
            ? `onnxruntime-node runs the dense products on ${ortThreads()} threads, tfjs ${tfjs} the rest`
            : `using ${name}`
      const reason = forced ? `${name} was requested with --backend (${what})` : skipped.length ? `${skipped.map((s) => s.why).join('; ')}; ${what}` : what
      chosen = { name, tfjs, reason, skipped }
      return chosen
    }
    skipped.push({ name, why: why ?? `tf.setBackend('${name}') failed` })
    if (forced) throw new Error(`Backend ${name} cannot run: ${skipped.at(-1)!.why}`)
  }
  throw new Error(`No compute engine could start: ${skipped.map((s) => `${s.name}: ${s.why}`).join('; ')}`)
}

export function currentBackend(): BackendChoice | null {
  return chosen
}

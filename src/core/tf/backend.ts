// Which TensorFlow.js backend runs, and why. The same engine code runs on all of them.
import * as tf from '@tensorflow/tfjs-core'
import '@tensorflow/tfjs-backend-cpu'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

import { BACKEND_NAMES } from '../../shared/schema'

/** In the order tried: tfjs-node-gpu's `tensorflow`, then wasm, then cpu (the contract names them). */
export const BACKENDS = BACKEND_NAMES
export type BackendName = (typeof BACKENDS)[number]

export interface BackendChoice {
  name: BackendName
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

/**
 * Picks the fastest backend that works: tfjs-node-gpu's `tensorflow` backend, then wasm, then cpu.
 * `forced` (from --backend) skips the search and fails loudly if that backend cannot run.
 */
export async function initBackend(forced?: BackendName): Promise<BackendChoice> {
  if (chosen && (!forced || forced === chosen.name)) return chosen
  const skipped: BackendChoice['skipped'] = []
  const order: BackendName[] = forced ? [forced] : [...BACKENDS]
  for (const name of order) {
    const why = name === 'tensorflow' ? await tryTensorflow() : name === 'wasm' ? await tryWasm() : null
    if (why === null && (await tf.setBackend(name))) {
      await tf.ready()
      const reason = forced
        ? `${name} was requested with --backend`
        : name === 'tensorflow'
          ? 'tfjs-node-gpu loaded (TensorFlow with CUDA when a GPU is visible)'
          : skipped.length
            ? `${skipped.map((s) => s.why).join('; ')}; using ${name}`
            : `using ${name}`
      chosen = { name, reason, skipped }
      return chosen
    }
    skipped.push({ name, why: why ?? `tf.setBackend('${name}') failed` })
    if (forced) throw new Error(`Backend ${name} cannot run: ${skipped.at(-1)!.why}`)
  }
  throw new Error(`No TensorFlow.js backend could start: ${skipped.map((s) => `${s.name}: ${s.why}`).join('; ')}`)
}

export function currentBackend(): BackendChoice | null {
  return chosen
}

// The WebGPU engine: TensorFlow.js's webgpu backend (@tensorflow/tfjs-backend-webgpu 4.22) over Dawn, the
// WebGPU implementation Chromium uses, as the `webgpu` npm package ships it for Node. Dawn drives the GPU
// through Vulkan (Linux, Windows), Metal (macOS) or D3D12 (Windows): no CUDA, so any current NVIDIA, AMD
// or Intel driver serves. It runs the same tfjs code as every other backend.
import * as tf from '@tensorflow/tfjs-core'
import { existsSync, readdirSync } from 'node:fs'
import { dlopenError } from './node-gpu'

/** What Dawn says about the adapter it found (GPUAdapterInfo), kept for the run's report. */
export interface AdapterSummary {
  vendor: string
  architecture: string
  device: string
  description: string
  isFallbackAdapter: boolean
}

/**
 * Why there can be no GPU adapter, on Linux without a GPU device node (/dev/dri/renderD* for Mesa, AMD and Intel;
 * /dev/nvidia* for NVIDIA's driver), so the automatic choice does not start Dawn; null elsewhere (macOS, Windows)
 * or when a node exists.
 */
export function missingGpuDevice(
  platform: string = process.platform,
  exists: (p: string) => boolean = existsSync,
  list: (p: string) => string[] = readdirSync
): string | null {
  if (platform !== 'linux') return null
  const names = (dir: string): string[] => {
    try {
      return exists(dir) ? list(dir) : []
    } catch {
      return []
    }
  }
  if (names('/dev/dri').some((n) => n.startsWith('renderD')) || names('/dev').some((n) => /^nvidia\d/.test(n))) return null
  return 'no GPU device here (no /dev/dri/renderD* or /dev/nvidia*), so WebGPU was not tried'
}

/** Names of drivers that emulate a GPU on the CPU (Chromium's SwiftShader, Mesa's llvmpipe/lavapipe, Microsoft WARP). */
const EMULATED = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|\bwarp\b/i

/**
 * What makes an adapter a CPU emulation rather than a GPU ("a fallback adapter, emulated on the CPU"), or
 * null for a real GPU. WebGPU's own flag
 * (`isFallbackAdapter`) decides first; the driver's names catch emulations that do not set it.
 */
export function emulatedAdapter(info: AdapterSummary): string | null {
  if (info.isFallbackAdapter) return 'a fallback adapter, emulated on the CPU'
  const names = [info.vendor, info.architecture, info.device, info.description].join(' ')
  const match = EMULATED.exec(names)
  return match ? `a GPU emulated on the CPU (${match[0]})` : null
}

/** "SwiftShader driver 5.0.0 (google swiftshader)": how a run names its adapter. */
export function describeAdapter(info: AdapterSummary): string {
  const detail = [info.vendor, info.architecture].filter(Boolean).join(' ')
  const name = info.description || info.device || 'an unnamed adapter'
  return detail ? `${name} (${detail})` : name
}

export interface WebgpuProbe {
  /** Why the webgpu backend cannot or should not run here; null when it is registered and may run. */
  why: string | null
  adapter: AdapterSummary | null
}

let registered: AdapterSummary | null = null

function notChosen(info: AdapterSummary, emulated: string): string {
  return `the only WebGPU adapter, ${describeAdapter(info)}, is ${emulated}: slower than the CPU engines, so used only with --backend webgpu`
}

/** Where libvulkan is absent, say that first: Dawn needs the Vulkan loader to see any GPU on Linux. */
function noAdapterReason(): string {
  if (process.platform === 'linux' && dlopenError('libvulkan.so.1') !== null) {
    return 'no WebGPU adapter: the Vulkan loader (libvulkan.so.1) is not installed; install libvulkan1 and the GPU driver (its Vulkan driver comes with it)'
  }
  const where = process.platform === 'linux' ? 'Vulkan' : process.platform === 'darwin' ? 'Metal' : 'D3D12 or Vulkan'
  return `no WebGPU adapter: Dawn found no ${where} device (is the GPU driver installed, with its ${where} support?)`
}

/**
 * Sets Dawn up and registers tfjs's `webgpu` backend on the adapter it finds (high-performance preference).
 * An emulated adapter (SwiftShader and the like) is registered only with `allowEmulated` (an explicit
 * `--backend webgpu`): chosen on its own it would run slower than the CPU engines.
 * Returns why it cannot run (package missing, no adapter, emulated adapter) or null once registered.
 */
export async function prepareWebgpu(allowEmulated: boolean): Promise<WebgpuProbe> {
  // Asking Dawn costs a second and prints its drivers' complaints to stderr; on Linux a GPU has a device node.
  const noDevice = allowEmulated || registered ? null : missingGpuDevice()
  if (noDevice) return { why: noDevice, adapter: null }
  if (registered) {
    const emulated = emulatedAdapter(registered)
    if (emulated && !allowEmulated) return { why: notChosen(registered, emulated), adapter: registered }
    return { why: null, adapter: registered }
  }
  let gpu: GPU
  let WebGPUBackend: typeof import('@tensorflow/tfjs-backend-webgpu').WebGPUBackend
  try {
    const dawn = await import('webgpu')
    Object.assign(globalThis, dawn.globals)
    gpu = dawn.create([])
    ;({ WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu'))
  } catch (err) {
    return { why: `the webgpu package (Dawn) failed to load: ${(err as Error).message.split('\n')[0]}`, adapter: null }
  }
  let adapter: GPUAdapter | null
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' })
  } catch (err) {
    return { why: `Dawn could not list WebGPU adapters: ${(err as Error).message.split('\n')[0]}`, adapter: null }
  }
  if (!adapter) return { why: noAdapterReason(), adapter: null }
  const info: AdapterSummary = {
    vendor: adapter.info.vendor,
    architecture: adapter.info.architecture,
    device: adapter.info.device,
    description: adapter.info.description,
    isFallbackAdapter: Boolean((adapter.info as { isFallbackAdapter?: boolean }).isFallbackAdapter)
  }
  const emulated = emulatedAdapter(info)
  if (emulated && !allowEmulated) return { why: notChosen(info, emulated), adapter: info }

  // tfjs's backend reads navigator.gpu; Node 21+ has a navigator of its own, older Node none.
  const nav = (globalThis as { navigator?: object }).navigator
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true, writable: true })
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true })
  // The largest buffers the adapter allows: W_enc of a paper-size SAE is 256 MiB, past WebGPU's 128 MiB default.
  const limits = adapter.limits
  let device: GPUDevice
  try {
    device = await adapter.requestDevice({
      requiredLimits: {
        maxBufferSize: limits.maxBufferSize,
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
        maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup
      }
    })
  } catch (err) {
    return { why: `${describeAdapter(info)} refused a device: ${(err as Error).message.split('\n')[0]}`, adapter: info }
  }
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu')
  tf.registerBackend('webgpu', () => new WebGPUBackend(device, adapter.info))
  registered = info
  return { why: null, adapter: info }
}

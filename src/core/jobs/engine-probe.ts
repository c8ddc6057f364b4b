// Which compute engine jobs run on, asked of a job worker before any job runs: the worker chooses its
// engine as a harvest or training job would (tf/backend.ts: tfjs-node-gpu on CUDA, else WebGPU on a GPU
// adapter, else TensorFlow on the CPU, onnxruntime-node (`ort`), wasm, cpu) and reports it with its reason and
// whether it computes on a GPU.
// The host never loads an engine itself; the status bar shows the answer.
import type { EngineStatus } from '../../shared/start'
import type { WorkerSpawner } from './protocol'

/** A probe that has not answered in this time (a hung native load) is killed and reported. */
const PROBE_TIMEOUT_MS = 120_000

/** Whether an engine computes on a GPU, for a worker that did not say; null where the machine decides. */
export function engineUsesGpu(engine: string): boolean | null {
  // onnxruntime-node runs its CPU provider (the package's CUDA provider is not installed).
  if (engine === 'ort' || engine === 'wasm' || engine === 'cpu') return false
  if (engine === 'webgpu' || engine === 'webgl') return true
  // tfjs-node-gpu's TensorFlow runs on CUDA when a GPU is visible, else on the CPU.
  return null
}

export function probeEngine(spawn: WorkerSpawner, timeoutMs = PROBE_TIMEOUT_MS): Promise<EngineStatus> {
  return new Promise((resolve) => {
    let settled = false
    const finish = (status: EngineStatus, kill: () => void): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      kill()
      resolve(status)
    }
    let worker: ReturnType<WorkerSpawner>
    try {
      worker = spawn()
    } catch (err) {
      resolve({ state: 'failed', engine: null, gpu: null, reason: `The job worker could not start: ${(err as Error).message}` })
      return
    }
    const kill = (): void => worker.kill()
    const timer = setTimeout(
      () => finish({ state: 'failed', engine: null, gpu: null, reason: `The job worker chose no compute engine within ${timeoutMs / 1000} s.` }, kill),
      timeoutMs
    )
    timer.unref?.()
    worker.onMessage((m) => {
      if (m.type !== 'engine') return
      if (!m.engine) finish({ state: 'failed', engine: null, gpu: null, reason: m.reason }, kill)
      else finish({ state: 'ready', engine: m.engine, gpu: m.gpu ?? engineUsesGpu(m.engine), reason: m.reason }, kill)
    })
    worker.onExit((code) =>
      finish({ state: 'failed', engine: null, gpu: null, reason: `The job worker exited (code ${code}) before choosing a compute engine.` }, () => {})
    )
    worker.send({ type: 'probe' })
  })
}

import { fork } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { HostMessage, WorkerHandle, WorkerMessage, WorkerSpawner } from './protocol'

/**
 * The built worker bundle (electron-vite emits it next to the CLI and main bundles).
 * FEATURETRACE_WORKER overrides it, e.g. for tests that run from sources.
 */
export function workerEntry(): string {
  const fromEnv = process.env.FEATURETRACE_WORKER
  if (fromEnv) return fromEnv
  const here = dirname(fileURLToPath(import.meta.url))
  for (const candidate of [join(here, 'job-worker.js'), join(here, '../../../out/main/job-worker.js')]) {
    if (existsSync(candidate)) return candidate
  }
  throw new Error('The job worker bundle out/main/job-worker.js is missing; run `npm run build` first.')
}

/** Spawns workers as Node child processes (serve and CLI). */
export function nodeWorkerSpawner(entry = workerEntry()): WorkerSpawner {
  return (): WorkerHandle => {
    const child = fork(entry, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    return {
      send: (m: HostMessage) => void child.send(m),
      onMessage: (listener) => void child.on('message', (m) => listener(m as WorkerMessage)),
      onExit: (listener) => void child.on('exit', (code) => listener(code)),
      kill: () => void child.kill('SIGKILL')
    }
  }
}

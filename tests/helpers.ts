import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

export const REPO = resolve(import.meta.dirname, '..')
export const BUILT_WORKER = join(REPO, 'out/main/job-worker.js')
export const BUILT_RENDERER = join(REPO, 'out/renderer')
export const CLI = join(REPO, 'bin/featuretrace.js')

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(prefix = 'ft-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

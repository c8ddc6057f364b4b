// Inputs kept outside the project folder (here: checkpoint folders) that moved: the project lists them as
// missing, relocation refuses a place that lacks them (naming what is missing) and repoints them once the
// place holds them all — through the API, and from the CLI.
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { ProjectInfo } from '../../src/shared/api'
import { nodeWorkerSpawner } from '../../src/core/jobs/spawn'
import { callService, Workspace } from '../../src/core/services'
import { makeCheckpointSeries } from '../fixtures/checkpoint-series'
import { BUILT_WORKER, CLI, tempDir } from '../helpers'

const NAMES = ['step0', 'step10', 'step100']

function ft(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' })
}

/** A series registered from disk-a/series, then moved to disk-b/series; returns the three places. */
async function movedSeries(dir: string, register: (folder: string) => void | Promise<void>): Promise<{ a: string; b: string }> {
  const a = join(dir, 'disk-a', 'series')
  const b = join(dir, 'disk-b', 'series')
  await makeCheckpointSeries(a, { names: NAMES, modelType: 'llama' })
  await register(a)
  mkdirSync(join(dir, 'disk-b'))
  renameSync(a, b)
  return { a, b }
}

describe('checkpoint folders that moved', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('show as missing, a place without them is refused by name, and relocation repoints them', async () => {
    t = tempDir('ft-relocate-')
    const projectDir = join(t.dir, 'project')
    const ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    const { a, b } = await movedSeries(t.dir, async (folder) => {
      ws.open(projectDir)
      expect((await callService(ws, 'checkpoints.register', { folder })).added).toHaveLength(3)
      ws.close()
    })
    try {
      ws.open(projectDir)
      const info = (await callService(ws, 'project.info'))!
      expect(info.missing).toEqual(NAMES.map((n, i) => ({ kind: 'checkpoint', id: i + 1, path: join(a, n), what: `checkpoint step ${n.slice(4)}` })))

      // A copy of the series without step100: refused, naming the step and the file it needs; nothing changes.
      const partial = join(t.dir, 'partial')
      cpSync(b, partial, { recursive: true })
      rmSync(join(partial, 'step100'), { recursive: true })
      await expect(callService(ws, 'project.relocate', { from: a, to: partial })).rejects.toThrow(
        new RegExp(`Nothing was relocated: .*\\n  checkpoint step 100: ${join(partial, 'step100')} has no config\\.json\\.$`)
      )
      // A series of another model at the same steps: refused too.
      const other = join(t.dir, 'other')
      await makeCheckpointSeries(other, { names: NAMES, modelType: 'llama', dModel: 32 })
      await expect(callService(ws, 'project.relocate', { from: a, to: other })).rejects.toThrow(
        /checkpoint step 0: .* holds a llama model \(d_model 32, 2 layers\), not the registered llama \(d_model 64, 2 layers\)/
      )
      await expect(callService(ws, 'project.relocate', { from: join(t.dir, 'nowhere'), to: b })).rejects.toThrow(
        /Nothing this project uses outside its folder lies under .*nowhere\. Missing: checkpoint step 0/
      )
      expect((await callService(ws, 'project.info'))!.missing).toHaveLength(3)

      const changed: ProjectInfo[] = []
      ws.subscribe((event, payload) => void (event === 'project.changed' && changed.push(payload as ProjectInfo)))
      const r = await callService(ws, 'project.relocate', { from: a, to: b })
      expect(r.relocated.map((x) => [x.what, x.from, x.to])).toEqual(NAMES.map((n) => [`checkpoint step ${n.slice(4)}`, join(a, n), join(b, n)]))
      expect(r.project.missing).toEqual([])
      expect(changed.map((c) => c.missing.length)).toEqual([0])
      expect((await callService(ws, 'checkpoints.list')).map((c) => c.path)).toEqual(NAMES.map((n) => join(b, n)))
      // Jobs are handed the new places.
      const job = await callService(ws, 'jobs.start', { kind: 'verify-checkpoints' })
      const end = await ws.requireProject().jobs.waitFor(job.id)
      expect(end.state, end.error ?? '').toBe('done')
      expect(end.result).toEqual({ checked: 3, 'with problems': 0, 'same weights as another step': 0 })
    } finally {
      ws.close()
    }
  })

  it('names the first few of a long series that a place lacks, and counts the rest', async () => {
    t = tempDir('ft-relocate-long-')
    const series = join(t.dir, 'series')
    const names = Array.from({ length: 12 }, (_, i) => `step${i * 10}`)
    await makeCheckpointSeries(series, { names, modelType: 'llama' })
    const ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    try {
      ws.open(join(t.dir, 'project'))
      await callService(ws, 'checkpoints.register', { folder: series })
      mkdirSync(join(t.dir, 'empty'))
      const message = await callService(ws, 'project.relocate', { from: series, to: join(t.dir, 'empty') }).then(
        () => '',
        (err: Error) => err.message
      )
      const lines = message.split('\n')
      expect(lines).toHaveLength(9)
      expect(lines[1]).toBe(`  checkpoint step 0: ${join(t.dir, 'empty', 'step0')} has no config.json.`)
      expect(lines[8]).toBe('  … and 5 more.')
      expect((await callService(ws, 'checkpoints.list')).every((c) => c.path?.startsWith(series))).toBe(true)
    } finally {
      ws.close()
    }
  })

  it('the CLI names them when it opens the project, and `project relocate` repoints them', async () => {
    t = tempDir('ft-relocate-cli-')
    const p = join(t.dir, 'project')
    const { a, b } = await movedSeries(t.dir, (folder) => {
      const add = ft('checkpoints', 'add', folder, '--project', p)
      expect(add.status, add.stderr).toBe(0)
    })
    const list = ft('checkpoints', 'list', '--project', p, '--json')
    expect(list.status, list.stderr).toBe(0)
    expect(JSON.parse(list.stdout)).toHaveLength(3)
    expect(list.stderr).toContain(`3 inputs of ${p} are missing:\n  checkpoint step 0: ${join(a, 'step0')}\n`)
    expect(list.stderr).toContain(`featuretrace project relocate --project ${p} --from OLD --to NEW`)

    const refused = ft('project', 'relocate', '--project', p, '--from', a, '--to', join(t.dir, 'disk-b'))
    expect(refused.status).toBe(2)
    expect(refused.stderr).toContain(`checkpoint step 10: ${join(t.dir, 'disk-b', 'step10')} has no config.json.`)

    const ok = ft('project', 'relocate', '--project', p, '--from', a, '--to', b)
    expect(ok.status, ok.stderr).toBe(0)
    expect(ok.stdout).toContain(`checkpoint step 100: ${join(a, 'step100')} → ${join(b, 'step100')}`)
    expect(ok.stdout).toMatch(/nothing is missing\n$/)
    const after = ft('project', '--project', p)
    expect(after.stderr).toBe('')
    expect(JSON.parse(after.stdout)).toMatchObject({ checkpointCount: 3, missing: [] })
  })
})

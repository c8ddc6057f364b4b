import { spawnSync } from 'node:child_process'
import { existsSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { makeCheckpointSeries } from '../fixtures/checkpoint-series'
import { CLI, tempDir } from '../helpers'

function ft(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' })
}

describe('featuretrace CLI', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('creates the project where --project points when the folder is missing', () => {
    t = tempDir()
    const dir = join(t.dir, 'fresh')
    const r = ft('project', '--project', dir)
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'fresh', checkpointCount: 0 })
    expect(existsSync(join(dir, 'project.sqlite'))).toBe(true)
  })

  it('registers, lists and verifies a series', async () => {
    t = tempDir()
    await makeCheckpointSeries(join(t.dir, 'series'), { names: ['step0', 'checkpoint-50', 'c100'], modelType: 'llama' })
    mkdirSync(join(t.dir, 'series', 'notes'))
    const p = join(t.dir, 'p')
    const add = ft('checkpoints', 'add', join(t.dir, 'series'), '--project', p, '--tokens-per-step', '1000')
    expect(add.status, add.stderr).toBe(0)
    expect(add.stdout).toMatch(/3 added, 1 skipped/)
    expect(add.stdout).toMatch(/skipped .*notes: no training step in the folder name/)
    const list = JSON.parse(ft('checkpoints', 'list', '--project', p, '--json').stdout) as { step: number; tokensSeen: number; modelType: string }[]
    expect(list.map((c) => [c.step, c.tokensSeen, c.modelType])).toEqual([[0, 0, 'llama'], [50, 50_000, 'llama'], [100, 100_000, 'llama']])
    const verify = ft('verify', '--project', p)
    expect(verify.status, verify.stderr).toBe(0)
    expect(verify.stdout.match(/^ok /gm)).toHaveLength(3)
    const jobs = ft('jobs', '--project', p)
    expect(jobs.stdout).toMatch(/verify-checkpoints\tdone\t100%/)
  })

  it('exits 2 with a message naming the problem for bad input', () => {
    t = tempDir()
    const notProject = join(t.dir, 'mine')
    mkdirSync(notProject)
    writeFileSync(join(notProject, 'thesis.tex'), 'x')
    const r = ft('checkpoints', 'list', '--project', notProject)
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/mine is not empty and holds no project\.sqlite/)
    const unknown = ft('frobnicate')
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toMatch(/Unknown command "frobnicate"/)
    const badFlag = ft('checkpoints', 'list', '--project', join(t.dir, 'x'), '--bogus')
    expect(badFlag.status).toBe(2)
    expect(badFlag.stderr).toMatch(/bogus/)
    const missing = ft('checkpoints', 'add', join(t.dir, 'nowhere'), '--project', join(t.dir, 'y'))
    expect(missing.status).toBe(2)
    expect(missing.stderr).toMatch(/nowhere is not a folder/)
  })
})

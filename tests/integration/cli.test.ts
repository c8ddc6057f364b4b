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
    expect(list.map((c) => [c.step, c.tokensSeen, c.modelType])).toEqual([
      [0, 0, 'llama'],
      [50, 50_000, 'llama'],
      [100, 100_000, 'llama']
    ])
    const verify = ft('verify', '--project', p)
    expect(verify.status, verify.stderr).toBe(0)
    expect(verify.stdout.match(/^ok /gm)).toHaveLength(3)
    // --checkpoint takes steps, as every other command does.
    const one = ft('verify', '--project', p, '--checkpoint', '50')
    expect(one.status, one.stderr).toBe(0)
    expect(one.stdout.match(/^ok +step (\d+)/gm)).toEqual([expect.stringMatching(/step 50$/)])
    const none = ft('verify', '--project', p, '--checkpoint', '7')
    expect(none.status).toBe(2)
    expect(none.stderr).toMatch(/No checkpoint at step 7 in this project; its steps: 0, 50, 100\./)
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
    expect(badFlag.stderr).toMatch(/Unknown option --bogus\. Run `featuretrace <command> --help`/)
    const negative = ft('evaluate', '--layer', '-1')
    expect(negative.status).toBe(2)
    expect(negative.stderr).toMatch(/--layer needs a value, and a value starting with '-' must be written --layer=VALUE/)
    const help = ft('evaluate', '--help')
    expect(help.status).toBe(0)
    expect(help.stdout).toMatch(/^Usage: featuretrace evaluate \[options\]\n\n {2}evaluate --model DIR --sae DIR --corpus FILE --layer L --out FILE\.json/)
    expect(help.stdout).not.toMatch(/harvest --model/)
    const missing = ft('checkpoints', 'add', join(t.dir, 'nowhere'), '--project', join(t.dir, 'y'))
    expect(missing.status).toBe(2)
    expect(missing.stderr).toMatch(/nowhere is not a folder/)
  })

  it('classify-language prints the JSON contract', () => {
    t = tempDir()
    const file = join(t.dir, 'features.jsonl')
    const line = (checkpoint: string | number, feature: number, tokens: string[], label?: string): string =>
      JSON.stringify({
        checkpoint,
        feature,
        examples: Array.from({ length: 10 }, () => ({ tokens, acts: tokens.map((_, i) => (i === 1 ? 8 : 0)) })),
        ...(label ? { label } : {})
      })
    writeFileSync(
      file,
      [line('988240', 17, [' William', ' Burton'], 'Token-level'), line('988240', 3, ['東京', 'は']), line(10, 5, [' in', ' 2024'])].join('\n') + '\n'
    )
    const r = ft('classify-language', file)
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      features: [
        { checkpoint: '988240', feature: 17, counts: { en: 10, ja: 0 }, class: 'en' },
        { checkpoint: '988240', feature: 3, counts: { en: 0, ja: 10 }, class: 'ja' },
        { checkpoint: 10, feature: 5, counts: { en: 10, ja: 0 }, class: 'en' }
      ],
      totals: { '988240': { en: 1, ja: 1, mix: 0 }, '10': { en: 1, ja: 0, mix: 0 } }
    })
    writeFileSync(file, '{"feature": 1, "examples": [{"tokens": ["a"], "acts": [1, 2]}]}\n')
    const bad = ft('classify-language', file)
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/features\.jsonl, line 1: examples\.0: tokens and acts must have the same length/)
  })
})

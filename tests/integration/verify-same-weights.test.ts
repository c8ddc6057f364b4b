// `verify` finds steps serving another step's weights, re-saved or not, and leaves distinct steps alone.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { nodeWorkerSpawner } from '../../src/core/jobs/spawn'
import { createHandlers, dispatch, Workspace } from '../../src/core/services'
import { makeCheckpointSeries } from '../fixtures/checkpoint-series'
import { BUILT_WORKER, CLI, tempDir } from '../helpers'

describe('verify: checkpoints with the same weights', () => {
  let t: ReturnType<typeof tempDir>
  let ws: Workspace | undefined
  afterEach(() => {
    ws?.close()
    ws = undefined
    t.cleanup()
  })

  it('finds planted copies of the final step, re-saved in another tensor order or in shards, and a shared embedding', async () => {
    t = tempDir()
    await makeCheckpointSeries(join(t.dir, 'series'), {
      names: ['step0', 'step1', 'step8', 'step128', 'step1000'],
      weights: 'blocks',
      plant: [
        { name: 'step128', copyOf: 'step1000', resave: 'reordered' },
        { name: 'step8', copyOf: 'step1000', resave: 'sharded' },
        { name: 'step1', copyOf: 'step0', only: 'embedding' }
      ]
    })
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    const p = ws.open(join(t.dir, 'p'))
    await dispatch(createHandlers(ws), 'checkpoints.register', { folder: join(t.dir, 'series') })
    const job = ws.requireProject().jobs.start({ kind: 'verify-checkpoints', checkpointIds: [] })
    const end = await ws.requireProject().jobs.waitFor(job.id)
    expect(end.result).toEqual({ checked: 5, 'with problems': 0, 'same weights as another step': 3 })
    const byStep = new Map(p.checkpoints.list().map((c) => [c.step, p.checkpoints.detail(c.id)]))
    const same = (step: number): [number, string, number, number][] => byStep.get(step)!.sameWeights.map((s) => [s.step, s.kind, s.equal, s.total])

    // 2 blocks × (matrix + norm) + embedding = 5 tensors; the re-saved files differ byte for byte, their tensors do not.
    expect(byStep.get(128)!.verifyReport!.files[0]!.sha256).not.toBe(byStep.get(1000)!.verifyReport!.files[0]!.sha256)
    expect(byStep.get(8)!.verifyReport!.files.map((f) => f.file)).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'])
    expect(same(128)).toEqual([
      [8, 'all', 5, 5],
      [1000, 'all', 5, 5]
    ])
    expect(same(1000)).toEqual([
      [8, 'all', 5, 5],
      [128, 'all', 5, 5]
    ])
    // Only the embedding is shared: partial, named; the norms every step shares at 1.0 are not a finding by themselves.
    expect(same(1)).toEqual([[0, 'partial', 3, 5]])
    expect(byStep.get(1)!.sameWeights[0]!.tensors).toEqual(['gpt_neox.embed_in.weight'])
    expect(same(0)).toEqual([[1, 'partial', 3, 5]])

    // The terminal says it in words and fails, so a script notices.
    ws.close()
    ws = undefined
    const r = spawnSync(process.execPath, [CLI, 'verify', '--project', join(t.dir, 'p')], { encoding: 'utf8' })
    expect(r.status, r.stderr).toBe(1)
    expect(r.stdout).toMatch(/^SAME +step 128 has the same weights as step 1000 \(all 5 tensors\)$/m)
    expect(r.stdout).toMatch(/^SAME +step 8 has the same weights as step 128 \(all 5 tensors\)$/m)
    expect(r.stdout).toMatch(/^note +step 1 shares 3 of 5 tensors with step 0, among them gpt_neox\.embed_in\.weight$/m)
    expect(r.stdout.match(/^ok /gm)).toHaveLength(5)
  })

  it('flags nothing in a series of distinct steps', async () => {
    t = tempDir()
    await makeCheckpointSeries(join(t.dir, 'series'), { names: ['step0', 'step1', 'step2'], weights: 'blocks' })
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    const p = ws.open(join(t.dir, 'p'))
    await dispatch(createHandlers(ws), 'checkpoints.register', { folder: join(t.dir, 'series') })
    const job = ws.requireProject().jobs.start({ kind: 'verify-checkpoints', checkpointIds: [] })
    expect((await ws.requireProject().jobs.waitFor(job.id)).result).toEqual({ checked: 3, 'with problems': 0, 'same weights as another step': 0 })
    for (const c of p.checkpoints.list()) {
      const d = p.checkpoints.detail(c.id)
      expect(d.sameWeights).toEqual([])
      expect(d.verifyReport!.tensors).toHaveLength(5)
    }
  })
})

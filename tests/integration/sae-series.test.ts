// The warm-started series as a project job in a real worker, with live metrics, and resume.
import { cpSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Job, SaeMetric } from '../../src/shared/api'
import { nodeWorkerSpawner } from '../../src/core/jobs/spawn'
import { Sae } from '../../src/core/sae/sae'
import { createHandlers, dispatch, Workspace } from '../../src/core/services'
import { tinyModels } from '../fixtures/tiny-models'
import { BUILT_WORKER, tempDir } from '../helpers'

let root: string
beforeAll(() => {
  root = tinyModels()
})

describe('train-series job', () => {
  let t: ReturnType<typeof tempDir>
  let ws: Workspace
  afterEach(() => {
    ws.close()
    t.cleanup()
  })

  it('trains the first SAE from scratch and warm-starts the rest, storing metrics; resumes after a cancel', async () => {
    t = tempDir()
    for (const s of [0, 10, 100]) cpSync(join(root, 'models', 'gpt_neox'), join(t.dir, 'series', `step${s}`), { recursive: true })
    const text = 'The cat sat on the mat. The dog sat on the log. Language models learn features during training. '.repeat(8)
    writeFileSync(join(t.dir, 'c.jsonl'), Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: `${i} ${text}` })).join('\n') + '\n')
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    const project = ws.open(join(t.dir, 'p'))
    const h = createHandlers(ws)
    await dispatch(h, 'checkpoints.register', { folder: join(t.dir, 'series') })
    const noActs = await dispatch(h, 'jobs.start', { kind: 'train-series', layer: 2 })
    expect(noActs).toMatchObject({ ok: false, error: { message: expect.stringMatching(/No checkpoint has layer-2 activations/) } })
    const harvest = (await dispatch(h, 'jobs.start', { kind: 'harvest', corpus: join(t.dir, 'c.jsonl'), layer: 2, context: 32 })) as { result: Job }
    expect((await ws.requireProject().jobs.waitFor(harvest.result.id)).state).toBe('done')

    const metrics: SaeMetric[] = []
    ws.subscribe((e, p) => e === 'sae.metric' && metrics.push(p as SaeMetric))
    const request = { kind: 'train-series', layer: 2, preset: 'sae-track', n: 128, k: 8, tokens: 40960, batchSize: 128, backend: 'wasm' }
    // Cancel while the first SAE is training, then run the same request again: it resumes from the saved state.
    const first = (await dispatch(h, 'jobs.start', request)) as { ok: true; result: Job }
    const unsub = ws.subscribe((e, p) => {
      const j = p as Job
      if (e === 'job.updated' && j.id === first.result.id && /\(1\/3\): step \d+\/320/.test(j.message ?? '')) ws.requireProject().jobs.cancel(j.id)
    })
    const cancelled = await ws.requireProject().jobs.waitFor(first.result.id)
    unsub()
    expect(cancelled.state).toBe('cancelled')
    const again = (await dispatch(h, 'jobs.start', request)) as { ok: true; result: Job }
    const done = await ws.requireProject().jobs.waitFor(again.result.id)
    expect(done.state, done.error ?? '').toBe('done')

    const saes = project.saes.list()
    expect(saes.map((s) => [s.step, s.warmStarted, s.n, s.k])).toEqual([
      [0, false, 128, 8],
      [10, true, 128, 8],
      [100, true, 128, 8]
    ])
    expect(saes[1]!.tokens).toBeLessThan(saes[0]!.tokens)
    expect(saes.every((s) => s.fvu !== null && s.fvu < 1)).toBe(true)
    const second = await Sae.load(saes[1]!.path)
    expect(second.featuretrace.warm_started_from).toBe(saes[0]!.path)
    // SAELens' names: the model from the series folder (never the checkpoint's path), the layer-2 residual hook.
    expect(second.cfg).toMatchObject({
      model_name: 'series',
      hook_name: 'blocks.1.hook_resid_post',
      hook_layer: 1,
      context_size: 32,
      metadata: { model_name: 'series', hook_name: 'blocks.1.hook_resid_post' }
    })
    expect(second.featuretrace.config!.lr).toBeCloseTo(1e-4, 10)
    expect(second.featuretrace.config!.warmupSteps).toBe(3)
    expect(metrics.length).toBeGreaterThan(3)
    // Resumed, not restarted: the first SAE's logged steps never repeat.
    const firstSteps = metrics.filter((m) => m.checkpointId === saes[0]!.checkpointId).map((m) => m.step)
    expect(new Set(firstSteps).size).toBe(firstSteps.length)
    expect(firstSteps.at(-1)).toBe(320)
    expect(project.saes.metrics(saes[0]!.checkpointId, 2).length).toBeGreaterThan(0)
    const viaApi = await dispatch(h, 'saes.metrics', { checkpointId: saes[2]!.checkpointId, layer: 2 })
    expect((viaApi as { result: SaeMetric[] }).result.at(-1)).toMatchObject({ layer: 2, loss: expect.any(Number) })
  }, 180_000)
})

// Heavy work runs outside the host: an SAE import (a job in the worker) and a dynamics query (in the analysis
// process) are cancelled from the UI mid-way, leave nothing behind, and the server answers other calls at
// once while they run.
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { discoverCheckpoints } from '../../src/core/checkpoints/discover'
import { writeSafetensors } from '../../src/core/io/safetensors'
import { Project } from '../../src/core/project'
import { Rng } from '../../src/core/random'
import { makeCheckpointSeries } from '../fixtures/checkpoint-series'
import { openPage, SCREENSHOTS, useWorkstation, type Workstation } from './browser'

/** Large enough that converting them takes seconds, and wider than exact matching goes (greedy drift, in blocks). */
const D = 256
const N = 20_000
const STEPS = [0, 10, 100, 1000, 3000, 10000]

/** A folder of SAELens-layout SAEs, one per step folder, read as the residual stream after block 2. */
async function writeSeries(dir: string, steps: number[]): Promise<void> {
  const rng = new Rng(3)
  for (const step of steps) {
    const sae = join(dir, `step${step}`)
    mkdirSync(sae, { recursive: true })
    writeFileSync(join(sae, 'cfg.json'), JSON.stringify({ architecture: 'topk', d_in: D, d_sae: N, k: 8, featuretrace: { input_scaling: 'none', layer: 2 } }))
    const W = Float32Array.from({ length: N * D }, () => rng.gaussian())
    await writeSafetensors(join(sae, 'sae_weights.safetensors'), {
      W_enc: { dtype: 'F32', shape: [D, N], data: W },
      W_dec: { dtype: 'F32', shape: [N, D], data: W },
      b_enc: { dtype: 'F32', shape: [N], data: new Float32Array(N) },
      b_dec: { dtype: 'F32', shape: [D], data: new Float32Array(D) }
    })
  }
}

/** The slowest of a few app.info calls made while something runs: what a user waits for a click. */
async function slowestReply(w: Workstation, calls = 5): Promise<number> {
  let slowest = 0
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now()
    await w.call('app.info')
    slowest = Math.max(slowest, performance.now() - t0)
  }
  return slowest
}

describe('cancelling heavy work from the UI', () => {
  const w = useWorkstation({
    prefix: 'ft-e2e-cancel-',
    timeout: 240_000,
    async prepare(dir) {
      // The checkpoints the SAEs belong to (the import dialog lives in the checkpoint view of a series).
      await makeCheckpointSeries(join(dir, 'series'), { names: STEPS.map((s) => `step${s}`), dModel: D, layers: 4 })
      const project = Project.open(join(dir, 'project'))
      project.checkpoints.addAll(discoverCheckpoints(join(dir, 'series')).found, undefined)
      project.close()
      await writeSeries(join(dir, 'big-run'), STEPS)
      // Three of them again, for the dynamics: imported whole.
      for (const step of STEPS.slice(0, 3)) cpSync(join(dir, 'big-run', `step${step}`), join(dir, 'three', `step${step}`), { recursive: true })
    }
  })

  it('cancels an SAE import mid-way: nothing imported, no folder left, the host answering meanwhile', async () => {
    const { page, errors } = await openPage(w.browser, 900)
    await page.goto(w.served.url)
    await page.getByTestId('import-sae-open').click()
    await page.getByTestId('import-sae-path').fill(join(w.dir, 'big-run'))
    await page.getByTestId('import-sae-look').click()
    await expect.poll(() => page.locator('[data-testid=import-sae-found] tbody tr').count()).toBe(STEPS.length)
    await page.getByTestId('import-sae-import').click()
    // Progress from the worker, with the SAE it is converting; the host answers while it works.
    await expect.poll(() => page.getByTestId('import-sae-progress').count(), { timeout: 20_000 }).toBe(1)
    await expect.poll(() => page.getByTestId('import-sae-dialog').textContent(), { timeout: 20_000 }).toMatch(/converting step \d+ layer 2 \([2-4]\/6\)/)
    const slowest = await slowestReply(w)
    if (process.env.FEATURETRACE_E2E_LOG) console.log(`slowest app.info during the import: ${slowest.toFixed(1)} ms`)
    expect(slowest).toBeLessThan(500)
    await page.getByTestId('import-sae-cancel').click()
    await expect.poll(() => page.getByTestId('import-sae-error').textContent(), { timeout: 20_000 }).toBe('Import cancelled: nothing was imported.')
    expect(await w.call('saes.list', {})).toEqual([])
    expect((await w.call<unknown[]>('checkpoints.list', {})).length).toBe(STEPS.length)
    const jobs = await w.call<{ kind: string; state: string }[]>('jobs.list', {})
    expect(jobs.map((j) => [j.kind, j.state])).toEqual([['sae-import', 'cancelled']])
    // No converted or half-converted folder stays behind.
    const imported = join(w.dir, 'project', 'artifacts', 'saes', 'imported')
    expect(existsSync(imported) ? readdirSync(imported, { recursive: true }) : []).toEqual([])
    expect(errors).toEqual([])
    await page.close()
  })

  it('cancels a dynamics query mid-way, the host answering meanwhile', async () => {
    const imported = await w.call<{ step: number }[]>('saes.import', { path: join(w.dir, 'three') })
    expect(imported.map((s) => s.step)).toEqual(STEPS.slice(0, 3))
    const { page, errors } = await openPage(w.browser, 900)
    // The view asks for the overview at once: drift of 20,000 latents matched greedily, block by block.
    await page.goto(`${w.served.url}#/dynamics?layer=2`)
    await expect.poll(() => page.getByTestId('dynamics-cancel').count(), { timeout: 20_000 }).toBe(1)
    await new Promise((r) => setTimeout(r, 1000))
    const slowest = await slowestReply(w)
    if (process.env.FEATURETRACE_E2E_LOG) console.log(`slowest app.info during the dynamics query: ${slowest.toFixed(1)} ms`)
    expect(slowest).toBeLessThan(500)
    await page.getByTestId('dynamics-cancel').click()
    await expect.poll(() => page.getByTestId('dynamics-error').textContent(), { timeout: 20_000 }).toBe('Cancelled: nothing was computed.')
    expect(await page.getByTestId('dynamics-cancel').count()).toBe(0)
    await page.screenshot({ path: join(SCREENSHOTS, 'dynamics-cancelled.png') })
    // The analysis process is still there for the next question.
    expect(await w.call<{ project: unknown }>('app.info')).toMatchObject({ project: expect.anything() })
    expect(errors).toEqual([])
    await page.close()
  })
})

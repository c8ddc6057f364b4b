// The SAE import dialog: it shows what it found (architecture, d_in, d_sae, k or threshold, steps, the hook
// each reads) and what it could not read and why, imports nothing while anything is wrong, then imports a
// clean series; a step without a checkpoint folder becomes an SAE-only checkpoint the checkpoint view shows.
import { cpSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { makeCheckpointSeries } from '../fixtures/checkpoint-series'
import { saeFixtures, type SaeFixtures } from '../fixtures/sae-fixtures'
import { openPage, SCREENSHOTS, useWorkstation } from './browser'

describe('importing SAEs from the checkpoint view', () => {
  let fx: SaeFixtures
  const w = useWorkstation({ prepare })

  async function prepare(dir: string): Promise<void> {
    fx = saeFixtures()
    await makeCheckpointSeries(join(dir, 'series'), { names: ['step0', 'step100', 'step1000'], dModel: fx.d_in, layers: 4 })
    // A cluster run's output: sparsify SAEs per step, one of them saved wrongly, plus a Gemma Scope file.
    const mixed = join(dir, 'cluster-run')
    for (const s of [0, 100]) cpSync(join(fx.dir, 'sparsify-series', `step${s}`), join(mixed, `step${s}`), { recursive: true })
    cpSync(join(fx.dir, 'bad', 'sparsify-transposed'), join(mixed, 'step1000'), { recursive: true })
    mkdirSync(join(mixed, 'step5000'))
    cpSync(join(fx.dir, 'gemma-scope', 'gemma-scope-2b-pt-res'), join(mixed, 'step5000', 'gemma-scope-2b-pt-res'), { recursive: true })
  }

  it('shows what it found and what it could not read, then imports a clean series', async () => {
    const { page, errors } = await openPage(w.browser, 900)
    await page.goto(w.served.url)
    await page.getByTestId('register-folder').fill(join(w.dir, 'series'))
    await page.getByTestId('register-button').click()
    await expect.poll(() => page.locator('[data-testid=checkpoint-table] tbody tr').count()).toBe(3)
    await page.getByTestId('import-sae-open').click()
    await page.getByTestId('import-sae-path').fill(join(w.dir, 'cluster-run'))
    await page.getByTestId('import-sae-look').click()
    const found = page.locator('[data-testid=import-sae-found] tbody tr')
    await expect.poll(() => found.count()).toBe(3)
    expect(await found.nth(0).textContent()).toMatch(/sparsify\s*TopK\s*16\s*64\s*k = 8.*0\s*2\s*layers\.1\s*BF16/)
    expect(await found.nth(2).textContent()).toMatch(
      /Gemma Scope\s*JumpReLU\s*16\s*64\s*threshold 0\.\d+ – 0\.\d+ \(median 0\.\d+\).*5000\s*4\s*blocks\.3\.hook_resid_post\s*F32/
    )
    const problems = await page.getByTestId('import-sae-problems').textContent()
    expect(problems).toMatch(/step1000.*encoder\.weight is \[16, 64\].*stored transposed/)
    expect(problems).toMatch(/step5000.*no registered checkpoint at step 5000; register its folder first, or tick “SAE-only steps allowed” to record step 5000/)
    expect(await page.getByTestId('import-sae-import').isDisabled()).toBe(true)
    await page.getByTestId('import-sae-dialog').screenshot({ path: join(SCREENSHOTS, 'screenshot-import-sae.png') })
    await page.screenshot({ path: join(SCREENSHOTS, 'import-sae-problems.png') })

    await page.getByTestId('import-sae-path').fill(join(fx.dir, 'sparsify-series'))
    await page.getByTestId('import-sae-look').click()
    await expect.poll(() => page.locator('[data-testid=import-sae-problems]').count()).toBe(0)
    await expect.poll(() => found.count()).toBe(3)
    await page.getByTestId('import-sae-import').click()
    await expect.poll(() => page.getByTestId('import-sae-result').textContent()).toMatch(/Imported 3 SAEs at steps 0, 100, 1000 \(layer 2\)/)
    await page.screenshot({ path: join(SCREENSHOTS, 'import-sae-done.png') })

    // The Gemma Scope SAE of step 5000, whose weights are not on disk: allowed as an SAE-only step.
    await page.getByTestId('import-sae-path').fill(join(w.dir, 'cluster-run', 'step5000'))
    await page.getByTestId('import-sae-sae-only').check()
    await page.getByTestId('import-sae-look').click()
    await expect.poll(() => page.getByTestId('import-sae-new-checkpoint').count()).toBe(1)
    expect(await page.locator('[data-testid=import-sae-problems]').count()).toBe(0)
    expect(await page.getByTestId('import-sae-hook').textContent()).toBe('blocks.3.hook_resid_post')
    await page.getByTestId('import-sae-import').click()
    await expect.poll(() => page.getByTestId('import-sae-result').textContent()).toMatch(/Imported 1 SAE at step 5000 \(layer 4\)/)
    await page.keyboard.press('Escape')
    await expect.poll(() => page.locator('[data-testid=checkpoint-table] tbody tr').count()).toBe(4)
    expect(await page.getByTestId('sae-only-5000').textContent()).toBe('SAE only')
    await expect.poll(() => page.getByTestId('project-name').textContent()).toMatch(/4 checkpoints/)
    await page.getByTestId('checkpoint-row-5000').click()
    await expect.poll(() => page.getByTestId('details-sae-only').count()).toBe(1)
    expect(await page.getByTestId('details-sae-only').textContent()).toMatch(/No weights registered.*Drift, galaxy geometry and labelling work/)
    expect(await page.getByTestId('verify-button').isDisabled()).toBe(true)
    expect(await page.getByTestId('details-saes').textContent()).toMatch(/layer 4.*blocks\.3\.hook_resid_post/)
    await page.screenshot({ path: join(SCREENSHOTS, 'import-sae-sae-only.png') })
    const call = (name: string, payload: unknown): Promise<unknown> => w.call(name, payload)
    const saes = (await call('saes.list', {})) as { step: number; preset: string; warmStarted: boolean; hook: string }[]
    expect(saes.map((s) => [s.step, s.preset, s.warmStarted, s.hook])).toEqual([
      [0, 'import:sparsify', false, 'layers.1'],
      [100, 'import:sparsify', false, 'layers.1'],
      [1000, 'import:sparsify', false, 'layers.1'],
      [5000, 'import:gemma-scope', false, 'blocks.3.hook_resid_post']
    ])
    const checkpoints = (await call('checkpoints.list', {})) as { step: number; path: string | null }[]
    expect(checkpoints.map((c) => [c.step, c.path === null])).toEqual([
      [0, false],
      [100, false],
      [1000, false],
      [5000, true]
    ])
    expect(errors).toEqual([])
    await page.close()
  })
})

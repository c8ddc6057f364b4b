// The banner for inputs that moved: a project whose checkpoint folders were moved lists them, refuses a
// folder that lacks them (saying which), and relocates them to the folder given, in Chromium.
import { mkdirSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { discoverCheckpoints } from '../../src/core/checkpoints/discover'
import { Project } from '../../src/core/project'
import { makeCheckpointSeries } from '../fixtures/checkpoint-series'
import { openPage, SCREENSHOTS, useWorkstation } from './browser'

describe('missing inputs in Chromium (browser mode)', () => {
  let a: string
  let b: string
  const w = useWorkstation({
    prefix: 'ft-e2e-relocate-',
    async prepare(dir) {
      a = join(dir, 'disk-a', 'series')
      b = join(dir, 'disk-b', 'series')
      await makeCheckpointSeries(a, { names: ['step0', 'step10', 'step100'], modelType: 'llama' })
      const project = Project.open(join(dir, 'project'))
      project.checkpoints.addAll(discoverCheckpoints(a).found, undefined)
      project.close()
      mkdirSync(join(dir, 'disk-b'))
      renameSync(a, b)
    }
  })

  it('lists the moved checkpoint folders, refuses a folder without them and relocates them', async () => {
    const { page, errors } = await openPage(w.browser, 700)
    await page.goto(w.served.url)
    const banner = page.getByTestId('missing-inputs')
    await expect.poll(() => banner.textContent()).toContain('3 inputs of this project cannot be found')
    expect(await banner.textContent()).toContain(a)
    expect(await banner.textContent()).toContain('checkpoint step 100 (step100)')

    await page.getByTestId('relocate-to').fill(join(w.dir, 'disk-b'))
    await page.getByTestId('relocate-button').click()
    await expect
      .poll(() => page.getByTestId('relocate-error').textContent())
      .toContain(`checkpoint step 0: ${join(w.dir, 'disk-b', 'step0')} has no config.json.`)
    await page.screenshot({ path: join(SCREENSHOTS, 'missing-inputs.png') })

    await page.getByTestId('relocate-to').fill(b)
    await page.getByTestId('relocate-button').click()
    await expect.poll(() => banner.count()).toBe(0)
    await page.getByTestId('checkpoint-row-100').click()
    await expect.poll(() => page.getByTestId('checkpoint-details').textContent()).toContain(join(b, 'step100'))
    await page.screenshot({ path: join(SCREENSHOTS, 'missing-inputs-relocated.png') })
    // Reloaded, the project finds everything.
    await page.reload()
    await expect.poll(() => page.getByTestId('checkpoint-row-100').count()).toBe(1)
    expect(await banner.count()).toBe(0)
    expect(errors).toEqual([])
    await page.close()
  })
})

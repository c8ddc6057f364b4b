// What a researcher checks before trusting a series: duplicate checkpoints (verify), SAE quality beyond FVU
// (dead and dense latents, the density histogram), and the feature page's values inline, interval ranges and
// search by label and note text.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { makeCheckpointSeries } from '../fixtures/checkpoint-series'
import { CLI } from '../helpers'
import { openPage, SCREENSHOTS, useWorkstation } from './browser'

describe('duplicate checkpoints in the checkpoint details', () => {
  const w = useWorkstation({
    prefix: 'ft-e2e-dup-',
    prepare: async (dir) =>
      void (await makeCheckpointSeries(join(dir, 'series'), {
        names: ['step0', 'step10', 'step100', 'step1000'],
        weights: 'blocks',
        plant: [{ name: 'step100', copyOf: 'step1000', resave: 'reordered' }]
      }))
  })

  it('verify names the step serving another step’s weights', async () => {
    await w.call('checkpoints.register', { folder: join(w.dir, 'series') })
    const { page, errors } = await openPage(w.browser, 900)
    await page.goto(w.served.url)
    await w.call('jobs.start', { kind: 'verify-checkpoints', checkpointIds: [] })
    await expect.poll(() => page.getByTestId('jobs-panel').textContent(), { timeout: 30_000 }).toMatch(/2 with the same weights as another step/)
    await page.getByTestId('checkpoint-row-100').click()
    const same = page.getByTestId('same-weights')
    await expect.poll(() => same.textContent(), { timeout: 10_000 }).toContain('step 100 has the same weights as step 1000 (all 5 tensors)')
    expect(await same.locator('[data-kind=all]').count()).toBe(1)
    await page.screenshot({ path: join(SCREENSHOTS, 'verify-same-weights.png') })
    // A distinct step says it was compared and nothing matched.
    await page.getByTestId('checkpoint-row-10').click()
    await expect.poll(() => page.getByTestId('same-weights-none').textContent()).toMatch(/No other verified step has these weights .*5 tensors/)
    expect(errors).toEqual([])
    await page.close()
  })
})

describe('SAE quality and the feature page on the demo series', () => {
  let project: string
  const w = useWorkstation({
    prefix: 'ft-e2e-quality-',
    timeout: 180_000,
    prepare(dir) {
      project = join(dir, 'project')
      const r = spawnSync(process.execPath, [CLI, 'demo', '--small', '--project', project, '--report', join(dir, 'report')], {
        encoding: 'utf8',
        timeout: 170_000
      })
      expect(r.status, r.stderr).toBe(0)
      return project
    }
  })

  it('shows dead and dense latents per SAE and the density histogram, over which tokens', async () => {
    const saes = await w.call<{ layer: number; step: number }[]>('saes.list', {})
    const layer = saes[0]!.layer
    const quality = await w.call<{ step: number; setId: number; dead: number; dense: number; latents: number; rows: number | null }[]>('saes.quality', {
      layer
    })
    expect(quality.length).toBe(saes.filter((s) => s.layer === layer).length)
    const { page, errors } = await openPage(w.browser, 1300)
    await page.goto(w.served.url)
    const panel = page.getByTestId('sae-quality')
    await expect.poll(() => panel.locator('tbody tr').count(), { timeout: 20_000 }).toBe(quality.length)
    for (const q of quality) {
      // The dead count agrees with the feature list's own filter on the same set.
      const dead = await w.call<{ total: number }>('features.list', { setId: q.setId, dead: true, limit: 1 })
      expect(q.dead).toBe(dead.total)
      expect(await page.getByTestId(`sae-quality-row-${q.step}`).textContent()).toContain(
        `${q.dead.toLocaleString('en')} (${((100 * q.dead) / q.latents).toFixed(1)}%)`
      )
      expect(q.rows).toBeGreaterThan(0)
    }
    expect(await page.locator('[data-testid=sae-density-histogram] canvas').count()).toBe(1)
    const last = quality.at(-1)!
    await expect
      .poll(() => page.getByTestId('sae-density-description').textContent())
      .toMatch(new RegExp(`^Latent density at step ${last.step.toLocaleString('en')}, layer ${layer}: .* live latents of .*Over [\\d,]+ tokens`))
    // Another SAE's histogram from the keyboard.
    await page.getByTestId(`sae-quality-row-${quality[0]!.step}`).focus()
    await page.keyboard.press('Enter')
    await expect.poll(() => page.getByTestId('sae-density-description').textContent()).toContain(`step ${quality[0]!.step.toLocaleString('en')},`)
    await page.getByTestId('sae-quality').scrollIntoViewIfNeeded()
    await page.screenshot({ path: join(SCREENSHOTS, 'sae-quality.png'), fullPage: true })
    expect(errors).toEqual([])
    await page.close()
  })

  it('writes activation values inline on request (remembered), heads interval samples by range, finds features by note', async () => {
    const sets = await w.call<{ id: number; step: number | null }[]>('features.sets', {})
    const set = sets.sort((a, b) => (b.step ?? 0) - (a.step ?? 0))[0]!
    const live = (await w.call<{ rows: { feature: number }[] }>('features.list', { setId: set.id, dead: false, sort: 'density', descending: true, limit: 3 }))
      .rows
    const feature = live[0]!.feature
    await w.call('labels.set', { setId: set.id, feature: live[1]!.feature, annotator: 'ana', category: 'Token-level', note: 'fires on the surname Burton' })
    await w.call('labels.set', { setId: set.id, feature: live[2]!.feature, annotator: 'bo', category: 'Uninterpretable', note: '100% noise' })

    const { page, errors } = await openPage(w.browser, 1300)
    await page.goto(`${w.served.url}#/features?set=${set.id}&feature=${feature}`)
    const dashboard = page.getByTestId('feature-dashboard')
    await expect.poll(() => dashboard.textContent(), { timeout: 20_000 }).toContain(`${feature}`)
    expect(await page.getByTestId('token-value').count()).toBe(0)
    // Keyboard: focus the toggle and press Space.
    await page.getByTestId('inline-values').focus()
    await page.keyboard.press('Space')
    await expect.poll(() => page.getByTestId('token-value').count()).toBeGreaterThan(0)
    const value = Number(await page.getByTestId('token-value').first().textContent())
    expect(value).toBeGreaterThan(0)
    await page.getByTestId('sampler-interval').click()
    const headings = await page.getByTestId('interval-heading').allTextContents()
    expect(headings.length).toBeGreaterThan(0)
    for (const h of headings) {
      const m = /^interval ([1-5]): ([\d.e-]+)–([\d.e-]+)$/.exec(h)
      expect(m, h).not.toBeNull()
      expect(Number(m![2])).toBeLessThan(Number(m![3]))
    }
    await page.screenshot({ path: join(SCREENSHOTS, 'feature-inline-values.png'), fullPage: true })

    // Remembered across a reload.
    await page.reload()
    await expect.poll(() => page.getByTestId('token-value').count(), { timeout: 20_000 }).toBeGreaterThan(0)
    expect(await page.getByTestId('inline-values').isChecked()).toBe(true)

    const total = page.getByTestId('browser-total')
    await page.getByTestId('feature-search-text').fill('BURTON')
    await page.getByTestId('feature-search-text').press('Enter')
    await expect.poll(() => total.textContent()).toBe('1 feature')
    await expect.poll(() => page.getByTestId(`feature-row-${live[1]!.feature}`).count()).toBe(1)
    await page.getByTestId('feature-search-text').fill('100%')
    await page.getByTestId('feature-search-text').press('Enter')
    await expect.poll(() => total.textContent()).toBe('1 feature')
    await expect.poll(() => page.getByTestId(`feature-row-${live[2]!.feature}`).count()).toBe(1)
    await page.screenshot({ path: join(SCREENSHOTS, 'feature-search-text.png') })

    // The Label view shows the same contexts under the same choice; v switches it from the keyboard.
    await page.goto(`${w.served.url}#/label?set=${set.id}&n=5&seed=1&dead=0&at=0`)
    const labelValues = page.locator('[data-testid=label-examples] [data-testid=token-value]')
    await expect.poll(() => labelValues.count(), { timeout: 20_000 }).toBeGreaterThan(0)
    await page.locator('body').press('v')
    await expect.poll(() => labelValues.count()).toBe(0)
    await page.locator('body').press('v')
    await expect.poll(() => labelValues.count()).toBeGreaterThan(0)
    expect(errors).toEqual([])
    await page.close()
  })
})

// The demo, as a user meets it: `featuretrace demo` builds the project headless and writes its report;
// the report opens offline in Chromium; the workstation then explores the series' drift and formation.
// FEATURETRACE_E2E_DEMO_PROJECT / _REPORT point at a full demo made beforehand (for the docs screenshots);
// otherwise the reduced demo (--small) is built here.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { CLI } from '../helpers'
import { openPage, SCREENSHOTS, useWorkstation } from './browser'

describe('the demo series in the workstation', () => {
  let project: string
  let report: string
  const w = useWorkstation({
    prefix: 'ft-e2e-demo-',
    prepare(dir) {
      project = process.env.FEATURETRACE_E2E_DEMO_PROJECT ?? join(dir, 'project')
      report = process.env.FEATURETRACE_E2E_DEMO_REPORT ?? join(dir, 'report')
      if (!process.env.FEATURETRACE_E2E_DEMO_PROJECT) {
        const r = spawnSync(process.execPath, [CLI, 'demo', '--small', '--project', project, '--report', report], { encoding: 'utf8', timeout: 110_000 })
        expect(r.status, r.stderr).toBe(0)
        expect(r.stdout).toMatch(/demo project ready in [\d.]+ s/)
        expect(r.stdout).toMatch(/dynamics\s+[\d.]+ s/)
      }
      return project
    }
  })
  const call = (name: string, payload: unknown): Promise<unknown> => w.call(name, payload)

  it('opens the report offline: a table and four charts, no script', async () => {
    const { page, errors } = await openPage(w.browser, 1250)
    await page.goto(pathToFileURL(join(report, 'report.html')).href)
    expect(await page.locator('figure svg').count()).toBe(4)
    expect(await page.locator('tbody tr').count()).toBeGreaterThanOrEqual(3)
    expect(await page.locator('figcaption').allTextContents()).toEqual([
      'SAE quality per checkpoint',
      'Language of features per checkpoint (Inaba et al.’s rule)',
      'Drift: cosine of each feature’s decoder row to the final SAE’s',
      expect.stringMatching(/^Formation step of every feature/)
    ])
    await page.screenshot({ path: join(SCREENSHOTS, 'demo-report.png'), fullPage: true })
    expect(errors).toEqual([])
    await page.close()
  })

  it('sorts the final checkpoint’s features by formation step', async () => {
    const sets = (await call('features.sets', {})) as { id: number; step: number | null }[]
    const last = sets.sort((a, b) => (b.step ?? 0) - (a.step ?? 0))[0]!
    const { page, errors } = await openPage(w.browser, 900)
    await page.goto(`${w.served.url}#/features?set=${last.id}`)
    await expect.poll(() => page.getByTestId('browser-total').textContent()).toMatch(/\d+ features/)
    await page.locator('select').filter({ hasText: 'by formation step' }).selectOption('formation')
    await expect.poll(() => page.locator('.feature-row').first().textContent()).toMatch(/forms [\d,]+/)
    const shown = await page.locator('.feature-row').allTextContents()
    const formed = shown
      .map((s) => /forms ([\d,]+)/.exec(s)?.[1])
      .filter((x): x is string => !!x)
      .map((x) => Number(x.replace(/,/g, '')))
    expect(formed.length).toBeGreaterThan(3)
    expect(formed).toEqual([...formed].sort((a, b) => a - b))
    await page.screenshot({ path: join(SCREENSHOTS, 'demo-features-by-formation.png') })
    expect(errors).toEqual([])
    await page.close()
  })

  it('shows a feature’s logit effects through the demo model’s tied head and its co-activation neighbours', async () => {
    const sets = (await call('features.sets', {})) as { id: number; step: number | null }[]
    const last = sets.sort((a, b) => (b.step ?? 0) - (a.step ?? 0))[0]!
    const busiest = (
      (await call('features.list', { setId: last.id, dead: false, sort: 'density', descending: true, limit: 1 })) as { rows: { feature: number }[] }
    ).rows[0]!.feature
    const { page, errors } = await openPage(w.browser, 1500)
    await page.goto(`${w.served.url}#/features?set=${last.id}&feature=${busiest}`)
    await expect.poll(() => page.locator('[data-testid=feature-dashboard] h2').textContent()).toBe(`Feature ${busiest}`)
    await expect.poll(() => page.locator('[data-testid=logit-effects-positive] li').count()).toBe(10)
    expect(await page.locator('[data-testid=logit-effects-negative] li').count()).toBe(10)
    expect(await page.getByTestId('logit-effects').textContent()).toMatch(
      /W_dec\[i\] ⊙ γfinal · WU .*no centring.*model\.norm\.weight.*model\.embed_tokens\.weight, tied/
    )
    const positive = await page.locator('[data-testid=logit-effects-positive] li .muted').allTextContents()
    const values = positive.map(Number)
    expect(values).toEqual([...values].sort((a, b) => b - a))
    expect(await page.locator('[data-testid=logit-histogram] canvas').count()).toBe(1)
    expect(await page.getByTestId('feature-correlations').textContent()).toMatch(
      /Pearson r of the activations \(zeros included\) over the [\d,]+ held-out rows/
    )
    await expect.poll(() => page.locator('[data-testid^=correlation-]').count()).toBeGreaterThan(0)
    await page.screenshot({ path: join(SCREENSHOTS, 'demo-feature-logit-effects.png'), fullPage: true })
    const neighbour = page.locator('[data-testid^=correlation-]').first()
    const target = (await neighbour.getAttribute('data-testid'))!.replace('correlation-', '')
    await neighbour.click()
    await expect.poll(() => page.locator('[data-testid=feature-dashboard] h2').textContent()).toBe(`Feature ${target}`)
    expect(errors).toEqual([])
    await page.close()
  })

  it('explores one feature’s drift, compares formation curves and splits formation by label', async () => {
    // Label the final checkpoint's first 40 live features, as a researcher would with the keyboard.
    const sets = (await call('features.sets', {})) as { id: number; step: number | null; layer: number | null }[]
    const last = sets.sort((a, b) => (b.step ?? 0) - (a.step ?? 0))[0]!
    const rows = ((await call('features.list', { setId: last.id, dead: false, limit: 40 })) as { rows: { feature: number; langClass: string | null }[] }).rows
    const categories = ['Token-level', 'Concept-level (synonymy)', 'Concept-level (semantic similarity)', 'Uninterpretable']
    for (const [i, r] of rows.entries()) await call('labels.set', { setId: last.id, feature: r.feature, annotator: 'demo', category: categories[i % 4] })
    const { page, errors } = await openPage(w.browser, 1700)
    await page.goto(`${w.served.url}#/dynamics?layer=${last.layer}`)
    await expect.poll(() => page.locator('[data-testid=drift-histogram] canvas').count(), { timeout: 30_000 }).toBe(1)
    await expect.poll(() => page.getByTestId('dynamics-run').textContent()).toMatch(/stored: drift and formation of all [\d,]+ features/)
    await page.getByTestId('drift-slider').fill('0')
    const first = page.locator('[data-testid^=drift-feature-]').first()
    const feature = (await first.getAttribute('data-testid'))!.replace('drift-feature-', '')
    await first.click()
    await expect.poll(() => page.getByTestId('drift-explorer').textContent(), { timeout: 30_000 }).toContain(`Feature ${feature}`)
    await page.getByTestId('add-compare').click()
    const others = rows.slice(0, 4).map((r) => r.feature)
    await page.getByTestId('compare-input').fill([feature, ...others].join(', '))
    await page.getByTestId('compare-input').press('Enter')
    await expect
      .poll(() => page.locator('[data-testid=formation-compare] [data-curves]').getAttribute('data-curves'), { timeout: 30_000 })
      .toBe(String(new Set([Number(feature), ...others]).size))
    expect(await page.locator('[data-testid=formation-compare] canvas').count()).toBe(1)
    await expect.poll(() => page.locator('[data-testid=formation-by-label] canvas').count(), { timeout: 30_000 }).toBe(1)
    await expect
      .poll(() => page.locator('h3', { hasText: 'When did labelled features form?' }).textContent())
      .toMatch(/40 features, by granularity label, from the stored run/)
    await page.screenshot({ path: join(SCREENSHOTS, 'demo-dynamics.png'), fullPage: true })
    expect(errors).toEqual([])
    await page.close()
  })

  it('runs the galaxy over the whole series from the Geometry view', async () => {
    const saes = (await call('saes.list', {})) as { step: number }[]
    const { page, errors } = await openPage(w.browser, 1100)
    await page.goto(`${w.served.url}#/geometry?layer=2`)
    await page.getByTestId('run-galaxy').click()
    await expect.poll(() => page.getByTestId('jobs-panel').textContent(), { timeout: 60_000 }).toMatch(/geometry\s*done/)
    await expect.poll(() => page.locator('[data-testid=galaxy-step] option').count(), { timeout: 30_000 }).toBe(saes.length)
    expect(await page.locator('[data-testid=geometry-view] canvas').count()).toBeGreaterThan(0)
    await expect.poll(() => page.getByTestId('geometry-view').textContent()).toMatch(/α = \d\.\d{3} \[/)
    await page.screenshot({ path: join(SCREENSHOTS, 'demo-geometry-galaxy.png'), fullPage: true })
    expect(errors).toEqual([])
    await page.close()
  })
})

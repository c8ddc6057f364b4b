// A newcomer's walk through every view of the reduced demo, at laptop sizes (1280×720 and 1024×700): no console
// errors, no panel clipped sideways, nothing that should show empty, every chart drawn and described, a screenshot
// per view under test-results/e2e/walkthrough/. Then what the walk found wanting, done from the keyboard: the feature
// list as a listbox, labelling with keys, forms that start from the project, errors said in words, results that say
// whether they mean anything.
// FEATURETRACE_E2E_WALK_PROJECT points at a copy of a reduced demo made beforehand (`featuretrace demo --small`).
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, tempDir } from '../helpers'
import { launchBrowser, openPage, SCREENSHOTS, serve, type Served } from './browser'

const SHOTS = join(SCREENSHOTS, 'walkthrough')
const SIZES = [
  [1280, 720],
  [1024, 700]
] as const

/**
 * What the walk checks on every view, run in the page (as text: the test's TypeScript has no DOM types): nothing cut
 * off sideways, nothing that should have content shown with no room, no empty panel, and every chart drawn (ink on
 * its canvas, shapes in its SVG) and described for screen readers.
 */
const AUDIT = `(() => {
  const problems = []
  const shown = (el) => el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })
  const name = (el) => {
    const id = el.getAttribute('data-testid')
    const cls = typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\\s+/).join('.') : ''
    return el.tagName.toLowerCase() + (id ? '[data-testid=' + id + ']' : '') + cls
  }
  if (document.documentElement.scrollWidth > innerWidth + 1) problems.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' px in ' + innerWidth + ' px')
  for (const el of document.querySelectorAll('.panel, .content, .topbar, .tabs, .jobs, .jobs-head, .table-wrap, .virtual-list, .session-bar, .label-head, dialog[open]')) {
    if (shown(el) && el.scrollWidth > el.clientWidth + 1) problems.push(name(el) + ' is clipped sideways: ' + el.scrollWidth + ' px of content in ' + el.clientWidth + ' px')
  }
  for (const el of document.querySelectorAll('.panel')) {
    if (shown(el) && !el.textContent.trim() && !el.querySelector('canvas, svg')) problems.push(name(el) + ' is empty')
  }
  for (const a of document.querySelectorAll('a[href="#"], a:not([href])')) problems.push('“' + a.textContent.trim() + '” is a link to nowhere acting as a button')
  for (const el of document.querySelectorAll('h2, h3, p, li, button, label, th, td, a, summary, .tag')) {
    const text = el.textContent.trim()
    if (!text || !shown(el)) continue
    const r = el.getBoundingClientRect()
    if (r.height < 1 || r.width < 1) problems.push(name(el) + ' “' + text.slice(0, 40) + '” has no room (' + r.width.toFixed(0) + '×' + r.height.toFixed(0) + ')')
  }
  for (const chart of document.querySelectorAll('[_echarts_instance_]')) {
    if (!shown(chart)) continue
    const where = name(chart.parentElement || chart)
    const r = chart.getBoundingClientRect()
    if (r.width < 120 || r.height < 100) problems.push('chart in ' + where + ' is squeezed to ' + r.width.toFixed(0) + '×' + r.height.toFixed(0))
    if (!(chart.getAttribute('aria-label') || '').trim()) problems.push('chart in ' + where + ' has no aria description')
    const canvas = chart.querySelector('canvas')
    if (canvas) {
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data
      let ink = 0
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) ink++
      if (ink < 500) problems.push('chart in ' + where + ' is blank (' + ink + ' painted pixels)')
    } else {
      const svg = chart.querySelector('svg')
      if (!svg || svg.querySelectorAll('path, text').length < 10) problems.push('chart in ' + where + ' draws nothing')
    }
  }
  return problems
})()`

describe('the newcomer’s walk', () => {
  let t: ReturnType<typeof tempDir>
  let browser: Browser
  let served: Served
  let project: string
  let finalSet: { id: number; step: number; nFeatures: number }
  let earlySet: { id: number; step: number }
  let steps: number[]
  let topMover: number
  const call = async <T>(name: string, payload: unknown = {}): Promise<T> => {
    const reply = (await (
      await fetch(new URL(`/api/call/${name}`, served.url), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload) })
    ).json()) as { ok: boolean; result: T; error?: { message: string } }
    if (!reply.ok) throw new Error(reply.error?.message)
    return reply.result
  }
  const open = async (width: number, height: number): Promise<{ page: Page; errors: string[] }> => {
    const opened = await openPage(browser, height)
    await opened.page.setViewportSize({ width, height })
    return opened
  }

  beforeAll(async () => {
    t = tempDir('ft-e2e-walk-')
    mkdirSync(SHOTS, { recursive: true })
    project = join(t.dir, 'project')
    if (process.env.FEATURETRACE_E2E_WALK_PROJECT) {
      spawnSync('cp', ['-r', process.env.FEATURETRACE_E2E_WALK_PROJECT, project])
    } else {
      const r = spawnSync(process.execPath, [CLI, 'demo', '--small', '--project', project], { encoding: 'utf8', timeout: 110_000 })
      expect(r.status, r.stderr).toBe(0)
    }
    browser = await launchBrowser()
    served = await serve(['--project', project])
    const sets = (await call<{ id: number; step: number; nFeatures: number; superseded: boolean }[]>('features.sets'))
      .filter((s) => !s.superseded)
      .sort((a, b) => a.step - b.step)
    finalSet = sets.at(-1)!
    earlySet = sets[1]!
    steps = sets.map((s) => s.step)
    // Labels as a small team leaves them: two annotators on the final checkpoint, a third elsewhere.
    const live = (await call<{ rows: { feature: number }[] }>('features.list', { setId: finalSet.id, dead: false, limit: 60 })).rows.map((r) => r.feature)
    const categories = await call<string[]>('taxonomy.get')
    for (const [i, f] of live.slice(0, 40).entries())
      await call('labels.set', { setId: finalSet.id, feature: f, annotator: 'ana', category: categories[i % 4] })
    for (const [i, f] of live.slice(0, 24).entries())
      await call('labels.set', { setId: finalSet.id, feature: f, annotator: 'ben', category: categories[(i + (i % 3 === 0 ? 1 : 0)) % 4] })
    const early = (await call<{ rows: { feature: number }[] }>('features.list', { setId: earlySet.id, dead: false, limit: 20 })).rows.map((r) => r.feature)
    for (const [i, f] of early.slice(0, 10).entries())
      await call('labels.set', { setId: earlySet.id, feature: f, annotator: i % 2 ? 'ana' : 'cy', category: categories[i % 4] })
    const overview = await call<{ totalDrift: number[] }>('dynamics.overview', { layer: 2 })
    topMover = overview.totalDrift.indexOf(Math.max(...overview.totalDrift))
  }, 180_000)
  afterAll(async () => {
    await browser?.close()
    await served?.stop()
    t?.cleanup()
  })

  it('runs every geometry analysis from its form, which starts from the project, and says which results mean nothing', async () => {
    const { page, errors } = await open(1280, 720)
    await page.goto(`${served.url}#/geometry?layer=2`)
    const stores = await call<{ checkpointId: number; step: number; layer: number; context: number }[]>('activations.list')
    const latest = stores.filter((s) => s.layer === 2).sort((a, b) => b.step - a.step)[0]!
    // Lobes and crystals start on the latest checkpoint, blocks as long as its harvest's windows.
    await expect.poll(() => page.getByTestId('lobes-on').inputValue()).toBe(String(latest.checkpointId))
    expect(await page.getByTestId('crystals-on').inputValue()).toBe(String(latest.checkpointId))
    expect(await page.getByTestId('lobes-block').inputValue()).toBe(String(Math.min(256, latest.context)))
    // A k that cannot be is refused beside the field, in words.
    await page.getByTestId('lobes-ks').fill('2,x,1')
    await expect.poll(() => page.getByTestId('lobes-problems').textContent()).toMatch(/k “x” must be a whole number.*k “1” must be 2–4,096/s)
    expect(await page.getByTestId('run-lobes').isDisabled()).toBe(true)
    await page.getByTestId('lobes-ks').fill('2,3,4')

    await page.getByTestId('run-galaxy').click()
    await expect.poll(() => page.getByTestId('jobs-panel').textContent(), { timeout: 60_000 }).toMatch(/geometry\s*done/)
    await page.getByTestId('run-lobes').click()
    await expect.poll(() => page.locator('[data-testid=jobs-panel] .job.done').filter({ hasText: 'geometry' }).count(), { timeout: 60_000 }).toBe(2)
    await page.getByTestId('pairs-en-ja.tsv').check()
    await page.getByTestId('pairs-singular-plural.tsv').check()
    await page.getByTestId('run-crystals').click()
    await expect.poll(() => page.locator('[data-testid=jobs-panel] .job.done').filter({ hasText: 'geometry' }).count(), { timeout: 60_000 }).toBe(3)
    // Finished jobs say what they made in words, never as internal ids.
    const jobsText = (await page.getByTestId('jobs-panel').textContent())!
    expect(jobsText).toMatch(/crystals at 1 checkpoint of layer 2 stored/)
    expect(jobsText).not.toMatch(/results: [\d,]+/)

    // Each result says beside its chart whether it beats its control.
    await expect
      .poll(() => page.getByTestId('lobes-verdict').textContent(), { timeout: 30_000 })
      .toMatch(/random unit vectors|Above its controls|shuffled labels|too few to cluster on|same language tag/)
    const lobes = (await page.getByTestId('lobes-summary').textContent())!
    const [, blocks] = /over ([\d,]+) blocks/.exec(lobes)!
    const [, accuracy, control] = /balanced accuracy ([\d.]+) \(random vectors ([\d.]+)\)/.exec(lobes)!
    const verdict = (await page.getByTestId('lobes-verdict').textContent())!
    expect(verdict.includes('Not meaningful here')).toBe(Number(accuracy) - Number(control) < 0.05)
    expect(verdict.includes('too few to cluster on')).toBe(Number(blocks!.replace(/,/g, '')) < 40)
    // Two pair types give LDA one component: every difference on one line, as for shuffled types.
    await expect
      .poll(() => page.getByTestId('crystals-verdict').textContent())
      .toMatch(/Not meaningful here: LDA fitted on shuffled pair types makes \d+% .* one component/)
    expect(errors).toEqual([])
    await page.close()
  })

  for (const [width, height] of SIZES) {
    it(`visits every view at ${width}×${height}: no console errors, nothing clipped or empty, every chart drawn and described`, async () => {
      const { page, errors } = await open(width, height)
      const found: Record<string, string[]> = {}
      /** Audits the view and saves its screenshot; the content starts at its top unless the walk scrolled to a part. */
      const look = async (view: string, scrolled = false): Promise<void> => {
        if (!scrolled) await page.evaluate('document.querySelector(".content").scrollTop = 0')
        await page.waitForTimeout(400) // charts draw on the next frame after their data
        found[view] = (await page.evaluate(AUDIT)) as string[]
        await page.screenshot({ path: join(SHOTS, `${view}-${width}x${height}.png`) })
      }

      await page.goto(`${served.url}#/checkpoints`)
      await page.getByTestId(`checkpoint-row-${finalSet.step}`).click()
      await expect.poll(() => page.getByTestId('checkpoint-details').textContent()).toContain(`Step ${finalSet.step.toLocaleString('en')}`)
      await page.getByTestId('series-metrics').locator('canvas').first().waitFor()
      await page.getByTestId('training-curves').locator('canvas').first().waitFor()
      await look('checkpoints')

      await page.locator('[data-testid=harvest-form] summary').click()
      await page.locator('[data-testid=train-form] summary').click()
      await look('checkpoints-forms')

      // The import dialog, looking at the project's own first SAE by a path relative to the project folder.
      await page.getByTestId('import-sae-open').click()
      await page.getByTestId('import-sae-path').fill(`artifacts/saes/step${steps[0]}/layer2`)
      await page.getByTestId('import-sae-look').click()
      await expect.poll(() => page.locator('[data-testid=import-sae-found] tbody tr').count()).toBe(1)
      await look('import-dialog', true)
      await page.keyboard.press('Escape')

      const near = finalSet.nFeatures - 30
      await page.goto(`${served.url}#/features?set=${finalSet.id}&feature=${near}`)
      await expect.poll(() => page.locator('[data-testid=feature-dashboard] h2').textContent()).toBe(`Feature ${near}`)
      await expect.poll(() => page.getByTestId(`feature-row-${near}`).getAttribute('aria-selected')).toBe('true')
      await page.getByTestId('feature-histogram').locator('canvas').first().waitFor()
      await look('features')

      await page.goto(`${served.url}#/label?set=${finalSet.id}&n=20&seed=0&dead=0&at=0`)
      await page.getByTestId('annotator').fill('walker')
      await expect.poll(() => page.locator('[data-testid=label-examples] .trace').count()).toBeGreaterThan(0)
      await look('label')

      await page.goto(`${served.url}#/dynamics?layer=2&feature=${topMover}`)
      await expect.poll(() => page.locator('[data-testid=drift-explorer] canvas').count(), { timeout: 30_000 }).toBe(3)
      await expect.poll(() => page.locator('[data-testid=formation-by-label] canvas').count(), { timeout: 30_000 }).toBe(1)
      await look('dynamics')
      await page.getByTestId('drift-explorer').scrollIntoViewIfNeeded()
      await look('dynamics-feature', true)

      await page.goto(`${served.url}#/geometry?layer=2`)
      await page.getByTestId('galaxy-over-training').locator('canvas').first().waitFor()
      await page.getByTestId('lobe-map').locator('canvas').first().waitFor()
      await look('geometry')
      await page.getByTestId('crystal-after').scrollIntoViewIfNeeded()
      await page.getByTestId('crystal-after').locator('canvas').first().waitFor()
      await look('geometry-crystals', true)

      await page.goto(`${served.url}#/composition`)
      await page.getByTestId('composition-labels').locator('svg').first().waitFor()
      await expect.poll(() => page.getByTestId('agreement').textContent()).toMatch(/Cohen's κ/)
      await look('composition')

      expect(found).toEqual(Object.fromEntries(Object.keys(found).map((v) => [v, []])))
      expect(errors).toEqual([])
      await page.close()
    })
  }

  it('works from the keyboard: the feature list is a listbox whose arrow keys move the selection and the address; keys 1–9 label', async () => {
    const { page, errors } = await open(1280, 720)
    await page.goto(`${served.url}#/features`)
    // The default set is the latest checkpoint's, not the untrained model's.
    await expect.poll(() => page.getByTestId('browser-set').inputValue()).toBe(String(finalSet.id))
    const list = page.getByTestId('browser-list')
    expect(await list.getAttribute('role')).toBe('listbox')
    await page.getByTestId('feature-row-0').waitFor()
    await list.focus()
    await page.keyboard.press('ArrowDown')
    await expect.poll(() => page.evaluate('location.hash')).toBe(`#/features?set=${finalSet.id}&feature=0`)
    await page.keyboard.press('ArrowDown')
    await page.keyboard.press('ArrowDown')
    await expect.poll(() => page.evaluate('location.hash')).toBe(`#/features?set=${finalSet.id}&feature=2`)
    await expect.poll(() => page.locator('[role=option][aria-selected=true]').getAttribute('data-testid')).toBe('feature-row-2')
    await expect.poll(() => list.getAttribute('aria-activedescendant')).toBe('feature-option-2')
    await expect.poll(() => page.locator('[data-testid=feature-dashboard] h2').textContent()).toBe('Feature 2')
    await page.keyboard.press('End')
    const last = finalSet.nFeatures - 1
    await expect.poll(() => page.evaluate('location.hash')).toBe(`#/features?set=${finalSet.id}&feature=${last}`)
    await expect.poll(() => page.getByTestId(`feature-row-${last}`).isVisible()).toBe(true)
    await page.keyboard.press('Home')
    await expect.poll(() => page.evaluate('location.hash')).toBe(`#/features?set=${finalSet.id}&feature=0`)
    await expect.poll(() => page.locator('[data-testid=feature-dashboard] h2').textContent()).toBe('Feature 0')
    // The keyboard's place is visible.
    await expect.poll(() => page.evaluate('getComputedStyle(document.activeElement).outlineStyle')).not.toBe('none')

    // Keys 1–9 label the feature shown; with no name yet the key says so and marks the name field, and the keys pressed
    // next are refused too rather than typed into the name.
    await page.keyboard.press('1')
    await expect.poll(() => page.getByTestId('feature-label-error').textContent()).toMatch(/Type your name as annotator first/)
    await page.keyboard.press('2')
    expect(await page.getByTestId('feature-annotator').inputValue()).toBe('')
    expect(await page.getByTestId('feature-annotator').getAttribute('aria-invalid')).toBe('true')
    await page.getByTestId('feature-annotator').focus()
    await page.keyboard.type('kiki')
    await expect.poll(() => page.getByTestId('feature-label-error').count()).toBe(0)
    await list.focus()
    await page.keyboard.press('2')
    const categories = await call<string[]>('taxonomy.get')
    await expect.poll(() => page.getByTestId('label-of-kiki').textContent()).toContain(categories[1])
    // A note alone reads as a note in the history, not as "— → —".
    await call('labels.set', { setId: finalSet.id, feature: 0, annotator: 'kiki', note: 'fires on sentence starts' })
    await page.keyboard.press('ArrowDown')
    await expect.poll(() => page.locator('[data-testid=feature-dashboard] h2').textContent()).toBe('Feature 1')
    await page.keyboard.press('ArrowUp')
    await expect.poll(() => page.locator('[data-testid=feature-dashboard] h2').textContent()).toBe('Feature 0')
    await expect.poll(() => page.getByTestId('label-history').textContent()).toContain('kiki: note “fires on sentence starts”')
    expect(await page.getByTestId('label-history').textContent()).not.toContain('— → —')

    // A taller window draws rows all the way down; a deep link scrolls to and marks its feature.
    await page.setViewportSize({ width: 1280, height: 1600 })
    // Rows reach the bottom of the grown list (with the list scrolled to where it is).
    await expect
      .poll(() =>
        page.evaluate(`(() => {
      const list = document.querySelector('[data-testid=browser-list]')
      const bottom = Math.max(...[...list.querySelectorAll('[role=option]')].map((r) => r.getBoundingClientRect().bottom))
      return bottom >= list.getBoundingClientRect().bottom - 2
    })()`)
      )
      .toBe(true)
    await page.goto(`${served.url}#/features?set=${finalSet.id}&feature=${last - 60}`)
    await expect.poll(() => page.getByTestId(`feature-row-${last - 60}`).getAttribute('aria-selected')).toBe('true')
    expect(await page.getByTestId(`feature-row-${last - 60}`).isVisible()).toBe(true)
    // A bound that is not a density is refused beside the field.
    await page.getByTestId('browser-min-density').fill('5')
    await page.getByTestId('browser-min-density').press('Enter')
    await expect.poll(() => page.getByTestId('browser-density-error').textContent()).toMatch(/between 0 and 1/)
    expect(errors).toEqual([])
    await page.close()
  })

  it('forms start from the project and explain refusals; the Label view and Dynamics say what is wrong', async () => {
    const { page, errors } = await open(1024, 700)
    const saes = await call<{ layer: number; k: number; n: number; preset: string }[]>('saes.list')
    await page.goto(`${served.url}#/checkpoints`)
    await page.locator('[data-testid=harvest-form] summary').click()
    // The demo harvested layer 2 with its corpus; the harvest form starts there, not at layer 1.
    await expect.poll(() => page.getByTestId('harvest-layer').inputValue()).toBe('2')
    expect(await page.getByTestId('harvest-corpus').inputValue()).toMatch(/corpus\.jsonl$/)
    expect(await page.getByTestId('harvest-one').textContent()).toMatch(new RegExp(`Harvest step ${steps.at(-1)!.toLocaleString('en')} \\(latest\\)`))
    await page.getByTestId('harvest-layer').fill('99')
    await expect.poll(() => page.getByTestId('harvest-problems').textContent()).toMatch(/Layer must be 0–4; 99 is not/)
    await page.locator('[data-testid=train-form] summary').click()
    expect(await page.getByTestId('train-k').inputValue()).toBe(String(saes[0]!.k))
    expect(await page.getByTestId('train-latents').inputValue()).toBe(String(saes[0]!.n))
    await page.getByTestId('train-k').fill('0')
    await expect.poll(() => page.getByTestId('train-problems').textContent()).toMatch(/k must be 1–/)
    expect(await page.getByTestId('train-start').isDisabled()).toBe(true)

    // Import: a relative path is read from the project folder; a plain file is refused in words; the dialog names its own fields.
    await page.getByTestId('import-sae-open').click()
    await page.getByTestId('import-sae-path').fill('project.sqlite')
    await expect
      .poll(() =>
        page
          .getByTestId('import-sae-full-path')
          .textContent()
          .then((t) => t?.trim())
      )
      .toBe(`Reads ${join(project, 'project.sqlite')} (a relative path is taken from the project folder).`)
    await page.getByTestId('import-sae-look').click()
    await expect
      .poll(() => page.getByTestId('import-sae-problems').textContent())
      .toMatch(/project\.sqlite: is not an SAE FeatureTrace reads: expected SAELens/)
    expect(await page.getByTestId('import-sae-dialog').textContent()).not.toMatch(/Internal error|ENOTDIR/)
    await page.getByTestId('import-sae-path').fill(`artifacts/saes/step${steps[0]}/layer2`)
    await page.getByTestId('import-sae-step').fill(String(steps[0]))
    await page.getByTestId('import-sae-look').click()
    await expect
      .poll(() => page.getByTestId('import-sae-problems').textContent())
      .toMatch(/already has a layer-2 SAE .*; tick “make current \(keep the old ones\)” to make this one current/)
    expect(await page.getByTestId('import-sae-problems').textContent()).not.toContain('--')
    await page.keyboard.press('Escape')

    // The jobs footer folds to one line and shows its whole history on demand.
    const panel = page.getByTestId('jobs-panel')
    const all = (await call<unknown[]>('jobs.list')).length
    expect(all).toBeGreaterThan(6)
    await page.getByTestId('jobs-all').click()
    await expect.poll(() => panel.locator('.job').count()).toBe(all)
    const openHeight = (await panel.boundingBox())!.height
    await page.getByTestId('jobs-toggle').click()
    expect(await page.getByTestId('jobs-toggle').getAttribute('aria-expanded')).toBe('false')
    await expect.poll(async () => (await panel.boundingBox())!.height).toBeLessThan(40)
    expect(openHeight).toBeGreaterThan(100)
    await expect.poll(() => page.getByTestId('jobs-summary').textContent()).toMatch(/^#\d+ geometry done: crystals/)
    await page.reload()
    await expect.poll(() => page.getByTestId('jobs-toggle').getAttribute('aria-expanded')).toBe('false')
    await page.getByTestId('jobs-toggle').click()

    // Label view: it offers the latest checkpoint's set; a key without a name asks for one, and typing one clears the request; `/` says why it cannot go.
    await page.goto(`${served.url}#/label`)
    await expect.poll(() => page.getByTestId('label-set').inputValue()).toBe(String(finalSet.id))
    await page.goto(`${served.url}#/label?set=${finalSet.id}&n=20&seed=0&dead=0&at=0`)
    await expect.poll(() => page.getByTestId('label-feature').textContent()).toMatch(/Feature \d+/)
    await page.getByTestId('label-panel').focus()
    await page.keyboard.press('1')
    await expect.poll(() => page.getByRole('alert').allTextContents()).toContain('Type your name as annotator first: labels are saved under it.')
    await page.keyboard.press('2')
    expect(await page.getByTestId('annotator').inputValue()).toBe('')
    expect(await page.getByTestId('annotator').getAttribute('aria-invalid')).toBe('true')
    await page.getByTestId('annotator').focus()
    await page.keyboard.type('walker')
    await expect.poll(() => page.getByRole('alert').allTextContents()).toEqual([])
    const sample = await call<number[]>('labels.sample', { setId: finalSet.id, n: 20, seed: 0, skipDead: true })
    const outside = [...Array(finalSet.nFeatures).keys()].find((f) => !sample.includes(f))!
    await page.getByTestId('label-search').fill(String(outside))
    await page.getByTestId('label-search').press('Enter')
    await expect
      .poll(() => page.getByTestId('label-search-note').textContent())
      .toMatch(new RegExp(`Feature ${outside} is not among this session's 20 features.*Open its dashboard`))
    await page.getByTestId('label-search').fill('cat')
    await page.getByTestId('label-search').press('Enter')
    await expect.poll(() => page.getByTestId('label-search-note').textContent()).toMatch(/“cat” is not a feature id/)
    await page.getByTestId('label-search').fill(String(finalSet.nFeatures + 5))
    await page.getByTestId('label-search').press('Enter')
    await expect.poll(() => page.getByTestId('label-search-note').textContent()).toMatch(new RegExp(`This set has features 0–${finalSet.nFeatures - 1}`))
    // Each context shows once, however many samplers drew it.
    const traces = await page.locator('[data-testid=label-examples] .trace').allTextContents()
    expect(new Set(traces).size).toBe(traces.length)

    // Dynamics: a threshold M can never reach is refused beside the field; formation at the first checkpoint is explained.
    const formedFirst = (
      await call<{ rows: { feature: number; formationStep: number | null }[] }>('features.list', { setId: finalSet.id, sort: 'formation', limit: 5 })
    ).rows.find((r) => r.formationStep === steps[0])
    await page.goto(`${served.url}#/dynamics?layer=2&feature=${formedFirst?.feature ?? topMover}`)
    await expect
      .poll(() => page.getByTestId('formation-text').textContent(), { timeout: 30_000 })
      .toMatch(formedFirst ? /Formed already at the first checkpoint \(step 0\).*untrained model/ : /./)
    await page.getByTestId('formation-threshold').fill('5')
    await page.getByTestId('formation-threshold').press('Tab')
    await expect.poll(() => page.getByTestId('threshold-error').textContent()).toMatch(/must lie between -1 and 1/)
    expect(await page.getByTestId('compute-dynamics').isDisabled()).toBe(true)
    await page.getByTestId('formation-threshold').fill('0.5')
    await page.getByTestId('formation-threshold').press('Tab')
    // Labels from every checkpoint of the warm-started series count, by whoever is chosen.
    await expect
      .poll(() => page.getByTestId('formation-by-label-source').textContent(), { timeout: 30_000 })
      .toMatch(new RegExp(`labels made at steps ${earlySet.step.toLocaleString('en')}, ${finalSet.step.toLocaleString('en')}`))
    await page.getByTestId('formation-annotator').selectOption('cy')
    await expect
      .poll(() => page.getByTestId('formation-by-label-source').textContent())
      .toMatch(new RegExp(`cy's labels; labels made at step ${earlySet.step.toLocaleString('en')} \\(`))

    // Composition: a set whose annotators share no feature says so, not "needs two annotators".
    await page.goto(`${served.url}#/composition`)
    await expect.poll(() => page.getByTestId('agreement').textContent()).toMatch(/none: no feature was labelled by all 2/)
    await expect.poll(() => page.getByTestId('composition-dead-caption').textContent()).toMatch(/Dead features/)
    expect(errors).toEqual([])
    await page.close()
  })
})

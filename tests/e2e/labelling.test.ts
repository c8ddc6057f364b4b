import Database from 'better-sqlite3'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { writeFeatureSet } from '../fixtures/feature-sets'
import { CLI } from '../helpers'
import { openPage, SCREENSHOTS, serve, useWorkstation } from './browser'

const CATEGORIES = ['Token-level', 'Concept-level (synonymy)', 'Concept-level (semantic similarity)', 'Uninterpretable']
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function tabTo(page: Page, testId: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    if ((await page.evaluate('document.activeElement?.getAttribute("data-testid")')) === testId) return
    await page.keyboard.press('Tab')
  }
  throw new Error(`Tab never reached ${testId}`)
}

describe('a labelling session by keyboard only', () => {
  let project: string
  /** A second project with the same sets, served on the same address in one test. */
  let other: string
  const w = useWorkstation({
    prepare(dir) {
      const file = join(dir, 'paper.jsonl')
      writeFeatureSet(file, { checkpoints: ['1000', '2000'], features: 60, examples: 12, length: 16 })
      const big = join(dir, 'big.jsonl')
      writeFeatureSet(big, { checkpoints: ['big'], features: 32_768, examples: 1, length: 3 })
      project = join(dir, 'project')
      other = join(dir, 'other')
      for (const [f, name, into] of [
        [file, 'demo', project],
        [big, 'wide', project],
        [file, 'demo', other]
      ]) {
        const imported = spawnSync(process.execPath, [CLI, 'import-features', f!, '--project', into!, '--name', name!], { encoding: 'utf8' })
        expect(imported.status, imported.stderr).toBe(0)
      }
      return project
    }
  })
  const call = <T>(name: string, payload: unknown): Promise<T> => w.call<T>(name, payload)

  /** Every label event one annotator caused, read from the project database itself. */
  function events(
    annotator: string,
    dir = project
  ): { set_id: number; feature: number; category_after: string | null; blind: number | null; request_id: string | null }[] {
    const db = new Database(join(dir, 'project.sqlite'), { readonly: true, fileMustExist: true })
    try {
      return db
        .prepare('SELECT set_id, feature, category_after, blind, request_id FROM label_event WHERE annotator = ? ORDER BY id')
        .all(annotator) as ReturnType<typeof events>
    } finally {
      db.close()
    }
  }

  /** Opens the label view as `annotator` on a session whose address is `query`. */
  async function session(annotator: string, query: string, page?: Page): Promise<{ page: Page; errors: string[] }> {
    const opened = page ? { page, errors: [] as string[] } : await openPage(w.browser, 900)
    await opened.page.goto(`${w.served.url}#/label`)
    await opened.page.getByTestId('annotator').fill(annotator)
    await opened.page.evaluate(`location.hash = '#/label?${query}'`)
    await expect.poll(() => opened.page.getByTestId('label-feature').textContent()).toMatch(/Feature \d+/)
    await opened.page.keyboard.press('Escape')
    return opened
  }

  const shown = async (page: Page): Promise<number> => Number((await page.getByTestId('label-feature').textContent())!.match(/Feature (\d+)/)![1])

  it('labels 10 features, undoes one, and finds every label after a reload', async () => {
    const { page, errors } = await openPage(w.browser, 900)
    await page.goto(`${w.served.url}#/label?set=1&n=20&seed=7&dead=0&at=0`)
    await expect.poll(() => page.getByTestId('label-feature').textContent()).toMatch(/Feature \d+/)
    await tabTo(page, 'annotator')
    await page.keyboard.type('ana')
    await page.keyboard.press('Escape')
    const labelled: { feature: string; key: string }[] = []
    for (let i = 0; i < 10; i++) {
      const feature = (await page.getByTestId('label-feature').textContent())!.replace('Feature ', '')
      const key = String((i % 4) + 1)
      await page.keyboard.press(key)
      labelled.push({ feature, key })
      await expect.poll(() => page.getByTestId('label-progress').textContent()).toBe(`${i + 1} / 20 labelled`)
      // Labelling moves on to the next feature of the sample.
      await expect.poll(() => page.getByTestId('label-feature').textContent()).not.toBe(`Feature ${feature}`)
    }
    await page.keyboard.press('u')
    await expect.poll(() => page.getByTestId('label-progress').textContent()).toBe('9 / 20 labelled')
    // Undo goes back to the feature it changed, which now has no label from this annotator.
    await expect.poll(() => page.getByTestId('label-feature').textContent()).toBe(`Feature ${labelled[9]!.feature}`)
    expect(await page.locator('.category.chosen').count()).toBe(0)
    await page.keyboard.press('k')
    await expect.poll(() => page.getByTestId('label-feature').textContent()).toBe(`Feature ${labelled[8]!.feature}`)
    // A note, typed into its field reached by keyboard, saved with Enter.
    await tabTo(page, 'label-note')
    await page.keyboard.type('fires on place names')
    await page.keyboard.press('Enter')
    await page.keyboard.press('Escape')
    await expect.poll(() => page.getByTestId('label-queue').count()).toBe(0)
    await page.screenshot({ path: join(SCREENSHOTS, 'labelling.png') })

    await page.reload()
    await expect.poll(() => page.getByTestId('label-progress').textContent()).toBe('9 / 20 labelled')
    expect(await page.getByTestId('label-feature').textContent()).toBe(`Feature ${labelled[8]!.feature}`)
    expect(await page.locator('.category.chosen').textContent()).toContain(CATEGORIES[Number(labelled[8]!.key) - 1])
    // And in the project itself, through the API.
    const list = await call<{ rows: { feature: number; label: string | null }[] }>('features.list', { setId: 1, annotator: 'ana', limit: 100 })
    const stored = list.rows
      .filter((r) => r.label !== null)
      .map((r) => String(r.feature))
      .sort()
    expect(stored).toEqual(
      labelled
        .slice(0, 9)
        .map((l) => l.feature)
        .sort()
    )
    const detail = await call<{ labels: { annotator: string; note: string; category: string }[] }>('features.get', {
      setId: 1,
      feature: Number(labelled[8]!.feature)
    })
    expect(detail.labels.find((l) => l.annotator === 'ana')).toMatchObject({ note: 'fires on place names', category: CATEGORIES[Number(labelled[8]!.key) - 1] })
    expect(await page.getByTestId('label-note').inputValue()).toBe('fires on place names')
    expect(errors).toEqual([])
    await page.close()
  })

  it.each([
    { who: 'quick', gap: 5, presses: 6, from: 20, key: '1' },
    { who: 'repeat', gap: 40, presses: 10, from: 30, key: '2' }
  ])('$presses presses $gap ms apart label $presses consecutive features once each', async ({ who, gap, presses, from, key }) => {
    const sample = await call<number[]>('labels.sample', { setId: 1, n: 60, seed: 3, skipDead: true })
    const { page, errors } = await session(who, `set=1&n=60&seed=3&dead=0&at=${from}`)
    expect(await shown(page)).toBe(sample[from])
    for (let i = 0; i < presses; i++) {
      await page.keyboard.press(key)
      await sleep(gap)
    }
    // The view moved on once per key, whatever the writes were doing.
    expect(await shown(page)).toBe(sample[from + presses])
    await expect.poll(() => events(who).length).toBe(presses)
    await expect.poll(() => page.getByTestId('label-queue').count()).toBe(0)
    const written = events(who)
    expect(written.map((e) => e.feature)).toEqual(sample.slice(from, from + presses))
    expect(written.every((e) => e.set_id === 1 && e.category_after === CATEGORIES[Number(key) - 1] && e.request_id !== null)).toBe(true)
    expect(await page.getByTestId('label-progress').textContent()).toBe(`${presses} / 60 labelled`)
    expect(errors).toEqual([])
    await page.close()
  })

  it('Space and Enter after labelling leave the session where it is; category buttons keep no focus', async () => {
    const sample = await call<number[]>('labels.sample', { setId: 1, n: 60, seed: 0, skipDead: true })
    const { page, errors } = await openPage(w.browser, 900)
    await page.goto(`${w.served.url}#/label`)
    await page.getByTestId('annotator').fill('spacey')
    await page.getByTestId('label-set').selectOption('1')
    await page.getByTestId('label-start').click()
    await expect.poll(() => shown(page)).toBe(sample[0])
    for (let i = 0; i < 3; i++) await page.keyboard.press('1')
    expect(await shown(page)).toBe(sample[3])
    await page.keyboard.press('Space')
    await page.keyboard.press('Enter')
    // A mouse click on a category labels the feature shown and leaves the focus on the labelling surface.
    await page.getByTestId('category-2').click()
    expect(await shown(page)).toBe(sample[4])
    await page.keyboard.press('Space')
    await page.keyboard.press('Enter')
    await sleep(300)
    expect(await shown(page)).toBe(sample[4])
    expect(await page.getByTestId('label-position').textContent()).toBe('5 of 60')
    // Even Start itself, focused and pressed again, resumes rather than restarts.
    await page.getByTestId('label-start').focus()
    await page.keyboard.press('Space')
    await page.keyboard.press('Enter')
    await sleep(300)
    expect(await shown(page)).toBe(sample[4])
    await expect
      .poll(() => events('spacey').map((e) => [e.feature, e.category_after]))
      .toEqual([...sample.slice(0, 3).map((f) => [f, CATEGORIES[0]]), [sample[3], CATEGORIES[1]]])
    expect(errors).toEqual([])
    await page.close()
  })

  it('keeps a note from erasing the category of a feature beyond the first 5,000 of a 32,768-feature set', async () => {
    const sets = await call<{ id: number; name: string; nFeatures: number }[]>('features.sets', null)
    const wide = sets.find((s) => s.name === 'wide @ big')!
    expect(wide.nFeatures).toBe(32_768)
    const sample = await call<number[]>('labels.sample', { setId: wide.id, n: 10, seed: 1, skipDead: true })
    const beyond = sample.filter((f) => f >= 5000)
    expect(beyond.length).toBeGreaterThanOrEqual(8)
    for (const f of beyond) await call('labels.set', { setId: wide.id, feature: f, annotator: 'wendy', category: CATEGORIES[2] })
    const at = sample.indexOf(beyond[0]!)
    const { page, errors } = await session('wendy', `set=${wide.id}&n=10&seed=1&dead=0&at=${at}`)
    await expect.poll(() => page.getByTestId('label-progress').textContent()).toBe(`${beyond.length} / 10 labelled`)
    expect(await page.locator('.category.chosen').textContent()).toContain(CATEGORIES[2])
    await page.getByTestId('label-note').fill('a note only')
    await page.getByTestId('label-note').press('Enter')
    await expect
      .poll(
        async () =>
          (await call<{ labels: { annotator: string; note: string; category: string | null }[] }>('features.get', { setId: wide.id, feature: beyond[0] }))
            .labels
      )
      .toEqual([expect.objectContaining({ annotator: 'wendy', category: CATEGORIES[2], note: 'a note only' })])
    // A pasted 1 MiB note is refused in words; nothing is sent, the connection and the label stay.
    await page.getByTestId('label-note').fill('x'.repeat(1 << 20))
    await page.getByTestId('label-note').press('Enter')
    await expect.poll(() => page.getByTestId('label-note-error').textContent()).toMatch(/at most 10,000 characters; this one has 1,048,576/)
    expect(await page.locator('.banner.error').count()).toBe(0)
    expect((await call<{ labels: { note: string }[] }>('features.get', { setId: wide.id, feature: beyond[0] })).labels[0]!.note).toBe('a note only')
    expect(errors).toEqual([])
    await page.close()
  })

  it('blind: hides another annotator’s label until this one has labelled the feature, and records it', async () => {
    const sample = await call<number[]>('labels.sample', { setId: 2, n: 10, seed: 5, skipDead: true })
    // Amy labelled the first three features of the sample in her own blind session.
    for (const f of sample.slice(0, 3)) await call('labels.set', { setId: 2, feature: f, annotator: 'amy', category: CATEGORIES[3], blind: true })
    const { page, errors } = await session('bob', 'set=2&n=10&seed=5&dead=0&at=0')
    // On by default: the set has labels from someone else.
    await expect.poll(() => page.getByTestId('label-blind').isChecked()).toBe(true)
    await expect.poll(() => page.getByTestId('label-others').textContent()).toMatch(/hidden/)
    expect(await page.getByTestId('label-view').textContent()).not.toContain('amy')
    await page.keyboard.press('1')
    await page.keyboard.press('2')
    await page.keyboard.press('k')
    await expect.poll(() => page.getByTestId('label-others').textContent()).toContain(`amy: ${CATEGORIES[3]}`)
    expect(await shown(page)).toBe(sample[1])
    // Having seen amy's label, bob's change of mind is not blind.
    await page.keyboard.press('4')
    await expect
      .poll(() => events('bob').map((e) => [e.feature, e.blind]))
      .toEqual([
        [sample[0], 1],
        [sample[1], 1],
        [sample[1], 0]
      ])
    const composition = await call<{ setId: number; agreement: { items: number; blindItems: number; kappa: number | null } }[]>('analysis.composition', {})
    const row = composition.find((c) => c.setId === 2)!
    expect(row.agreement).toMatchObject({ items: 2, blindItems: 1 })
    await page.evaluate("location.hash = '#/composition'")
    await expect.poll(() => page.getByTestId('agreement').textContent()).toContain('1 of 2 judged blind')
    await page.getByTestId('agreement').screenshot({ path: join(SCREENSHOTS, 'agreement-blind.png') })
    expect(errors).toEqual([])
    await page.close()
  })

  it('keeps keys pressed while the server is down and sends them, in order, when it is back', async () => {
    const sample = await call<number[]>('labels.sample', { setId: 1, n: 60, seed: 3, skipDead: true })
    const { page } = await session('offline', 'set=1&n=60&seed=3&dead=0&at=45')
    const port = new URL(w.served.url).port
    const stoppedAt = Date.now()
    await w.served.stop()
    await expect.poll(() => page.getByRole('alert').allTextContents()).toContain('Lost the connection to FeatureTrace; reconnecting…')
    for (const key of ['3', '1', '3']) {
      await page.keyboard.press(key)
      await sleep(100)
    }
    expect(await shown(page)).toBe(sample[48])
    await expect.poll(() => page.getByTestId('label-queue').textContent()).toMatch(/3 waiting/)
    await page.keyboard.press('k')
    expect(await page.getByTestId('label-pending').count()).toBe(1)
    await page.screenshot({ path: join(SCREENSHOTS, 'labelling-offline.png') })
    await sleep(Math.max(0, 5000 - (Date.now() - stoppedAt)))
    w.served = await serve(['--project', project, '--port', port])
    await expect
      .poll(() => events('offline').map((e) => [e.feature, e.category_after]), { timeout: 20_000 })
      .toEqual([
        [sample[45], CATEGORIES[2]],
        [sample[46], CATEGORIES[0]],
        [sample[47], CATEGORIES[2]]
      ])
    await expect.poll(() => page.getByTestId('label-queue').count()).toBe(0)
    expect(await page.getByTestId('label-pending').count()).toBe(0)
    await page.close()
  })

  it('keeps waiting writes in the browser when the page is closed, and sends them when it is opened again', async () => {
    const sample = await call<number[]>('labels.sample', { setId: 1, n: 60, seed: 3, skipDead: true })
    const context = await w.browser.newContext({ viewport: { width: 1400, height: 900 } })
    const first = await session('reloader', 'set=1&n=60&seed=3&dead=0&at=50', await context.newPage())
    const port = new URL(w.served.url).port
    await w.served.stop()
    await expect.poll(() => first.page.getByRole('alert').allTextContents()).toContain('Lost the connection to FeatureTrace; reconnecting…')
    await first.page.keyboard.press('4')
    await first.page.keyboard.press('2')
    await expect.poll(() => first.page.getByTestId('label-queue').textContent()).toMatch(/2 waiting/)
    await first.page.close()
    w.served = await serve(['--project', project, '--port', port])
    expect(events('reloader')).toEqual([])
    const second = await context.newPage()
    await second.goto(`${w.served.url}#/label?set=1&n=60&seed=3&dead=0&at=0`)
    await expect
      .poll(() => events('reloader').map((e) => [e.feature, e.category_after]))
      .toEqual([
        [sample[50], CATEGORIES[3]],
        [sample[51], CATEGORIES[1]]
      ])
    await expect.poll(() => second.getByTestId('label-progress').textContent()).toBe('2 / 60 labelled')
    await context.close()
  })

  it('never sends a write waiting for one project to another project served at the same address', async () => {
    const sample = await call<number[]>('labels.sample', { setId: 1, n: 60, seed: 3, skipDead: true })
    const context = await w.browser.newContext({ viewport: { width: 1400, height: 900 } })
    const first = await session('stray', 'set=1&n=60&seed=3&dead=0&at=55', await context.newPage())
    const port = new URL(w.served.url).port
    await w.served.stop()
    await expect.poll(() => first.page.getByRole('alert').allTextContents()).toContain('Lost the connection to FeatureTrace; reconnecting…')
    await first.page.keyboard.press('2')
    await expect.poll(() => first.page.getByTestId('label-queue').textContent()).toMatch(/1 waiting/)
    w.served = await serve(['--project', other, '--port', port])
    // The page notices the other project and keeps the write for its own.
    await expect.poll(() => first.page.getByRole('alert').count(), { timeout: 20_000 }).toBe(0)
    await expect.poll(() => first.page.getByTestId('label-feature').count()).toBe(0)
    expect(events('stray', other)).toEqual([])
    await first.page.close()
    await w.served.stop()
    w.served = await serve(['--project', project, '--port', port])
    const second = await context.newPage()
    await second.goto(`${w.served.url}#/label?set=1&n=60&seed=3&dead=0&at=0`)
    await expect.poll(() => events('stray').map((e) => [e.feature, e.category_after])).toEqual([[sample[55], CATEGORIES[1]]])
    expect(events('stray', other)).toEqual([])
    await context.close()
  })
})

import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFeatureSet } from '../fixtures/feature-sets'
import { CLI, tempDir } from '../helpers'
import { launchBrowser, openPage, SCREENSHOTS, serve, type Served } from './browser'

async function tabTo(page: Page, testId: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    if ((await page.evaluate('document.activeElement?.getAttribute("data-testid")')) === testId) return
    await page.keyboard.press('Tab')
  }
  throw new Error(`Tab never reached ${testId}`)
}

describe('a labelling session by keyboard only', () => {
  let t: ReturnType<typeof tempDir>
  let browser: Browser
  let served: Served

  beforeAll(async () => {
    t = tempDir('ft-e2e-')
    const file = join(t.dir, 'paper.jsonl')
    writeFeatureSet(file, { checkpoints: ['1000'], features: 60, examples: 12, length: 16 })
    const project = join(t.dir, 'project')
    const imported = spawnSync(process.execPath, [CLI, 'import-features', file, '--project', project, '--name', 'demo'], { encoding: 'utf8' })
    expect(imported.status, imported.stderr).toBe(0)
    browser = await launchBrowser()
    served = await serve(['--project', project])
  })
  afterAll(async () => {
    await browser?.close()
    await served?.stop()
    t.cleanup()
  })

  it('labels 10 features, undoes one, and finds every label after a reload', async () => {
    const { page, errors } = await openPage(browser, 900)
    await page.goto(`${served.url}#/label?set=1&n=20&seed=7&dead=0&at=0`)
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
    await page.screenshot({ path: join(SCREENSHOTS, 'labelling.png') })

    await page.reload()
    await expect.poll(() => page.getByTestId('label-progress').textContent()).toBe('9 / 20 labelled')
    expect(await page.getByTestId('label-feature').textContent()).toBe(`Feature ${labelled[8]!.feature}`)
    expect(await page.locator('.category.chosen').textContent()).toContain(['Token-level', 'Concept-level (synonymy)', 'Concept-level (semantic similarity)', 'Uninterpretable'][Number(labelled[8]!.key) - 1])
    // And in the project itself, through the API.
    const list = (await (await fetch(new URL('/api/call/features.list', served.url), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ setId: 1, annotator: 'ana', limit: 100 })
    })).json()) as { result: { rows: { feature: number; label: string | null }[] } }
    const stored = list.result.rows.filter((r) => r.label !== null).map((r) => String(r.feature)).sort()
    expect(stored).toEqual(labelled.slice(0, 9).map((l) => l.feature).sort())
    const detail = (await (await fetch(new URL('/api/call/features.get', served.url), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ setId: 1, feature: Number(labelled[8]!.feature) }) })).json()) as {
      result: { labels: { annotator: string; note: string }[] }
    }
    expect(detail.result.labels.find((l) => l.annotator === 'ana')!.note).toBe('fires on place names')
    expect(await page.getByTestId('label-note').inputValue()).toBe('fires on place names')
    expect(errors).toEqual([])
    await page.close()
  })
})

import { cpSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tinyModels } from '../fixtures/tiny-models'
import { openPage, SCREENSHOTS, useWorkstation } from './browser'

describe('harvesting and training a series from the checkpoint view', () => {
  const w = useWorkstation({
    prepare(dir) {
      const root = tinyModels()
      for (const step of [0, 10, 100, 1000, 10000])
        cpSync(join(root, 'models', 'llama-gqa-tied'), join(dir, 'series', `iter_${String(step).padStart(7, '0')}`), { recursive: true })
      const lines = [
        { text: 'The cat sat on the mat. The dog sat on the log. Language models learn features during training.', lang: 'en' },
        { text: '東京は日本の首都です。猫はマットの上に座った。言語モデルは訓練の間に特徴を学習します。', lang: 'ja' }
      ]
      writeFileSync(join(dir, 'corpus.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n')
    }
  })

  it('starts a harvest job, shows its progress and then each checkpoint’s activations', async () => {
    const { page, errors } = await openPage(w.browser, 860)
    await page.goto(w.served.url)
    await page.getByTestId('register-folder').fill(join(w.dir, 'series'))
    await page.getByTestId('register-button').click()
    await expect.poll(() => page.locator('[data-testid=checkpoint-table] tbody tr').count()).toBe(5)
    await page.locator('[data-testid=harvest-form] summary').click()
    await page.getByTestId('harvest-corpus').fill(join(w.dir, 'corpus.jsonl'))
    await page.getByTestId('harvest-layer').fill('2')
    await page.getByTestId('harvest-all').click()
    await expect.poll(() => page.getByTestId('jobs-panel').textContent(), { timeout: 60_000 }).toMatch(/harvest\s*done/)
    await expect.poll(() => page.getByTestId('activations-10000').textContent()).toMatch(/L2 · \d+/)
    await page.getByTestId('checkpoint-row-100').click()
    await expect.poll(() => page.getByTestId('checkpoint-details').textContent()).toMatch(/layer 2\s*\d+ tokens/)
    await page.screenshot({ path: join(SCREENSHOTS, 'harvest.png') })
    expect(errors).toEqual([])
    await page.close()
  })

  it('trains the warm-started SAE series and charts its metrics, live and per checkpoint', async () => {
    const { page, errors } = await openPage(w.browser, 1000)
    await page.goto(w.served.url)
    await page.locator('[data-testid=train-form] summary').click()
    await page.getByTestId('train-latents').fill('128')
    await page.getByTestId('train-k').fill('8')
    await page.getByTestId('train-tokens').fill('8192')
    await page.getByTestId('train-batch').fill('64')
    await page.getByTestId('train-start').click()
    await expect.poll(() => page.getByTestId('jobs-panel').textContent(), { timeout: 90_000 }).toMatch(/train-series\s*done/)
    await expect.poll(() => page.getByTestId('sae-10000').textContent()).toMatch(/0\.\d{3}/)
    expect(await page.locator('[data-testid=series-metrics] canvas').count()).toBeGreaterThan(0)
    // Once the run is over, the training chart follows the selected checkpoint.
    await page.getByTestId('checkpoint-row-0').click()
    await expect.poll(() => page.getByTestId('details-saes').textContent()).toMatch(/layer 2\s*n 128, k 8\s*FVU 0\.\d+\s*L0 [\d.]+\s*scratch/)
    await expect.poll(() => page.locator('[data-testid=training-curves] canvas').count()).toBeGreaterThan(0)
    await page.screenshot({ path: join(SCREENSHOTS, 'train.png'), fullPage: true })
    expect(errors).toEqual([])
    await page.close()
  })

  it('computes feature statistics, opens a feature page and the composition charts', async () => {
    const { page, errors } = await openPage(w.browser, 1000)
    await page.goto(w.served.url)
    await page.locator('[data-testid=stats-form] summary').click()
    await page.getByTestId('stats-start').click()
    await expect.poll(() => page.getByTestId('jobs-panel').textContent(), { timeout: 90_000 }).toMatch(/feature-stats\s*done/)
    const call = async (name: string, payload: unknown): Promise<unknown> =>
      (
        (await (
          await fetch(new URL(`/api/call/${name}`, w.served.url), {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(payload)
          })
        ).json()) as { result: unknown }
      ).result
    const sets = (await call('features.sets', {})) as { id: number; name: string; nFeatures: number }[]
    expect(sets.map((s) => s.name)).toEqual(['step 0 · layer 2', 'step 10 · layer 2', 'step 100 · layer 2', 'step 1000 · layer 2', 'step 10000 · layer 2'])
    // Two annotators label a few features of each set, so the composition and agreement have content.
    const cats = ['Token-level', 'Concept-level (synonymy)', 'Concept-level (semantic similarity)', 'Uninterpretable']
    for (const [i, set] of sets.entries()) {
      const alive = ((await call('features.list', { setId: set.id, dead: false, limit: 12 })) as { rows: { feature: number }[] }).rows
      for (const [j, r] of alive.entries()) {
        await call('labels.set', { setId: set.id, feature: r.feature, annotator: 'ana', category: cats[(i + j) % 4] })
        await call('labels.set', { setId: set.id, feature: r.feature, annotator: 'ben', category: cats[(i + j + (j % 3 === 0 ? 1 : 0)) % 4] })
      }
    }
    const liveFeature = (
      (await call('features.list', { setId: sets[4]!.id, dead: false, sort: 'density', descending: true, limit: 1 })) as { rows: { feature: number }[] }
    ).rows[0]!.feature
    await page.goto(`${w.served.url}#/features?set=${sets[4]!.id}&feature=${liveFeature}`)
    await expect.poll(() => page.getByTestId('feature-dashboard').textContent()).toContain(`Feature ${liveFeature}`)
    await expect.poll(() => page.locator('[data-testid=feature-dashboard] .trace').count()).toBeGreaterThan(0)
    expect(await page.locator('[data-testid=feature-histogram] canvas').count()).toBe(1)
    await expect.poll(() => page.locator('[data-testid=feature-across] .across-cell').count()).toBe(5)
    expect(Number((await page.getByTestId('browser-total').textContent())!.replace(/\D/g, ''))).toBe(128)
    // The list scrolls to the feature the address names and marks it.
    await expect.poll(() => page.getByTestId(`feature-row-${liveFeature}`).getAttribute('aria-selected')).toBe('true')
    await page.screenshot({ path: join(SCREENSHOTS, 'feature.png'), fullPage: true })
    // A neighbour is one click away.
    const neighbour = page.locator('[data-testid^=neighbour-]').first()
    const target = (await neighbour.getAttribute('data-testid'))!.replace('neighbour-', '')
    await neighbour.click()
    await expect.poll(() => page.locator('[data-testid=feature-dashboard] h2').textContent()).toBe(`Feature ${target}`)

    await page.goto(`${w.served.url}#/composition`)
    await expect.poll(() => page.locator('[data-testid=composition-labels] svg').count()).toBeGreaterThan(0)
    await expect.poll(() => page.getByTestId('agreement').textContent()).toMatch(/Cohen's κ/)
    await page.screenshot({ path: join(SCREENSHOTS, 'composition.png'), fullPage: true })
    const download = page.waitForEvent('download')
    await page.getByTestId('export-labels-svg').click()
    expect((await download).suggestedFilename()).toBe('granularity.svg')
    expect(errors).toEqual([])
    await page.close()
  })

  it('asks before recomputing or retraining, keeps every label, and carries labels to the retrained SAEs', async () => {
    const { page, errors } = await openPage(w.browser, 1000)
    const call = async (name: string, payload: unknown): Promise<unknown> =>
      (
        (await (
          await fetch(new URL(`/api/call/${name}`, w.served.url), {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(payload)
          })
        ).json()) as { result: unknown }
      ).result
    const labelRows = async (): Promise<unknown[]> => {
      const out = []
      for (const set of (await call('features.sets', {})) as { id: number }[]) {
        for (const annotator of ['ana', 'ben']) {
          const rows = ((await call('features.list', { setId: set.id, annotator, limit: 1000 })) as { rows: { feature: number; label: string | null }[] }).rows
          for (const r of rows) if (r.label) out.push([set.id, r.feature, annotator, r.label])
        }
      }
      return out
    }
    const jobsOf = async (kind: string): Promise<{ state: string }[]> =>
      ((await call('jobs.list', {})) as { kind: string; state: string }[]).filter((j) => j.kind === kind)
    const before = await labelRows()
    expect(before.length).toBeGreaterThan(0)
    await page.goto(w.served.url)
    await page.locator('[data-testid=stats-form] summary').click()
    // Cancel changes nothing; the dialog names the sets and says labels are kept.
    const statsJobs = (await jobsOf('feature-stats')).length
    await page.getByTestId('stats-start').click()
    await expect.poll(() => page.getByTestId('confirm-replace').textContent()).toMatch(/5 feature sets.*recomputed in place/)
    expect(await page.getByTestId('confirm-labels').textContent()).toMatch(/Labels are kept: all \d+ labels/)
    await page.screenshot({ path: join(SCREENSHOTS, 'confirm-replace.png') })
    await page.keyboard.press('Enter') // the focused button is Cancel
    await expect.poll(() => page.getByTestId('confirm-replace').isVisible()).toBe(false)
    expect((await jobsOf('feature-stats')).length).toBe(statsJobs)
    await page.getByTestId('stats-start').click()
    await page.getByTestId('confirm-ok').click()
    await expect.poll(async () => (await jobsOf('feature-stats')).map((j) => j.state), { timeout: 90_000 }).toEqual(Array(statsJobs + 1).fill('done'))
    expect(await labelRows()).toEqual(before)

    // Retrain the series: the old SAEs stay, superseded, with their sets and labels.
    await page.locator('[data-testid=train-form] summary').click()
    await expect.poll(() => page.getByTestId('train-start').textContent()).toMatch(/Retrain 5 SAEs/)
    await page.getByTestId('train-latents').fill('128')
    await page.getByTestId('train-k').fill('8')
    await page.getByTestId('train-tokens').fill('8192')
    await page.getByTestId('train-batch').fill('64')
    await page.getByTestId('train-start').click()
    await expect.poll(() => page.getByTestId('confirm-replace').textContent()).toMatch(/kept as superseded.*5 feature sets and every label/)
    await page.getByTestId('confirm-ok').click()
    await expect.poll(async () => (await jobsOf('train-series')).map((j) => j.state), { timeout: 120_000 }).toEqual(['done', 'done'])
    expect(await labelRows()).toEqual(before)
    // Statistics of the new SAEs replace nothing, so no question is asked.
    await page.getByTestId('stats-start').click()
    await expect.poll(async () => (await jobsOf('feature-stats')).map((j) => j.state), { timeout: 90_000 }).toEqual(Array(statsJobs + 2).fill('done'))
    expect(await page.getByTestId('confirm-replace').isVisible()).toBe(false)
    const sets = (await call('features.sets', {})) as { id: number; name: string; superseded: boolean; labelCount: number; step: number }[]
    expect(sets.filter((s) => s.superseded)).toHaveLength(5)
    const old = sets.find((s) => s.superseded && s.step === 10000)!
    const fresh = sets.find((s) => !s.superseded && s.step === 10000)!
    expect(old.labelCount).toBeGreaterThan(0)

    // Carry from the Features view: preview with cosines, then the copy; the new feature says where its label came from.
    await page.goto(`${w.served.url}#/features?set=${old.id}`)
    await expect.poll(() => page.getByTestId('superseded-note').textContent()).toMatch(/labels are kept here/)
    await page.getByTestId('carry-open').click()
    await expect.poll(() => page.locator('[data-testid=carry-pairs] tbody tr').count()).toBeGreaterThan(0)
    await page.getByTestId('carry-min-cosine').fill('-1')
    await page.screenshot({ path: join(SCREENSHOTS, 'carry-labels.png') })
    await page.getByTestId('carry-apply').click()
    await expect.poll(() => page.getByTestId('carry-result').textContent()).toMatch(/Carried \d+ labels/)
    await page.getByTestId('carry-close').click()
    const carried = ((await call('features.list', { setId: fresh.id, label: 'Token-level', annotator: 'ana', limit: 1 })) as { rows: { feature: number }[] })
      .rows
    const target =
      carried[0] ??
      ((await call('features.list', { setId: fresh.id, annotator: 'ana', label: 'Uninterpretable', limit: 1 })) as { rows: { feature: number }[] }).rows[0]!
    await page.goto(`${w.served.url}#/features?set=${fresh.id}&feature=${target.feature}`)
    await expect
      .poll(() => page.getByTestId('label-of-ana').textContent())
      .toMatch(/carried from feature \d+ of “step 10000 · layer 2 · superseded SAE #\d+” \(decoder cosine -?\d\.\d\d\)/)
    await page.screenshot({ path: join(SCREENSHOTS, 'carried-label.png'), fullPage: true })
    // Nothing in the old sets changed.
    expect((await labelRows()).filter((r) => (r as number[])[0] !== fresh.id)).toEqual(before)
    expect(errors).toEqual([])
    await page.close()
  }, 400_000)

  it('explores drift and formation: population histogram with slider, one feature, formation by label', async () => {
    const { page, errors } = await openPage(w.browser, 1300)
    await page.goto(`${w.served.url}#/dynamics?layer=2`)
    await expect.poll(() => page.locator('[data-testid=drift-histogram] canvas').count(), { timeout: 30_000 }).toBe(1)
    await page.getByTestId('drift-slider').fill('4')
    const first = page.locator('[data-testid^=drift-feature-]').first()
    const feature = (await first.getAttribute('data-testid'))!.replace('drift-feature-', '')
    await first.click()
    await expect.poll(() => page.getByTestId('drift-explorer').textContent(), { timeout: 30_000 }).toContain(`Feature ${feature}`)
    expect(await page.locator('[data-testid=trajectory] canvas').count()).toBe(1)
    expect(await page.locator('[data-testid=formation-curve] canvas').count()).toBe(1)
    await expect.poll(() => page.locator('[data-testid=formation-by-label] canvas').count()).toBe(1)
    await page.screenshot({ path: join(SCREENSHOTS, 'dynamics.png'), fullPage: true })
    expect(errors).toEqual([])
    await page.close()
  })
})

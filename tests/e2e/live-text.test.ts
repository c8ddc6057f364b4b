// Live text on a feature page of the demo series: type text, see the tokens shaded by the feature's activation,
// select a token by click and by keyboard, see the top features there and follow one to its page. Also the
// latency of a request once the model is loaded. FEATURETRACE_E2E_DEMO_PROJECT points at a demo made beforehand;
// otherwise the reduced demo (--small) is built here.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { FeatureSetInfo, FeatureSummary, LiveTextResult } from '../../src/shared/api'
import { CLI } from '../helpers'
import { openPage, SCREENSHOTS, useWorkstation } from './browser'

const TEXT = 'The cat sat on the mat. 東京は日本の首都です。The model learns features during training.'

describe('live text on a feature page', () => {
  const w = useWorkstation({
    prefix: 'ft-e2e-live-',
    prepare(dir) {
      const project = process.env.FEATURETRACE_E2E_DEMO_PROJECT ?? join(dir, 'project')
      if (!process.env.FEATURETRACE_E2E_DEMO_PROJECT) {
        const r = spawnSync(process.execPath, [CLI, 'demo', '--small', '--project', project, '--report', join(dir, 'report')], {
          encoding: 'utf8',
          timeout: 110_000
        })
        expect(r.status, r.stderr).toBe(0)
      }
      return project
    }
  })

  it('types text, shades every token, selects tokens by click and keyboard, and links the top features', async () => {
    const sets = await w.call<FeatureSetInfo[]>('features.sets')
    const set = sets.filter((s) => s.source === 'sae' && !s.superseded).sort((a, b) => (b.step ?? 0) - (a.step ?? 0))[0]!
    // A feature that fires often, so the text is likely to light it.
    const { rows } = await w.call<{ rows: FeatureSummary[] }>('features.list', { setId: set.id, sort: 'density', descending: true, dead: false, limit: 1 })
    const feature = rows[0]!.feature

    // Latency: the first request loads the model in the analysis process, the second finds it loaded.
    const t0 = performance.now()
    const first = await w.call<LiveTextResult>('liveText.run', { setId: set.id, feature, text: TEXT })
    const t1 = performance.now()
    const second = await w.call<LiveTextResult>('liveText.run', { setId: set.id, feature, text: TEXT })
    const t2 = performance.now()
    expect(second.modelCached).toBe(true)
    expect(second.acts).toEqual(first.acts)
    console.log(
      `live text, ${second.tokens.length} tokens on the demo model (step ${set.step}, layer ${set.layer}): first request ${(t1 - t0).toFixed(0)} ms ` +
        `(${first.ms.toFixed(0)} ms in the analysis process, model cached: ${first.modelCached}); second ${(t2 - t1).toFixed(0)} ms (${second.ms.toFixed(0)} ms in the analysis process)`
    )

    const { page, errors } = await openPage(w.browser, 1100)
    await page.goto(`${w.served.url}#/features?set=${set.id}&feature=${feature}`)
    await page.getByTestId('live-text-input').fill(TEXT)
    await page.getByTestId('live-text-run').click()
    const tokens = page.getByTestId('live-text-tokens').locator('[role=option]')
    await tokens.first().waitFor()
    expect(await tokens.count()).toBeGreaterThan(10)
    // Shaded where the feature fires, and the value in each token's label.
    const firing = second.acts.filter((a) => a > 0).length
    expect(firing).toBeGreaterThan(0)
    expect(await page.getByTestId('live-text-tokens').locator('[role=option][style*="background"]').count()).toBeGreaterThan(0)
    expect(await tokens.first().getAttribute('aria-label')).toMatch(/: \d+\.\d{3}$/)
    await expect.poll(() => page.getByTestId('live-text-summary').textContent()).toMatch(new RegExp(`fires on ${firing} of them`))

    // Click a token: the top features there, each a link to its page.
    await tokens.nth(2).click()
    const top = page.getByTestId('live-text-top-features')
    await expect.poll(() => top.textContent()).toMatch(/\(token 3\)/)
    const expected = second.top[second.ids.length > 2 ? 2 : 0]!
    expect(await top.locator('li').count()).toBe(expected.length)
    expect(await top.locator('li a').first().textContent()).toBe(`#${expected[0]!.feature}`)
    // Keyboard: → moves the selection (and focus) to the next token.
    await page.keyboard.press('ArrowRight')
    await expect.poll(() => top.textContent()).toMatch(/\(token 4\)/)
    expect(await page.locator(':focus').getAttribute('aria-selected')).toBe('true')
    await page.getByTestId('live-text').screenshot({ path: join(SCREENSHOTS, 'live-text.png') })
    await page.screenshot({ path: join(SCREENSHOTS, 'live-text-page.png'), fullPage: true })

    // Following a top feature opens its page with the same text run for it.
    const other = second.top[3]!.find((f) => f.feature !== feature)
    if (other) {
      await top.getByTestId(`live-top-${other.feature}`).click()
      await expect.poll(() => page.locator('h2').first().textContent()).toBe(`Feature ${other.feature}`)
      await expect.poll(() => page.getByTestId('live-text-summary').textContent()).toMatch(new RegExp(`feature ${other.feature} fires on`))
    }

    // Too long a text is refused with a message that says what to do.
    await page.getByTestId('live-text-input').fill(Array.from({ length: 600 }, (_, i) => `w${i}`).join(' '))
    await page.getByTestId('live-text-run').click()
    await expect.poll(() => page.getByTestId('live-text-error').textContent()).toMatch(/live text runs at most \d+ tokens at once.*Shorten it/)
    expect(errors).toEqual([])
    await page.close()
  })
})

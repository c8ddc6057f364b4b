import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DEFAULT_NAMES, makeCheckpointSeries } from '../fixtures/checkpoint-series'
import { openPage, SCREENSHOTS, useWorkstation } from './browser'

describe('checkpoint view in Chromium (browser mode)', () => {
  const w = useWorkstation({ prepare: async (dir) => void (await makeCheckpointSeries(join(dir, 'pythia-like'))) })

  it('registers a series, shows it on the timeline and in the table, opens one, verifies it', async () => {
    const { page, errors } = await openPage(w.browser, 860)
    await page.goto(w.served.url)
    await expect.poll(() => page.getByTestId('project-name').textContent()).toContain('project')

    await page.getByTestId('register-folder').fill(join(w.dir, 'pythia-like'))
    await page.getByTestId('register-tokens-per-step').fill('2097152')
    await page.getByTestId('register-button').click()
    await expect.poll(() => page.getByTestId('register-result').textContent()).toContain(`${DEFAULT_NAMES.length} added`)
    const rows = page.locator('[data-testid=checkpoint-table] tbody tr')
    await expect.poll(() => rows.count()).toBe(DEFAULT_NAMES.length)
    expect(await rows.first().textContent()).toContain('step0')
    expect(await rows.last().textContent()).toContain('143,000')
    expect(await page.locator('[data-testid=checkpoint-timeline] canvas').count()).toBeGreaterThan(0)

    await page.getByTestId('checkpoint-row-1000').click()
    const details = page.getByTestId('checkpoint-details')
    await expect.poll(() => details.locator('h2').textContent()).toBe('Step 1,000')
    expect(await details.textContent()).toContain('iter_0001000')
    expect(await details.textContent()).toContain('gpt_neox')
    expect(await details.textContent()).toContain('2.10B')

    await page.getByTestId('verify-button').click()
    await expect.poll(() => page.getByTestId('jobs-panel').textContent(), { timeout: 30_000 }).toContain('done')
    await expect.poll(() => details.textContent()).toContain('model.safetensors')
    await page.screenshot({ path: join(SCREENSHOTS, 'checkpoints.png') })

    // A reload shows the same project state, read back from SQLite.
    await page.reload()
    await expect.poll(() => rows.count()).toBe(DEFAULT_NAMES.length)
    expect(await page.getByTestId('checkpoint-row-1000').textContent()).toContain('ok')
    expect(errors).toEqual([])
    await page.close()
  })
})

describe('browser mode bound beyond loopback', () => {
  const w = useWorkstation({ serveArgs: ['--host', '0.0.0.0'] })

  it('shows nothing without the token and the workstation with it', async () => {
    expect(w.served.token).toBeTruthy()
    const port = new URL(w.served.url.replace('0.0.0.0', '127.0.0.1')).port
    const page = await w.browser.newPage()
    const denied = await page.goto(`http://127.0.0.1:${port}/`)
    expect(denied?.status()).toBe(401)
    expect(await page.textContent('body')).toMatch(/needs its access token/)
    await page.goto(`http://127.0.0.1:${port}/?token=${w.served.token}`)
    expect(new URL(page.url()).search).toBe('')
    await expect.poll(() => page.getByTestId('project-name').textContent()).toContain('project')
    await page.close()
  })
})

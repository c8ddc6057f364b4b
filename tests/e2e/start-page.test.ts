// The start page in Chromium (browser mode shares the desktop app's renderer): recent projects, a new
// project, the About dialog, the compute engine in the status bar, and the demo project opened from it.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Project } from '../../src/core/project'
import { UserSettings } from '../../src/core/user-settings'
import { tempDir } from '../helpers'
import { launchBrowser, openPage, SCREENSHOTS, serve, type Served } from './browser'

describe('the start page in Chromium (browser mode)', () => {
  let t: ReturnType<typeof tempDir>
  let browser: Browser
  let served: Served
  let docs: string
  const projects = (name: string): string => join(t.dir, 'research', name)

  beforeAll(async () => {
    t = tempDir('ft-e2e-start-')
    docs = join(t.dir, 'Documents')
    mkdirSync(docs)
    // Someone who has used FeatureTrace before: two projects still there, one moved away since.
    const settings = new UserSettings(join(t.dir, 'config', 'settings.json'))
    settings.remember(projects('old-run'), 'old-run')
    for (const name of ['llm-jp-3-1.8b', 'pythia-160m']) {
      Project.open(projects(name)).close()
      settings.remember(projects(name), name)
    }
    browser = await launchBrowser()
    served = await serve([], { FEATURETRACE_CONFIG_DIR: join(t.dir, 'config'), FEATURETRACE_DOCUMENTS_DIR: docs })
  })
  afterAll(async () => {
    await browser?.close()
    await served?.stop()
    t.cleanup()
  })

  it('shows the demo, open and create, the recent projects and the compute engine', async () => {
    const { page, errors } = await openPage(browser)
    await page.goto(served.url)
    const start = page.getByTestId('start-page')
    await expect.poll(() => start.count()).toBe(1)
    await expect.poll(() => start.textContent()).toContain(join(docs, 'FeatureTrace', 'Demo'))
    expect(await page.getByTestId('start-demo').textContent()).toContain('Create the demo project')
    const recent = page.getByTestId('start-recent').locator('li')
    await expect.poll(() => recent.count()).toBe(3)
    expect(await recent.nth(0).textContent()).toContain('pythia-160m')
    expect(await recent.nth(2).textContent()).toContain('folder missing')
    expect(await recent.nth(2).locator('button.link').isDisabled()).toBe(true)
    // The browser has no folder dialog: no Browse buttons, paths are typed.
    expect(await start.getByRole('button', { name: 'Browse…' }).count()).toBe(0)
    expect(await page.getByTestId('start-create-path').inputValue()).toBe(join(docs, 'FeatureTrace', 'my-project'))
    // The status bar asks a job worker which engine it runs: here WebAssembly on the CPU, tfjs-node-gpu absent.
    await expect.poll(() => page.getByTestId('status-engine').textContent(), { timeout: 60_000 }).toBe('Compute: ONNX Runtime · CPU')
    expect(await page.getByTestId('status-bar').textContent()).toContain('tfjs-node-gpu is not installed')
    await page.screenshot({ path: join(SCREENSHOTS, 'start-page.png') })

    await page.getByTestId('status-about').click()
    const about = page.getByTestId('about-dialog')
    await expect
      .poll(() =>
        page
          .getByTestId('about-version')
          .textContent()
          .then((t) => t?.trim())
      )
      .toMatch(/^\d+\.\d+\.\d+ \(source checkout, project database schema \d+\)$/)
    expect(await page.getByTestId('about-updates').textContent()).toContain('never connects to the internet')
    await page.screenshot({ path: join(SCREENSHOTS, 'about.png') })
    await page.keyboard.press('Escape')
    await expect.poll(() => about.evaluate((d) => (d as unknown as { open: boolean }).open)).toBe(false)
    expect(errors).toEqual([])
  })

  it('creates a project, lists it first, and comes back to the start page and the project', async () => {
    const { page, errors } = await openPage(browser)
    await page.goto(served.url)
    await page.getByTestId('start-create').click()
    await expect.poll(() => page.getByTestId('project-name').textContent()).toContain('my-project')
    expect(await page.getByTestId('start-page').count()).toBe(0)

    await page.getByTestId('open-start-page').click()
    const recent = page.getByTestId('start-recent').locator('li')
    await expect.poll(() => recent.nth(0).textContent()).toContain('my-project')
    expect(await page.getByTestId('start-back').textContent()).toBe('Back to my-project')
    // Creating where a project is already: refused, saying what to do.
    await page.getByTestId('start-create').click()
    await expect.poll(() => page.getByTestId('start-error').textContent()).toContain('already holds a FeatureTrace project: open it instead')

    await recent.filter({ hasText: 'llm-jp-3-1.8b' }).locator('button.link').click()
    await expect.poll(() => page.getByTestId('project-name').textContent()).toContain('llm-jp-3-1.8b')
    // The server keeps the project open: a reload shows it, not the start page.
    await page.reload()
    await expect.poll(() => page.getByTestId('project-name').textContent()).toContain('llm-jp-3-1.8b')
    expect(await page.getByTestId('start-page').count()).toBe(0)
    expect(errors).toEqual([])
  })

  it('opens the demo project: the series copied into the documents, its pipeline started as jobs', async () => {
    const { page, errors } = await openPage(browser)
    await page.goto(served.url)
    await page.getByTestId('open-start-page').click()
    await page.getByTestId('start-demo').click()
    await expect.poll(() => page.getByTestId('project-name').textContent(), { timeout: 30_000 }).toContain('Demo')
    // The checkpoints are registered from the copy right after it opens; the count follows by event.
    await expect.poll(() => page.getByTestId('project-name').textContent()).toContain('7 checkpoints')
    await expect.poll(() => page.getByTestId('jobs-panel').textContent(), { timeout: 30_000 }).toContain('harvest')
    await page.screenshot({ path: join(SCREENSHOTS, 'start-demo-opened.png') })
    expect(errors).toEqual([])
  })
})

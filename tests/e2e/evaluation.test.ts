// SAE evaluation by splicing in the checkpoint view: the demo project (its pipeline ends with the evaluate-saes job)
// shows loss recovered and the cross-entropies over the series, described in words; "Evaluate SAEs" runs it again.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CLI } from '../helpers'
import { openPage, SCREENSHOTS, useWorkstation } from './browser'

describe('SAE evaluation in the checkpoint view', () => {
  const w = useWorkstation({
    prefix: 'ft-e2e-evaluation-',
    prepare(dir) {
      const project = process.env.FEATURETRACE_E2E_DEMO_PROJECT ?? join(dir, 'project')
      if (!process.env.FEATURETRACE_E2E_DEMO_PROJECT) {
        const r = spawnSync(process.execPath, [CLI, 'demo', '--small', '--project', project, '--report', join(dir, 'report')], {
          encoding: 'utf8',
          timeout: 110_000
        })
        expect(r.status, r.stderr).toBe(0)
        expect(r.stdout).toMatch(/evaluate\s+[\d.]+ s/)
      }
      return project
    }
  })

  it('charts loss recovered, CE clean / spliced / zero and KL over the series, and evaluates again on demand', async () => {
    const evaluations = (await w.call('saes.evaluations', {})) as { step: number; lossRecovered: number; ceClean: number; ceZero: number }[]
    expect(evaluations.length).toBeGreaterThanOrEqual(3)
    const { page, errors } = await openPage(w.browser, 1250)
    await page.goto(w.served.url)
    const chart = page.getByTestId('evaluation-chart')
    await expect.poll(() => chart.locator('canvas').count(), { timeout: 30_000 }).toBe(1)
    const last = evaluations.at(-1)!
    // The description names every step's loss recovered and the last step's cross-entropies.
    const summary = page.getByTestId('evaluation-summary')
    await expect.poll(() => summary.textContent()).toContain(`step ${last.step.toLocaleString('en')} ${last.lossRecovered.toFixed(3)}`)
    expect(await summary.textContent()).toContain(`${last.ceClean.toFixed(3)} nats clean`)
    await page.getByTestId('sae-evaluation').scrollIntoViewIfNeeded()
    await page.screenshot({ path: join(SCREENSHOTS, 'checkpoints-evaluation.png'), fullPage: true })

    // Evaluate again: the button (keyboard) starts the job, and the chart shows its results.
    type Jobs = { kind: string; state: string }[]
    const evaluateJobs = async (): Promise<Jobs> => (await w.call<Jobs>('jobs.list', {})).filter((j) => j.kind === 'evaluate-saes')
    const before = (await evaluateJobs()).length
    const button = page.getByTestId('evaluate-saes')
    await expect.poll(() => button.textContent()).toMatch(/Evaluate \d+ SAEs again/)
    await button.focus()
    await page.keyboard.press('Enter')
    await expect.poll(async () => (await evaluateJobs()).map((j) => j.state), { timeout: 60_000 }).toEqual(Array(before + 1).fill('done'))
    await expect.poll(() => button.textContent()).toMatch(/Evaluate \d+ SAEs again/)
    await expect.poll(() => chart.locator('canvas').count()).toBe(1)
    expect(errors).toEqual([])
    await page.close()
  })
})

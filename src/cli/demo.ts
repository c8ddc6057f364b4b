// `featuretrace demo`: the bundled English/Japanese series end to end, headless, and its report.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openWorkspace, parse, PROJECT, runJob } from './options'

export const DEMO_USAGE = `  demo [--project DIR] [--report DIR] [--small]
        The bundled English/Japanese demo series end to end, headless: register its checkpoints,
        harvest layer 2, train the warm-started SAE series, feature statistics with languages, drift
        and formation (each a job with progress; whatever the project already has is skipped).
        --report writes report.json and report.html (charts inlined, opens offline).
        Default project: projects/demo beside the app. --small: the reduced run of the test suite.`

export async function cmdDemo(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, report: { type: 'string' }, small: { type: 'boolean' } })
  const { DEMO_SETTINGS, SMALL_DEMO_SETTINGS, runDemo } = await import('../core/demo')
  const settings = values.small ? SMALL_DEMO_SETTINGS : DEMO_SETTINGS
  const here = dirname(fileURLToPath(import.meta.url))
  const ws = openWorkspace({ project: values.project ?? join(here, '../../projects/demo') })
  const t0 = performance.now()
  try {
    const stages = await runDemo(ws, { waitFor: (job) => runJob(ws, job), log: (m) => console.log(m) }, settings)
    for (const s of stages) console.log(`${s.name.padEnd(14)} ${s.ran ? `${s.seconds.toFixed(1)} s` : 'already done'}`)
    console.log(`demo project ready in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${ws.requireProject().project.path}`)
    if (values.report) {
      const { writeSeriesReport } = await import('./report/series-report')
      const r = await writeSeriesReport(ws, settings.layer, values.report)
      console.log(`report: ${r.html} and ${r.json}`)
    }
  } finally {
    ws.close()
  }
}

// `featuretrace project` and `featuretrace jobs`: the project itself, its outside inputs, its jobs.
import { call, CliError, parse, PROJECT, requireOptions, withProject } from './options'

export const PROJECT_USAGE = `  project --project DIR                      Show the project (created when the folder is missing or empty).
  project relocate --project DIR --from OLD --to NEW
        Point the checkpoint folders, corpora and stores the project keeps outside its folder, and
        stored under OLD, at the same places under NEW (checked first: each checkpoint needs its
        config.json). Paths inside the project folder are stored relative: it can be moved or copied.`

export const JOBS_USAGE = `  jobs --project DIR [--json]                List jobs and their states.`

export async function cmdProject(args: string[]): Promise<void> {
  if (args[0] === 'relocate') {
    const { values } = parse(args.slice(1), { ...PROJECT, from: { type: 'string' }, to: { type: 'string' } })
    requireOptions('project relocate', values, ['project', 'from', 'to'])
    await withProject(values, async (ws) => {
      const r = await call(ws, 'project.relocate', { from: values.from!, to: values.to! })
      for (const m of r.relocated) console.log(`${m.what}: ${m.from} → ${m.to}`)
      console.log(r.project.missing.length ? `still missing: ${r.project.missing.map((m) => `${m.what} (${m.path})`).join('; ')}` : 'nothing is missing')
    })
    return
  }
  const { values, positionals } = parse(args, PROJECT)
  if (positionals.length) throw new CliError(`Unknown project command "${positionals[0]}". Run \`featuretrace help\` for usage.`)
  await withProject(values, async (ws) => console.log(JSON.stringify(await call(ws, 'project.info'), null, 2)))
}

export async function cmdJobs(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, json: { type: 'boolean' } })
  await withProject(values, async (ws) => {
    const jobs = await call(ws, 'jobs.list')
    if (values.json) console.log(JSON.stringify(jobs, null, 2))
    else for (const j of jobs) console.log([j.id, j.kind, j.state, `${Math.round(j.fraction * 100)}%`, j.createdAt, j.error ?? ''].join('\t'))
  })
}

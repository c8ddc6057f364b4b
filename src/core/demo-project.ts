// The start page's demo project: the bundled series copied into a project in the user's documents, so the
// project never points into the installation (which moves with every update and, as an AppImage, with every
// start), then whatever of the demo pipeline the project lacks, as jobs with progress.
import { cpSync, existsSync, renameSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { ProjectInfo } from '../shared/api'
import { UserError } from '../shared/api'
import { DEMO_SETTINGS, registerDemoCheckpoints, runDemo } from './demo'
import type { Project } from './project'
import type { Workspace } from './services'

/** Inside the demo project, the copy of the bundled series (stored relative, so the project stays portable). */
export const SERIES_DIR = 'series'

export function demoProjectDir(documentsDir: string): string {
  return join(documentsDir, 'FeatureTrace', 'Demo')
}

/** Copies the series into the project folder once, through a `.partial` folder so a copy cut short is redone. */
export function installSeries(source: string, projectDir: string): string {
  const target = join(projectDir, SERIES_DIR)
  if (existsSync(join(target, 'checkpoints'))) return target
  if (!existsSync(join(source, 'checkpoints'))) {
    throw new UserError(`The demo series is missing from this installation (${source} has no checkpoints/).`)
  }
  const partial = `${target}.partial`
  try {
    rmSync(partial, { recursive: true, force: true })
    cpSync(source, partial, { recursive: true })
    renameSync(partial, target)
  } catch (err) {
    throw new UserError(
      `Copying the demo series into ${target} failed: ${(err as Error).message}. Free some space or check the folder's permissions, then open the demo again.`
    )
  }
  return target
}

/** The pipeline running for a project, so opening the demo twice starts it once. */
const pipelines = new WeakMap<Project, Promise<void>>()

/**
 * Opens (creating on first use) the demo project under `documentsDir`, copies the series into it, and starts
 * the demo pipeline in the background. Returns once the project is open with the series' checkpoints registered;
 * the jobs report their progress.
 * The pipeline stops when another project is opened and resumes where it was when the demo is opened again.
 */
export async function openDemoProject(ws: Workspace, options: { source: string; documentsDir: string; log?: (message: string) => void }): Promise<ProjectInfo> {
  const dir = resolve(demoProjectDir(options.documentsDir))
  if (!existsSync(join(dir, SERIES_DIR, 'checkpoints')) && !existsSync(join(options.source, 'checkpoints'))) {
    // Checked before anything is created: an installation without the series makes no empty demo project.
    throw new UserError(`The demo series is missing from this installation (${options.source} has no checkpoints/).`)
  }
  const project = ws.project?.path === dir ? ws.project : ws.open(dir)
  const series = installSeries(options.source, dir)
  if (!pipelines.has(project)) {
    const { jobs } = ws.requireProject()
    const log = options.log ?? (() => {})
    // Registered before the project is shown, so the page opens on the demo's checkpoints; the rest runs as jobs.
    const registered = project.checkpoints.count() === 0 ? registerDemoCheckpoints(ws, series, { log: (m) => log(`demo: ${m}`) }) : Promise.resolve()
    const run = registered
      .then(() =>
        runDemo(
          ws,
          {
            waitFor: async (job) => {
              const done = await jobs.waitFor(job.id)
              if (ws.project !== project) throw new UserError('The demo project was closed: its pipeline resumes when it is opened again.')
              return done
            },
            log: (m) => log(`demo: ${m}`)
          },
          DEMO_SETTINGS,
          series
        )
      )
      .then(() => log('demo: the demo project is complete'))
      .catch((err: Error) => log(`demo: stopped: ${err.message}`))
      .finally(() => pipelines.delete(project))
    pipelines.set(project, run)
    // A registration that fails is logged by the pipeline, as every later stage is.
    await registered.catch(() => {})
  }
  return project.info()
}

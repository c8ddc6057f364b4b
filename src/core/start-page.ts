// The services behind the start page (recent projects, the demo, a new project), the About dialog and the
// compute-engine status; the same in the desktop app and the browser mode.
import { existsSync, readdirSync } from 'node:fs'
import { arch, platform } from 'node:os'
import { join, resolve } from 'node:path'
import { UserError } from '../shared/api'
import { DB_FILE } from './project'
import type { Handlers, Workspace } from './services'
import { SCHEMA_VERSION } from './store/migrations'
import { defaultDocumentsDir } from './user-settings'
import { VERSION } from './version'

type StartHandlers = Pick<Handlers, 'start.page' | 'start.chooseFolder' | 'start.forget' | 'start.openDemo' | 'start.create' | 'app.about' | 'engine.status'>

/** The bundled series, where this installation has one. */
async function demoSource(ws: Workspace): Promise<string | null> {
  if (ws.host.demoSource) return ws.host.demoSource
  try {
    return (await import('./demo')).demoDir()
  } catch {
    return null
  }
}

const documentsDir = (ws: Workspace): string => ws.host.documentsDir ?? defaultDocumentsDir()

export function startHandlers(ws: Workspace): StartHandlers {
  return {
    'start.page': async () => {
      const { demoProjectDir } = await import('./demo-project')
      const demoPath = demoProjectDir(documentsDir(ws))
      const source = await demoSource(ws)
      return {
        recent: ws.host.settings?.recent() ?? [],
        demo: {
          available: source !== null && existsSync(join(source, 'checkpoints')),
          path: demoPath,
          created: existsSync(join(demoPath, DB_FILE))
        },
        projectsFolder: join(documentsDir(ws), 'FeatureTrace'),
        folderDialog: ws.host.chooseFolder !== undefined
      }
    },
    'start.chooseFolder': async ({ purpose }) => {
      if (!ws.host.chooseFolder) {
        throw new UserError("The folder dialog is part of the desktop app; in the browser, type the folder's path.", 'bad-request')
      }
      return { path: await ws.host.chooseFolder(purpose) }
    },
    'start.forget': ({ path }) => ws.host.settings?.forget(path) ?? [],
    'start.openDemo': async () => {
      const source = await demoSource(ws)
      if (!source) throw new UserError('This installation has no demo series.', 'not-found')
      const { openDemoProject } = await import('./demo-project')
      return openDemoProject(ws, { source, documentsDir: documentsDir(ws), log: ws.host.log })
    },
    'start.create': ({ path }) => {
      const at = resolve(path)
      if (existsSync(join(at, DB_FILE))) throw new UserError(`${at} already holds a FeatureTrace project: open it instead.`)
      if (existsSync(at) && readdirSync(at).length > 0) {
        throw new UserError(`${at} is not empty: a new project needs a new or empty folder.`)
      }
      return ws.open(at).info()
    },
    'app.about': () => {
      const about = ws.host.about
      const url = about?.downloadsUrl ?? null
      return {
        name: 'FeatureTrace',
        version: VERSION,
        door: ws.door,
        packaged: about?.packaged ?? false,
        platform: platform(),
        arch: arch(),
        runtime: { node: process.versions.node, electron: about?.electron ?? null, chrome: about?.chrome ?? null },
        schemaVersion: SCHEMA_VERSION,
        updates: {
          url,
          how:
            'FeatureTrace never connects to the internet and does not look for updates. ' +
            (url
              ? `Newer packages are published at ${url}; install one over this one: projects are kept, and a newer FeatureTrace upgrades their database when it opens them.`
              : 'Newer packages come from where this one came from (your group or the project’s releases); or build one from the source with npm run dist (README, “Installing”). Projects are kept, and a newer FeatureTrace upgrades their database when it opens them.')
        },
        settingsFile: ws.host.settings?.file ?? null
      }
    },
    'engine.status': () => ws.engineStatus()
  }
}

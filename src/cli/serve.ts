// `featuretrace serve`: the workstation for a browser, over HTTP and a WebSocket.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startServer } from '../server/server'
import { VERSION } from '../core/version'
import { intOption, openWorkspace, parse, PROJECT } from './options'

export const SERVE_USAGE = `  serve [--project DIR] [--port N] [--host H]
        Serve the workstation to a browser (default 127.0.0.1:5180). Any host other than
        loopback requires the access token printed at start.`

export async function cmdServe(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, port: { type: 'string' }, host: { type: 'string' } })
  // The browser mode keeps recent projects for its start page (FEATURETRACE_CONFIG_DIR, else ~/.config/featuretrace)
  // and puts the demo project under FEATURETRACE_DOCUMENTS_DIR, else ~/Documents.
  const { UserSettings, defaultSettingsFile, defaultDocumentsDir } = await import('../core/user-settings')
  const ws = openWorkspace(values, false, 'browser', {
    settings: new UserSettings(defaultSettingsFile()),
    documentsDir: process.env.FEATURETRACE_DOCUMENTS_DIR || defaultDocumentsDir(),
    log: (message) => console.log(`[featuretrace] ${message}`)
  })
  const here = dirname(fileURLToPath(import.meta.url))
  const server = await startServer({
    workspace: ws,
    host: values.host ?? '127.0.0.1',
    port: intOption(values.port, 'port') ?? 5180,
    staticDir: join(here, '../renderer')
  })
  console.log(`FeatureTrace ${VERSION} serving ${ws.project ? ws.project.path : '(no project open)'}`)
  if (server.token) {
    console.log(`Bound to ${server.host}: every request needs the access token.`)
    console.log(`Access token: ${server.token}`)
  }
  // From a wildcard bind the first address is this machine's on the network: the one to give another machine.
  const [first, ...others] = server.urls
  console.log(`Open ${first}`)
  for (const u of others) console.log(`  or ${u}`)
  const stop = (): void => {
    void server.close().then(() => {
      ws.close()
      process.exit(0)
    })
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

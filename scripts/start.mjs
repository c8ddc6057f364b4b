// `npm start`: install if needed, build if needed, create the demo project on first run (as jobs with
// progress bars; a second start finds it complete and goes on at once), then open the workstation —
// the Electron window where Electron can run, else the browser mode, saying why.
import { spawn, spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { electronBinary, ensureBuild, ensureDependencies, hasDisplay, log, ROOT, commandExists } from './lib.mjs'

const args = process.argv.slice(2)
const flag = args.indexOf('--project')
const chosen = flag >= 0 && args[flag + 1] ? args[flag + 1] : process.env.FEATURETRACE_PROJECT
const project = resolve(chosen ?? join(ROOT, 'projects', 'demo'))
const forceBrowser = args.includes('--browser')

await ensureDependencies()
ensureBuild()

if (!chosen) {
  log(`Preparing the demo project in ${project} (skipped where already done)`)
  const t0 = Date.now()
  const demo = spawnSync(process.execPath, [join(ROOT, 'bin/featuretrace.js'), 'demo', '--project', project], { stdio: 'inherit' })
  if (demo.status !== 0) {
    log('The demo could not be prepared (see above); opening the workstation on what there is.')
  } else log(`Demo ready after ${((Date.now() - t0) / 1000).toFixed(1)} s`)
}

const electron = electronBinary()
if (!forceBrowser && electron.path && hasDisplay()) {
  const { ensureElectronSqlite } = await import('./rebuild-electron.mjs')
  await ensureElectronSqlite()
  log(`Opening the desktop app on ${project}`)
  const child = spawn(electron.path, [ROOT, '--project', project], { stdio: 'inherit' })
  child.on('exit', (code) => process.exit(code ?? 0))
} else {
  const why = forceBrowser ? 'browser mode was asked for' : electron.path ? 'there is no display to open a window on' : electron.why
  log(`Not opening the desktop window: ${why}.`)
  log('Opening the browser mode instead: the same workstation, served on this machine only.')
  const child = spawn(process.execPath, [join(ROOT, 'bin/featuretrace.js'), 'serve', '--project', project], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk)
    const url = /Open (http:\/\/\S+)/.exec(String(chunk))?.[1]
    if (url && hasDisplay() && commandExists('xdg-open')) spawn('xdg-open', [url], { stdio: 'ignore', detached: true }).unref()
  })
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
  child.on('exit', (code) => process.exit(code ?? 0))
}

// Which project a launch of the desktop app names: npm start's --project, the file manager's marker or folder.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { launchArgs, projectFolderOf, projectFromArgs } from '../../src/main/launch'
import { runtimePaths, unpackedPath, workerEnvironment } from '../../src/main/paths'
import { Project, MARKER_FILE } from '../../src/core/project'
import { tempDir } from '../helpers'

const t = tempDir('ft-launch-')
afterAll(() => t.cleanup())

describe('the project a launch names', () => {
  const project = join(t.dir, 'my project')
  Project.open(project).close()
  const marker = join(project, MARKER_FILE)
  const file = join(t.dir, 'notes.txt')
  writeFileSync(file, 'x')

  it('writes a marker into every project folder, naming what it is for', () => {
    expect(JSON.parse(readFileSync(marker, 'utf8'))).toMatchObject({ featuretrace: 'project' })
  })

  it('takes --project first, in either spelling, relative to the working folder', () => {
    expect(projectFromArgs(['--project', 'p'], '/work')).toBe('/work/p')
    expect(projectFromArgs(['--project=/abs/p', marker], '/work')).toBe('/abs/p')
  })

  it("opens the marker's folder, the folder itself, or a file:// URL of either", () => {
    expect(projectFromArgs([marker])).toBe(project)
    expect(projectFromArgs([project])).toBe(project)
    expect(projectFromArgs([pathToFileURL(marker).href])).toBe(project)
    expect(projectFromArgs(['my project/project.ftproj'], t.dir)).toBe(project)
  })

  it("skips Chromium's switches, missing paths and other files", () => {
    expect(projectFromArgs(['--no-sandbox', '--allow-file-access-from-files', join(t.dir, 'gone'), file, marker])).toBe(project)
    expect(projectFromArgs(['--no-sandbox'])).toBeNull()
    expect(projectFromArgs([file])).toBeNull()
    expect(projectFolderOf('file://%')).toBeNull()
  })

  it("drops the app's folder when run as `electron .`, not in a package", () => {
    expect(launchArgs(['/usr/bin/electron', '.', '--project', 'p'], false)).toEqual(['--project', 'p'])
    expect(launchArgs(['/opt/FeatureTrace/featuretrace', marker], true)).toEqual([marker])
    expect(projectFromArgs(launchArgs(['electron', t.dir], false))).toBeNull()
  })
})

describe('the paths the desktop app resolves', () => {
  it('are the checkout itself in development', () => {
    const p = runtimePaths({ appPath: '/repo', resourcesPath: '/usr/lib/electron/resources', packaged: false })
    expect(p).toEqual({
      preload: '/repo/out/preload/index.cjs',
      rendererIndex: '/repo/out/renderer/index.html',
      jobWorker: '/repo/out/main/job-worker.js',
      driftKernel: '/repo/out/main/threads/drift-kernel.js',
      saeKernel: '/repo/out/main/threads/sae-kernel.js',
      sqliteBinding: '/repo/out/native/electron/better_sqlite3.node',
      demo: '/repo/resources/demo'
    })
  })

  it('put native files beside the archive and the demo among the resources in a package', () => {
    const p = runtimePaths({ appPath: '/opt/FT/resources/app.asar', resourcesPath: '/opt/FT/resources', packaged: true })
    expect(p.jobWorker).toBe('/opt/FT/resources/app.asar/out/main/job-worker.js')
    expect(p.sqliteBinding).toBe('/opt/FT/resources/app.asar.unpacked/out/native/electron/better_sqlite3.node')
    expect(p.driftKernel).toBe('/opt/FT/resources/app.asar.unpacked/out/main/threads/drift-kernel.js')
    expect(p.saeKernel).toBe('/opt/FT/resources/app.asar.unpacked/out/main/threads/sae-kernel.js')
    expect(p.demo).toBe('/opt/FT/resources/demo')
    expect(workerEnvironment(p)).toEqual({
      FEATURETRACE_SQLITE_BINDING: p.sqliteBinding,
      FEATURETRACE_DEMO_DIR: p.demo,
      FEATURETRACE_DRIFT_KERNEL: p.driftKernel,
      FEATURETRACE_SAE_KERNEL: p.saeKernel
    })
    expect(unpackedPath('C:\\FT\\resources\\app.asar\\x.node')).toBe('C:\\FT\\resources\\app.asar.unpacked\\x.node')
    expect(unpackedPath('/a/my.asar.d/x')).toBe('/a/my.asar.d/x')
  })
})

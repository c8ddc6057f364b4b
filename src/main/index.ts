// Electron main: windows, menu, validated IPC; the work happens in src/core and in utility processes.
import { app, BrowserWindow, dialog, ipcMain, Menu, session, shell, utilityProcess, type OpenDialogOptions } from 'electron'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { WorkerHandle, WorkerMessage, WorkerSpawner } from '../core/jobs/protocol'
import { Workspace } from '../core/services'
import { useSqliteBinding } from '../core/store/database'
import { UserSettings } from '../core/user-settings'
import type { EventName, EventPayload } from '../shared/api'
import { EVENT_CHANNEL } from '../shared/ipc'
import { registerApiIpc } from './ipc'
import { launchArgs, projectFolderOf, projectFromArgs } from './launch'
import { runtimePaths, workerEnvironment } from './paths'

const paths = runtimePaths({ appPath: app.getAppPath(), resourcesPath: process.resourcesPath, packaged: app.isPackaged })

// better-sqlite3 must be compiled for Electron's ABI: `npm start` (scripts/rebuild-electron.mjs) and the
// package (electron-builder's beforePack) put that build at paths.sqliteBinding, leaving the Node build that
// the CLI, the server and the tests use untouched. The job worker finds it, and the demo, in its environment.
if (existsSync(paths.sqliteBinding)) {
  useSqliteBinding(paths.sqliteBinding)
  Object.assign(process.env, workerEnvironment(paths))
} else if (app.isPackaged) {
  dialog.showErrorBox('FeatureTrace is damaged', `Its database engine is missing (${paths.sqliteBinding}). Reinstall FeatureTrace.`)
  app.exit(1)
} else {
  process.env.FEATURETRACE_DEMO_DIR = paths.demo
}

const spawnUtility: WorkerSpawner = (): WorkerHandle => {
  const child = utilityProcess.fork(paths.jobWorker, [], { serviceName: 'FeatureTrace jobs' })
  return {
    send: (m) => child.postMessage(m),
    onMessage: (listener) => void child.on('message', (m: unknown) => listener(m as WorkerMessage)),
    onExit: (listener) => void child.on('exit', (code) => listener(code)),
    kill: () => void child.kill()
  }
}

/** Where newer packages are published, if whoever packaged this one said so (package.json "featuretrace.downloads"). */
function downloadsUrl(): string | null {
  try {
    const pkg = JSON.parse(readFileSync(join(app.getAppPath(), 'package.json'), 'utf8')) as { featuretrace?: { downloads?: unknown } }
    const url = pkg.featuretrace?.downloads
    return typeof url === 'string' && /^https:\/\//.test(url) ? url : null
  } catch {
    return null
  }
}

const settings = new UserSettings(join(app.getPath('userData'), 'settings.json'))
const windows = new Set<BrowserWindow>()

const workspace = new Workspace('electron', spawnUtility, {
  settings,
  documentsDir: app.getPath('documents'),
  demoSource: paths.demo,
  chooseFolder: async (purpose) => {
    const parent = BrowserWindow.getFocusedWindow() ?? [...windows][0]
    const options: OpenDialogOptions = {
      title: purpose === 'create' ? 'Choose an empty folder for the new project' : 'Open a FeatureTrace project folder',
      buttonLabel: purpose === 'create' ? 'Create Here' : 'Open',
      properties: ['openDirectory', 'createDirectory']
    }
    const result = parent ? await dialog.showOpenDialog(parent, options) : await dialog.showOpenDialog(options)
    return result.canceled ? null : (result.filePaths[0] ?? null)
  },
  about: {
    packaged: app.isPackaged,
    downloadsUrl: downloadsUrl(),
    electron: process.versions.electron ?? null,
    chrome: process.versions.chrome ?? null
  },
  log: (message) => console.log(`[featuretrace] ${message}`)
})

function rendererUrl(): string {
  const dev = process.env.ELECTRON_RENDERER_URL
  return dev && !app.isPackaged ? dev : pathToFileURL(paths.rendererIndex).href
}

function send<E extends EventName>(event: E, payload: EventPayload<E>): void {
  for (const w of windows) if (!w.isDestroyed()) w.webContents.send(EVENT_CHANNEL, event, payload)
}

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1400,
    height: 900,
    title: 'FeatureTrace',
    webPreferences: {
      preload: paths.preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false
    }
  })
  windows.add(win)
  win.on('closed', () => windows.delete(win))
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (url.startsWith('https://')) void shell.openExternal(url)
    return { action: 'deny' }
  })
  win.webContents.on('will-navigate', (e, url) => {
    if (!url.startsWith(rendererUrl())) e.preventDefault()
  })
  void win.loadURL(rendererUrl())
  return win
}

function openProject(path: string): void {
  try {
    workspace.open(path)
  } catch (err) {
    dialog.showErrorBox('Cannot open project', (err as Error).message)
    send('app.showStart', {})
  }
}

async function openProjectDialog(purpose: 'open' | 'create'): Promise<void> {
  const path = await workspace.host.chooseFolder!(purpose)
  if (path) openProject(path)
}

function focusWindow(): void {
  const win = [...windows][0]
  if (!win) return void createWindow()
  if (win.isMinimized()) win.restore()
  win.focus()
}

function buildMenu(): void {
  Menu.setApplicationMenu(
    Menu.buildFromTemplate([
      ...(process.platform === 'darwin' ? [{ role: 'appMenu' as const }] : []),
      {
        label: 'File',
        submenu: [
          { label: 'Start Page', accelerator: 'CmdOrCtrl+Shift+H', click: () => send('app.showStart', {}) },
          { label: 'Open Project…', accelerator: 'CmdOrCtrl+O', click: () => void openProjectDialog('open') },
          { label: 'New Project…', accelerator: 'CmdOrCtrl+N', click: () => void openProjectDialog('create') },
          { type: 'separator' },
          { role: 'quit' }
        ]
      },
      { role: 'editMenu' },
      { role: 'viewMenu' },
      { role: 'windowMenu' },
      { role: 'help', submenu: [{ label: 'About FeatureTrace', click: () => send('app.showAbout', {}) }] }
    ])
  )
}

// One running app: a project opened from the file manager while it runs goes to the open window.
const primary = app.requestSingleInstanceLock()
if (!primary) app.quit()
app.on('second-instance', (_e, argv, workingDirectory) => {
  const project = projectFromArgs(launchArgs(argv, app.isPackaged), workingDirectory)
  if (project && app.isReady()) openProject(project)
  focusWindow()
})

// macOS hands a double-clicked project.ftproj (or a folder dropped on the Dock icon) over as an event, also at launch.
let openedAtLaunch: string | null = null
app.on('open-file', (e, path) => {
  e.preventDefault()
  const folder = projectFolderOf(path)
  if (!folder) return
  if (app.isReady()) {
    openProject(folder)
    focusWindow()
  } else openedAtLaunch = folder
})

app.enableSandbox()

void app.whenReady().then(() => {
  if (!primary) return
  // No web permission (camera, notifications, …) is ever needed.
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false))
  registerApiIpc(ipcMain, workspace, {
    trustedWebContentsIds: () => new Set([...windows].map((w) => w.webContents.id)),
    rendererUrl: rendererUrl()
  })
  workspace.subscribe((event, payload) => send(event, payload))
  // The project this launch names, else the last one opened; with none, the window shows the start page.
  const project = openedAtLaunch ?? projectFromArgs(launchArgs(process.argv, app.isPackaged)) ?? settings.lastProject()
  if (project) openProject(project)
  buildMenu()
  createWindow()
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow()
  })
})

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit()
})

app.on('before-quit', () => workspace.close())

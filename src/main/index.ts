// Electron main: windows, menu, validated IPC; the work happens in src/core and in utility processes.
import { app, BrowserWindow, dialog, ipcMain, Menu, session, shell, utilityProcess } from 'electron'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { WorkerHandle, WorkerMessage, WorkerSpawner } from '../core/jobs/protocol'
import { Workspace } from '../core/services'
import { useSqliteBinding } from '../core/store/database'
import { EVENT_CHANNEL } from '../shared/ipc'
import { registerApiIpc } from './ipc'

const here = dirname(fileURLToPath(import.meta.url))
const appRoot = join(here, '../..')

// better-sqlite3 must be compiled for Electron's ABI; `npm run rebuild:electron` puts that build here,
// leaving the Node build that the CLI, the server and the tests use untouched.
const electronSqlite = join(appRoot, 'out/native/electron/better_sqlite3.node')
if (existsSync(electronSqlite)) useSqliteBinding(electronSqlite)

const spawnUtility: WorkerSpawner = (): WorkerHandle => {
  const child = utilityProcess.fork(join(here, 'job-worker.js'), [], { serviceName: 'FeatureTrace jobs' })
  return {
    send: (m) => child.postMessage(m),
    onMessage: (listener) => void child.on('message', (m: unknown) => listener(m as WorkerMessage)),
    onExit: (listener) => void child.on('exit', (code) => listener(code)),
    kill: () => void child.kill()
  }
}

const workspace = new Workspace('electron', spawnUtility)
const windows = new Set<BrowserWindow>()
const settingsFile = (): string => join(app.getPath('userData'), 'settings.json')

function rendererUrl(): string {
  const dev = process.env.ELECTRON_RENDERER_URL
  return dev && !app.isPackaged ? dev : pathToFileURL(join(here, '../renderer/index.html')).href
}

function rememberProject(path: string): void {
  mkdirSync(app.getPath('userData'), { recursive: true })
  writeFileSync(settingsFile(), JSON.stringify({ lastProject: path }))
}

function initialProject(): string {
  const flag = process.argv.findIndex((a) => a === '--project')
  if (flag >= 0 && process.argv[flag + 1]) return process.argv[flag + 1]!
  try {
    const last = (JSON.parse(readFileSync(settingsFile(), 'utf8')) as { lastProject?: string }).lastProject
    if (last && existsSync(last)) return last
  } catch {
    // No settings yet: first start.
  }
  return join(app.getPath('documents'), 'FeatureTrace', 'default')
}

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1400,
    height: 900,
    title: 'FeatureTrace',
    webPreferences: {
      preload: join(here, '../preload/index.cjs'),
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

async function openProjectDialog(): Promise<void> {
  const result = await dialog.showOpenDialog({
    title: 'Open or create a FeatureTrace project',
    properties: ['openDirectory', 'createDirectory']
  })
  const path = result.filePaths[0]
  if (result.canceled || !path) return
  try {
    workspace.open(path)
    rememberProject(path)
  } catch (err) {
    dialog.showErrorBox('Cannot open project', (err as Error).message)
  }
}

function buildMenu(): void {
  Menu.setApplicationMenu(
    Menu.buildFromTemplate([
      {
        label: 'File',
        submenu: [
          { label: 'Open Project…', accelerator: 'CmdOrCtrl+O', click: () => void openProjectDialog() },
          { type: 'separator' },
          { role: 'quit' }
        ]
      },
      { role: 'editMenu' },
      { role: 'viewMenu' },
      { role: 'windowMenu' }
    ])
  )
}

app.enableSandbox()

void app.whenReady().then(() => {
  // No web permission (camera, notifications, …) is ever needed.
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false))
  registerApiIpc(ipcMain, workspace, {
    trustedWebContentsIds: () => new Set([...windows].map((w) => w.webContents.id)),
    rendererUrl: rendererUrl()
  })
  workspace.subscribe((event, payload) => {
    for (const w of windows) if (!w.isDestroyed()) w.webContents.send(EVENT_CHANNEL, event, payload)
  })
  const project = initialProject()
  try {
    workspace.open(project)
    rememberProject(project)
  } catch (err) {
    dialog.showErrorBox('Cannot open project', (err as Error).message)
  }
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

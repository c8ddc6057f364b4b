// Shared by `npm start` and `npm test`: make a fresh clone runnable without extra steps.
import { execFileSync, spawnSync } from 'node:child_process'
import { lookup } from 'node:dns/promises'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

export function log(message) {
  console.log(`[featuretrace] ${message}`)
}

export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, ...opts })
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`)
  }
}

/** Electron's install step downloads its binary from GitHub; skip it, saying so, where that cannot work. */
async function electronDownloadPossible() {
  if (process.env.ELECTRON_SKIP_BINARY_DOWNLOAD) return false
  if (process.env.ELECTRON_MIRROR) return true
  try {
    await lookup('github.com')
    return true
  } catch {
    return false
  }
}

/** Installs the locked dependencies when node_modules is missing or older than the lockfile. */
export async function ensureDependencies() {
  const marker = join(ROOT, 'node_modules', '.package-lock.json')
  const lock = join(ROOT, 'package-lock.json')
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return
  const env = { ...process.env }
  if (!(await electronDownloadPossible())) {
    log("Electron's binary cannot be downloaded here (github.com is unreachable): installing without it.")
    log('The workstation will open in browser mode; see README "Installing" for the desktop app.')
    env.ELECTRON_SKIP_BINARY_DOWNLOAD = '1'
  }
  // onnxruntime-node's CPU binaries are in its package; its install script would download the CUDA 12 provider.
  env.ONNXRUNTIME_NODE_INSTALL ??= 'skip'
  log('Installing dependencies (npm ci)…')
  run(npm, ['ci', '--no-audit', '--no-fund'], { env })
}

function newestMtime(dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

/** Builds main, preload, CLI, worker and renderer when any source is newer than the build. */
export function ensureBuild({ force = false } = {}) {
  const stamp = join(ROOT, 'out', 'renderer', 'index.html')
  const sources = Math.max(
    newestMtime(join(ROOT, 'src')),
    statSync(join(ROOT, 'electron.vite.config.ts')).mtimeMs,
    statSync(join(ROOT, 'package-lock.json')).mtimeMs
  )
  if (!force && existsSync(stamp) && existsSync(join(ROOT, 'out/main/cli.js')) && statSync(stamp).mtimeMs >= sources) return
  log('Building (electron-vite build)…')
  run(process.execPath, [join(ROOT, 'node_modules/electron-vite/bin/electron-vite.js'), 'build'])
}

/** The Electron binary's path, or null with the reason it cannot be used. */
export function electronBinary() {
  const require = createRequire(import.meta.url)
  try {
    const path = require(join(ROOT, 'node_modules/electron'))
    if (typeof path === 'string' && existsSync(path)) return { path, why: null }
    return { path: null, why: "Electron's binary is not installed (its download was skipped or failed)" }
  } catch (err) {
    const missing = /failed to install correctly/.test(err.message)
    return {
      path: null,
      why: missing ? "Electron's binary is not installed (its download was skipped or failed)" : `Electron is not usable: ${err.message.split('\n')[0]}`
    }
  }
}

export function hasDisplay() {
  return process.platform !== 'linux' || Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY)
}

export function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0
}

export function commandExists(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

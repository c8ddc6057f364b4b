// better-sqlite3 is a native addon: the copy npm built is for Node's ABI (CLI, server, tests). The desktop
// app needs one built for Electron's ABI. We build that in a separate copy and point the Electron main
// process at it (out/native/electron), so both runtimes keep working side by side.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { log, ROOT, run } from './lib.mjs'

export async function ensureElectronSqlite() {
  const electronVersion = JSON.parse(readFileSync(join(ROOT, 'node_modules/electron/package.json'), 'utf8')).version
  const sqliteVersion = JSON.parse(readFileSync(join(ROOT, 'node_modules/better-sqlite3/package.json'), 'utf8')).version
  const outDir = join(ROOT, 'out/native/electron')
  const target = join(outDir, 'better_sqlite3.node')
  const stampFile = join(outDir, 'built-for.txt')
  const stamp = `electron ${electronVersion} better-sqlite3 ${sqliteVersion}`
  if (existsSync(target) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) return
  log(`Building better-sqlite3 ${sqliteVersion} for Electron ${electronVersion}…`)
  const work = join(ROOT, 'out/native/work/better-sqlite3')
  rmSync(work, { recursive: true, force: true })
  cpSync(join(ROOT, 'node_modules/better-sqlite3'), work, { recursive: true })
  rmSync(join(work, 'build'), { recursive: true, force: true })
  const prebuild = join(ROOT, 'node_modules/prebuild-install/bin.js')
  try {
    // A prebuilt binary for Electron's ABI, when the maintainers published one…
    run(process.execPath, [prebuild, '--runtime', 'electron', '--target', electronVersion], { cwd: work })
  } catch {
    // …else compile against Electron's headers (needs a C++ toolchain).
    const gyp = join(process.execPath, '../../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')
    run(process.execPath, [gyp, 'rebuild', '--release', `--target=${electronVersion}`, '--runtime=electron', '--dist-url=https://electronjs.org/headers'], { cwd: work })
  }
  mkdirSync(outDir, { recursive: true })
  copyFileSync(join(work, 'build/Release/better_sqlite3.node'), target)
  const { writeFileSync } = await import('node:fs')
  writeFileSync(stampFile, stamp)
}

if (import.meta.url === `file://${process.argv[1]}`) await ensureElectronSqlite()

// better-sqlite3 is a native addon: the copy npm built is for Node's ABI (CLI, server, tests). The desktop
// app needs one built for Electron's ABI. We build that in a separate copy and point the Electron main
// process and its job worker at it (out/native/electron), so both runtimes keep working side by side.
// `npm start` calls this for the machine it runs on; `npm run dist` calls it from electron-builder's
// beforePack hook for the platform and architecture being packaged (electron-builder.config.js).
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { log, ROOT, run } from './lib.mjs'

export const ELECTRON_SQLITE_DIR = join(ROOT, 'out/native/electron')
export const ELECTRON_SQLITE = join(ELECTRON_SQLITE_DIR, 'better_sqlite3.node')
const STAMP = join(ELECTRON_SQLITE_DIR, 'built-for.txt')

const versionOf = (pkg) => JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version

/** What the binary in out/native/electron must have been built for. */
export function electronSqliteStamp({ platform = process.platform, arch = process.arch } = {}) {
  return `electron ${versionOf('electron')} better-sqlite3 ${versionOf('better-sqlite3')} ${platform}-${arch}`
}

/**
 * Puts better-sqlite3 built for Electron's ABI (and the given platform and architecture) at
 * out/native/electron/better_sqlite3.node, unless the one there already is. The same two steps
 * @electron/rebuild takes: the maintainers' prebuilt binary for that Electron (prebuild-install), else a
 * compile against Electron's headers (node-gyp; needs Python and a C++ toolchain, and only for this machine).
 */
export async function ensureElectronSqlite({ platform = process.platform, arch = process.arch } = {}) {
  const electronVersion = versionOf('electron')
  const stamp = electronSqliteStamp({ platform, arch })
  if (existsSync(ELECTRON_SQLITE) && existsSync(STAMP) && readFileSync(STAMP, 'utf8') === stamp) return ELECTRON_SQLITE
  log(`Building better-sqlite3 ${versionOf('better-sqlite3')} for Electron ${electronVersion} (${platform}-${arch})…`)
  const work = join(ROOT, 'out/native/work/better-sqlite3')
  rmSync(work, { recursive: true, force: true })
  cpSync(join(ROOT, 'node_modules/better-sqlite3'), work, { recursive: true })
  rmSync(join(work, 'build'), { recursive: true, force: true })
  const prebuild = join(ROOT, 'node_modules/prebuild-install/bin.js')
  try {
    // A prebuilt binary for Electron's ABI, when the maintainers published one…
    run(process.execPath, [prebuild, '--runtime', 'electron', '--target', electronVersion, '--platform', platform, '--arch', arch], { cwd: work })
  } catch (err) {
    if (platform !== process.platform || arch !== process.arch) {
      throw new Error(
        `No prebuilt better-sqlite3 for Electron ${electronVersion} on ${platform}-${arch} could be downloaded, and it cannot be ` +
          `compiled for another platform here: package on a ${platform}-${arch} machine. (${err.message})`
      )
    }
    // …else compile against Electron's headers (needs a C++ toolchain).
    const gyp = join(process.execPath, '../../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')
    try {
      run(
        process.execPath,
        [gyp, 'rebuild', '--release', `--target=${electronVersion}`, `--arch=${arch}`, '--runtime=electron', '--dist-url=https://electronjs.org/headers'],
        { cwd: work }
      )
    } catch (gypErr) {
      throw new Error(
        `better-sqlite3 for Electron ${electronVersion} (${platform}-${arch}) could not be made: no prebuilt binary could be downloaded ` +
          `from better-sqlite3's GitHub releases, and compiling it needs Electron's headers from electronjs.org, Python 3 and a C++ ` +
          `toolchain (see the output above). Run this where those are reachable. (${gypErr.message})`
      )
    }
  }
  mkdirSync(ELECTRON_SQLITE_DIR, { recursive: true })
  copyFileSync(join(work, 'build/Release/better_sqlite3.node'), ELECTRON_SQLITE)
  writeFileSync(STAMP, stamp)
  return ELECTRON_SQLITE
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await ensureElectronSqlite()

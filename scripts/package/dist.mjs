// `npm run dist`: the desktop package(s) for the machine this runs on, into dist/ (electron-builder.config.js).
// `npm run dist -- --linux deb`, `-- --win`, … pass their arguments to electron-builder.
// Needs network access at packaging time: electron-builder downloads Electron itself and its packaging
// tools (appimagetool, fpm, NSIS), and better-sqlite3's prebuilt binary for Electron (README "Installing").
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ensureBuild, log, ROOT, run } from '../lib.mjs'
import { writeIcon } from './icon.mjs'

const cli = join(ROOT, 'node_modules/electron-builder/cli.js')
if (!existsSync(cli)) throw new Error('electron-builder is not installed: run `npm ci` (it is a dev dependency).')
ensureBuild({ force: true })
log(`Icon: ${writeIcon()}`)
log('Packaging with electron-builder…')
run(process.execPath, [cli, '--config', 'electron-builder.config.js', '--publish', 'never', ...process.argv.slice(2)])
log(`Packages are in ${join(ROOT, 'dist')}`)

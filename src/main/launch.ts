// Which project a launch of the desktop app names: `--project DIR` (npm start), or what the file manager
// passes when a project is opened from it — a project.ftproj marker, or the folder itself (Windows'
// "Open in FeatureTrace" on folders, a folder dropped on the app). No Electron import: tested directly.
import { statSync } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MARKER_FILE } from '../core/project'

type Kind = 'file' | 'dir' | null
const kindOf = (path: string): Kind => {
  try {
    const st = statSync(path)
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : null
  } catch {
    return null
  }
}

/** The folder a path the file manager passed stands for: a marker's folder, or the folder itself; null for anything else. */
export function projectFolderOf(path: string, cwd: string = process.cwd(), kind: (p: string) => Kind = kindOf): string | null {
  let at = path
  if (at.startsWith('file://')) {
    try {
      at = fileURLToPath(at)
    } catch {
      return null
    }
  }
  at = resolve(cwd, at)
  const k = kind(at)
  if (k === 'dir') return at
  if (k === 'file' && (at.endsWith('.ftproj') || basename(at) === MARKER_FILE)) return dirname(at)
  return null
}

/**
 * The project named by the arguments after the executable (and after the app's folder when run as
 * `electron .`): `--project DIR` / `--project=DIR` first, else the first other argument that is a project
 * marker or a folder. Chromium's and our own switches are skipped. Null: none named, show the start page.
 */
export function projectFromArgs(args: readonly string[], cwd: string = process.cwd(), kind: (p: string) => Kind = kindOf): string | null {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--project' && args[i + 1]) return resolve(cwd, args[i + 1]!)
    if (a.startsWith('--project=')) return resolve(cwd, a.slice('--project='.length))
  }
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--project') {
      i++
      continue
    }
    if (a.startsWith('-')) continue
    const folder = projectFolderOf(a, cwd, kind)
    if (folder) return folder
  }
  return null
}

/** The arguments after the executable: `electron . --project X` has the app's folder first; a package does not. */
export function launchArgs(argv: readonly string[], packaged: boolean): string[] {
  return argv.slice(packaged ? 1 : 2)
}

// How paths are kept in a project database: a path inside the project folder is stored relative to it,
// with POSIX separators, so a moved or copied project reads and writes its own files; a path outside it
// (checkpoint folders, corpora) is stored absolute, as given. Repositories convert both ways.
import { isAbsolute, join, relative, resolve, sep } from 'node:path'

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** True when `path` (absolute) is `folder` itself or lies under it. */
export function isUnder(path: string, folder: string): boolean {
  const rel = relative(folder, path)
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel))
}

/** `path` under `folder`, relative with POSIX separators ('.' for the folder itself). */
function relativePosix(path: string, folder: string): string {
  const rel = relative(folder, path)
  return rel === '' ? '.' : rel.split(sep).join('/')
}

/**
 * Free text (a message, a JSON document) with every mention of `folder` made relative: `folder/x` becomes
 * `x`, `folder` alone becomes `.`; a sibling such as `folder2` is left alone.
 */
export function relativiseText(text: string, folder: string): string {
  const forms = new Set([folder, JSON.stringify(folder).slice(1, -1)])
  let out = text
  for (const form of forms) {
    if (!out.includes(form)) continue
    const seps = [...new Set(['/', sep, JSON.stringify(sep).slice(1, -1)])].map(escapeRegExp).join('|')
    // A name that goes on (folder2, folder.bak) is another folder; a full stop ending a sentence is not.
    const re = new RegExp(`${escapeRegExp(form)}(?:(${seps})|(?![\\w~-]|\\.[\\w~-]))`, 'g')
    out = out.replace(re, (_m, s: string | undefined) => (s ? '' : '.'))
  }
  return out
}

export class ProjectPaths {
  readonly root: string

  constructor(root: string) {
    this.root = resolve(root)
  }

  /** The form a path takes in the database: relative inside the project folder, absolute outside. */
  toStored(path: string): string {
    const abs = resolve(path)
    return isUnder(abs, this.root) ? relativePosix(abs, this.root) : abs
  }

  /** The absolute path of a stored one, against the project's current folder. */
  resolve(stored: string): string {
    return isAbsolute(stored) ? stored : join(this.root, ...stored.split('/'))
  }

  /** Whether a stored path lies inside the project (so moving the project moves it too). */
  isInternal(stored: string): boolean {
    return !isAbsolute(stored)
  }

  /** Free text to store (job messages, errors) with the project folder's name made relative. */
  storedText(text: string): string
  storedText(text: string | null): string | null
  storedText(text: string | null): string | null {
    return text === null ? null : relativiseText(text, this.root)
  }

  /** A value as JSON to store, every mention of the project folder made relative. */
  storedJson(value: unknown): string {
    return relativiseText(JSON.stringify(value), this.root)
  }
}

/** The fields of a job request (and of stored geometry parameters) that name input files. */
export function mapRequestPaths<T>(request: T, map: (path: string) => string): T {
  if (typeof request !== 'object' || request === null) return request
  const r = { ...(request as Record<string, unknown>) }
  if (typeof r.corpus === 'string') r.corpus = map(r.corpus)
  const crystals = r.crystals as { pairs?: unknown } | undefined
  if (crystals && Array.isArray(crystals.pairs)) r.crystals = { ...crystals, pairs: crystals.pairs.map((p) => (typeof p === 'string' ? map(p) : p)) }
  return r as T
}

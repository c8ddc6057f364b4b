// What the app remembers for the person using it, outside any project: the projects they opened, most
// recent first, and which one to reopen on the next start. One small JSON file (Electron's userData in the
// desktop app, the user's config folder in browser mode), written whole and renamed into place.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { z } from 'zod'
import type { RecentProject } from '../shared/start'

/** How many recent projects the start page lists. */
export const RECENT_LIMIT = 12

const SettingsFileSchema = z.object({
  lastProject: z.string().nullable().optional(),
  recent: z.array(z.object({ path: z.string(), name: z.string(), openedAt: z.string() })).optional()
})
type SettingsFile = z.infer<typeof SettingsFileSchema>

export class UserSettings {
  constructor(readonly file: string) {}

  /** The settings as stored; a missing or unreadable file reads as a first start (and is rewritten on the next change). */
  private read(): Required<SettingsFile> {
    try {
      const parsed = SettingsFileSchema.safeParse(JSON.parse(readFileSync(this.file, 'utf8')))
      if (parsed.success) return { lastProject: parsed.data.lastProject ?? null, recent: parsed.data.recent ?? [] }
    } catch {
      // No settings yet, or a file we cannot read: start afresh.
    }
    return { lastProject: null, recent: [] }
  }

  private write(settings: Required<SettingsFile>): void {
    mkdirSync(dirname(this.file), { recursive: true })
    const partial = `${this.file}.partial`
    writeFileSync(partial, JSON.stringify(settings, null, 2))
    renameSync(partial, this.file)
  }

  /** The project to reopen on start: the last one opened, while its folder still holds a project. */
  lastProject(): string | null {
    const last = this.read().lastProject
    return last && existsSync(join(last, 'project.sqlite')) ? last : null
  }

  /** Recent projects, most recent first, each saying whether its folder is still there. */
  recent(): RecentProject[] {
    return this.read().recent.map((r) => ({ ...r, exists: existsSync(join(r.path, 'project.sqlite')) }))
  }

  /** Records an opened project: first in the list, and the one to reopen next time. */
  remember(path: string, name: string = basename(path)): void {
    const at = resolve(path)
    const settings = this.read()
    const recent = [{ path: at, name, openedAt: new Date().toISOString() }, ...settings.recent.filter((r) => r.path !== at)].slice(0, RECENT_LIMIT)
    this.write({ lastProject: at, recent })
  }

  /** Drops a project from the list (its folder is not touched). */
  forget(path: string): RecentProject[] {
    const at = resolve(path)
    const settings = this.read()
    this.write({ lastProject: settings.lastProject === at ? null : settings.lastProject, recent: settings.recent.filter((r) => r.path !== at) })
    return this.recent()
  }
}

/** The browser mode's settings file: FEATURETRACE_CONFIG_DIR, else $XDG_CONFIG_HOME/featuretrace, else ~/.config/featuretrace. */
export function defaultSettingsFile(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.FEATURETRACE_CONFIG_DIR || join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'featuretrace')
  return join(dir, 'settings.json')
}

/** The user's documents folder where there is one (~/Documents), else the home folder. */
export function defaultDocumentsDir(): string {
  const documents = join(homedir(), 'Documents')
  return existsSync(documents) ? documents : homedir()
}

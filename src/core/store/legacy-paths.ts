// The one-time conversion of a database written when every path was stored absolute (before migration 10).
//
// Which folders count as the project's own: the old code wrote its artifacts only at
//   <folder>/artifacts/activations/step<S>/layer<L>       (harvest)
//   <folder>/artifacts/saes/step<S>/layer<L>              (SAE training)
//   <folder>/artifacts/saes/imported/step<S>/layer<L>     (SAE import, always copied in)
// so each harvested activation store and each SAE names, through that layout, a folder the project lived in
// when the row was written. A project moved or copied before this conversion still names its original folder
// there — and the original may still exist — so paths under any of those folders, or under the current one,
// are this project's own and become relative: they are read from the current folder, never from another copy.
// Imported activation stores are no evidence: they may lie in another project's artifacts.
import { isAbsolute } from 'node:path'
import type { Db } from './database'
import { isUnder, ProjectPaths, relativiseText } from './paths'

const OWN_ARTIFACT = /^(.*)[\\/]artifacts[\\/](?:activations|saes(?:[\\/]imported)?)[\\/]step\d+[\\/]layer\d+[\\/]?$/

/** Tables of people's own words (labels, notes, categories): never rewritten. */
const PEOPLES_WORDS = /^(label|taxonomy)/

/** The folders the project was in when its artifacts were written, and the current one; longest first. */
export function formerFolders(db: Db, root: string): string[] {
  const rows = db.prepare('SELECT path FROM activation_store WHERE imported = 0 UNION SELECT path FROM sae').all() as { path: string }[]
  const folders = new Set<string>([root])
  for (const { path } of rows) {
    const m = isAbsolute(path) ? OWN_ARTIFACT.exec(path) : null
    if (m?.[1]) folders.add(m[1])
  }
  return [...folders].sort((a, b) => b.length - a.length)
}

/** A stored string with every path under `folders` made relative (a whole path becomes POSIX-relative). */
function relativiseUnder(value: string, folders: string[]): string {
  for (const f of folders) {
    if (isAbsolute(value) && isUnder(value, f)) return new ProjectPaths(f).toStored(value)
  }
  return folders.reduce((text, f) => relativiseText(text, f), value)
}

/**
 * Rewrites every text value of every table (people's words aside) that names one of the project's folders,
 * so that afterwards no string in the database names the folder. Runs inside the caller's transaction.
 */
export function convertLegacyPaths(db: Db, root: string): { folders: string[]; changed: number } {
  const folders = formerFolders(db, root)
  db.function('featuretrace_relativise', { deterministic: true }, (v: unknown) => (typeof v === 'string' ? relativiseUnder(v, folders) : v))
  const tables = (
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'schema_migration'").all() as { name: string }[]
  )
    .map((t) => t.name)
    .filter((t) => !PEOPLES_WORDS.test(t))
  let changed = 0
  const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`
  for (const table of tables) {
    for (const { name } of db.prepare(`PRAGMA table_info(${quote(table)})`).all() as { name: string }[]) {
      const c = quote(name)
      const names = folders.map(() => `instr(${c}, ?) > 0`).join(' OR ')
      changed += db
        .prepare(`UPDATE ${quote(table)} SET ${c} = featuretrace_relativise(${c}) WHERE typeof(${c}) = 'text' AND (${names})`)
        .run(...folders).changes
    }
  }
  return { folders, changed }
}

import Database from 'better-sqlite3'
import { existsSync } from 'node:fs'
import { UserError } from '../../shared/api'
import { migrations, SCHEMA_VERSION, type Migration } from './migrations'

export type Db = Database.Database

/**
 * Where better-sqlite3's native addon lives when it was built for another runtime (Electron). The desktop
 * app's job worker inherits it from its host in FEATURETRACE_SQLITE_BINDING.
 */
let nativeBinding: string | undefined = process.env.FEATURETRACE_SQLITE_BINDING || undefined
export function useSqliteBinding(path: string | undefined): void {
  nativeBinding = path
}

function connect(file: string, readonly: boolean): Db {
  try {
    return new Database(file, { readonly, fileMustExist: readonly, nativeBinding })
  } catch (err) {
    throw new UserError(`Cannot open the project database ${file}: ${(err as Error).message}`)
  }
}

/** Highest migration recorded in an existing database, read without writing anything. */
export function readSchemaVersion(file: string): number {
  const db = connect(file, true)
  try {
    const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migration'").get()
    if (!table) {
      const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as {
        n: number
      }
      if (tables.n > 0) {
        throw new UserError(
          `${file} is an SQLite database but not a FeatureTrace project (no schema_migration table). ` + 'Choose an empty folder for a new project.'
        )
      }
      return 0
    }
    const row = db.prepare('SELECT max(version) AS v FROM schema_migration').get() as { v: number | null }
    return row.v ?? 0
  } catch (err) {
    if (err instanceof UserError) throw err
    throw new UserError(`${file} is not a readable SQLite database (${(err as Error).message}).`)
  } finally {
    db.close()
  }
}

/**
 * Opens (creating if needed) a project database and brings its schema up to date.
 * A database written by a newer FeatureTrace is refused before anything is written to it.
 */
export function openDatabase(file: string): Db {
  if (existsSync(file)) {
    const found = readSchemaVersion(file)
    if (found > SCHEMA_VERSION) {
      throw new UserError(
        `${file} was written by a newer FeatureTrace (schema ${found}; this version knows up to ${SCHEMA_VERSION}). ` +
          'Update FeatureTrace to open it; the file was not modified.'
      )
    }
  }
  const db = connect(file, false)
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('foreign_keys = ON')
    db.pragma('busy_timeout = 5000')
    // Labels must survive a killed process: FULL syncs the WAL on every commit.
    db.pragma('synchronous = FULL')
    migrate(db)
    return db
  } catch (err) {
    db.close()
    throw err
  }
}

/** Applies the migrations not yet recorded, each in its own transaction, in version order. */
export function migrate(db: Db, list: readonly Migration[] = migrations): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migration (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`)
  const applied = new Set((db.prepare('SELECT version FROM schema_migration').all() as { version: number }[]).map((r) => r.version))
  const record = db.prepare('INSERT INTO schema_migration (version, name, applied_at) VALUES (?, ?, ?)')
  for (const m of [...list].sort((a, b) => a.version - b.version)) {
    if (applied.has(m.version)) continue
    const foreignKeys = db.pragma('foreign_keys', { simple: true }) as number
    if (m.rebuildsTables) db.pragma('foreign_keys = OFF')
    try {
      db.transaction(() => {
        db.exec(m.sql)
        if (m.rebuildsTables) {
          const broken = db.pragma('foreign_key_check') as unknown[]
          if (broken.length) throw new Error(`Migration ${m.version} (${m.name}) would break ${broken.length} foreign keys; nothing was changed.`)
        }
        record.run(m.version, m.name, new Date().toISOString())
      })()
    } finally {
      if (m.rebuildsTables) db.pragma(`foreign_keys = ${foreignKeys ? 'ON' : 'OFF'}`)
    }
  }
}

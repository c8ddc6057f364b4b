import Database from 'better-sqlite3'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { DB_FILE, Project } from '../../src/core/project'
import { migrate, openDatabase } from '../../src/core/store/database'
import { migrations, SCHEMA_VERSION } from '../../src/core/store/migrations'
import { tempDir } from '../helpers'

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex')

describe('project store on real SQLite files', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('creates a project in a missing folder: WAL, foreign keys, every migration recorded', () => {
    t = tempDir()
    const p = Project.open(join(t.dir, 'new', 'nested'))
    expect(existsSync(join(p.path, DB_FILE))).toBe(true)
    expect(existsSync(p.artifactsDir)).toBe(true)
    expect(p.db.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(p.db.pragma('foreign_keys', { simple: true })).toBe(1)
    const applied = p.db.prepare('SELECT version, name FROM schema_migration ORDER BY version').all()
    expect(applied).toEqual(migrations.map((m) => ({ version: m.version, name: m.name })))
    const tables = (p.db.prepare("SELECT name FROM sqlite_master WHERE type='table'").all() as { name: string }[]).map((r) => r.name)
    expect(tables).toEqual(expect.arrayContaining(['project', 'checkpoint', 'job', 'schema_migration']))
    expect(p.info()).toMatchObject({ name: 'nested', schemaVersion: SCHEMA_VERSION, checkpointCount: 0 })
    p.close()
  })

  it('reopens without re-running migrations and keeps the data', () => {
    t = tempDir()
    const dir = join(t.dir, 'p')
    const a = Project.open(dir)
    const created = a.info().createdAt
    a.close()
    const b = Project.open(dir)
    expect(b.info().createdAt).toBe(created)
    expect((b.db.prepare('SELECT count(*) AS n FROM schema_migration').get() as { n: number }).n).toBe(migrations.length)
    b.close()
  })

  it('creates a project in an empty existing folder but refuses a non-empty foreign one', () => {
    t = tempDir()
    const empty = join(t.dir, 'empty')
    mkdirSync(empty)
    Project.open(empty).close()
    const busy = join(t.dir, 'busy')
    mkdirSync(busy)
    writeFileSync(join(busy, 'notes.txt'), 'mine')
    expect(() => Project.open(busy)).toThrow(/busy is not empty and holds no project\.sqlite/)
    expect(readFileSync(join(busy, 'notes.txt'), 'utf8')).toBe('mine')
    expect(existsSync(join(busy, DB_FILE))).toBe(false)
  })

  it('refuses a database written by a newer FeatureTrace and leaves it byte-for-byte unchanged', () => {
    t = tempDir()
    const dir = join(t.dir, 'future')
    Project.open(dir).close()
    const file = join(dir, DB_FILE)
    const raw = new Database(file)
    raw.prepare('INSERT INTO schema_migration (version, name, applied_at) VALUES (?, ?, ?)').run(SCHEMA_VERSION + 1, 'from the future', 'x')
    raw.exec('CREATE TABLE future_thing (x)')
    raw.pragma('wal_checkpoint(TRUNCATE)')
    raw.close()
    const before = sha(file)
    expect(() => Project.open(dir)).toThrow(new RegExp(`newer FeatureTrace \\(schema ${SCHEMA_VERSION + 1}; .*not modified`))
    expect(() => openDatabase(file)).toThrow(/newer FeatureTrace/)
    expect(sha(file)).toBe(before)
  })

  it('refuses SQLite files that are not projects, and files that are not SQLite', () => {
    t = tempDir()
    const other = join(t.dir, 'other')
    mkdirSync(other)
    const raw = new Database(join(other, DB_FILE))
    raw.exec('CREATE TABLE customers (id)')
    raw.close()
    const before = sha(join(other, DB_FILE))
    expect(() => Project.open(other)).toThrow(/not a FeatureTrace project/)
    expect(sha(join(other, DB_FILE))).toBe(before)
    const junk = join(t.dir, 'junk')
    mkdirSync(junk)
    writeFileSync(join(junk, DB_FILE), 'this is not a database at all, just text'.repeat(50))
    expect(() => Project.open(junk)).toThrow(/junk\/project\.sqlite is not a readable SQLite database/)
  })

  it('rolls back a failing migration as a whole and records nothing of it', () => {
    t = tempDir()
    const file = join(t.dir, 'x.sqlite')
    const db = openDatabase(file)
    const broken = { version: SCHEMA_VERSION + 1, name: 'broken', sql: 'CREATE TABLE half_done (x); THIS IS NOT SQL;' }
    expect(() => migrate(db, [...migrations, broken])).toThrow()
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'half_done'").get()).toEqual({ n: 0 })
    expect(db.prepare('SELECT max(version) AS v FROM schema_migration').get()).toEqual({ v: SCHEMA_VERSION })
    db.close()
  })
})

describe('checkpoint registry', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('registers a series once, fills tokens seen, and lets the user correct a step', async () => {
    t = tempDir()
    const { makeCheckpointSeries } = await import('../fixtures/checkpoint-series')
    await makeCheckpointSeries(join(t.dir, 'series'), { names: ['step0', 'step512', 'iter_0001000', 'c143000'] })
    const { discoverCheckpoints } = await import('../../src/core/checkpoints/discover')
    const p = Project.open(join(t.dir, 'p'))
    const first = p.checkpoints.addAll(discoverCheckpoints(join(t.dir, 'series')).found, 2_097_152)
    expect(first.added.map((c) => c.step)).toEqual([0, 512, 1000, 143000])
    expect(first.added[1]!.tokensSeen).toBe(512 * 2_097_152)
    expect(first.added[0]!.weightsBytes).toBeGreaterThan(0)
    const again = p.checkpoints.addAll(discoverCheckpoints(join(t.dir, 'series')).found, undefined)
    expect(again.added).toEqual([])
    expect(again.skipped.every((s) => s.reason === 'already registered')).toBe(true)
    const c1000 = first.added[2]!
    expect(() => p.checkpoints.update(c1000.id, { step: 512 })).toThrow(/Step 512 already belongs to checkpoint step512/)
    expect(p.checkpoints.update(c1000.id, { step: 1024 }).step).toBe(1024)
    expect(p.checkpoints.list().map((c) => c.step)).toEqual([0, 512, 1024, 143000])
    expect(() => p.checkpoints.get(999)).toThrow(/No checkpoint with id 999/)
    p.close()
  })
})

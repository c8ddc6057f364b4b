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

  it('migrates a schema-7 project with SAEs, sets and labels to superseding SAEs without losing a row or a foreign key', () => {
    t = tempDir()
    const file = join(t.dir, 'old.sqlite')
    const db = new Database(file)
    db.pragma('foreign_keys = ON')
    migrate(
      db,
      migrations.filter((m) => m.version <= 7)
    )
    db.exec(`
      INSERT INTO checkpoint (id, step, name, path, model_type, supported, d_model, layers, config_json, registered_at)
        VALUES (1, 100, 'step100', '/ckpt/step100', 'llama', 1, 64, 4, '{}', 'then');
      INSERT INTO sae (id, checkpoint_id, layer, path, preset, d, n, k, warm_started, tokens, steps, created_at)
        VALUES (5, 1, 2, '/p/artifacts/saes/step100/layer2', 'sae-track', 64, 8, 2, 0, 100, 1, 'then');
      INSERT INTO feature_set (id, name, source, sae_id, checkpoint_id, layer, n_features, created_at) VALUES (3, 'step 100 · layer 2', 'sae', 5, 1, 2, 2, 'then');
      INSERT INTO feature (set_id, feature) VALUES (3, 0), (3, 1);
      INSERT INTO label (set_id, feature, annotator, category, updated_at) VALUES (3, 1, 'ana', 'Token-level', 'then');
      INSERT INTO label_event (set_id, feature, annotator, category_after, note_after, at) VALUES (3, 1, 'ana', 'Token-level', '', 'then');
      INSERT INTO geometry_result (analysis, checkpoint_id, sae_id, layer, params_json, summary_json, result_json, created_at)
        VALUES ('galaxy', 1, 5, 2, '{}', '{}', '{}', 'then');
    `)
    migrate(db)
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1)
    expect(db.pragma('foreign_key_check')).toEqual([])
    expect(db.prepare('SELECT id, path, superseded_by, superseded_at FROM sae').all()).toEqual([
      { id: 5, path: '/p/artifacts/saes/step100/layer2', superseded_by: null, superseded_at: null }
    ])
    expect(db.prepare('SELECT sae_id FROM feature_set').all()).toEqual([{ sae_id: 5 }])
    expect(db.prepare('SELECT sae_id FROM geometry_result').all()).toEqual([{ sae_id: 5 }])
    expect(db.prepare('SELECT feature, annotator, category, origin FROM label').all()).toEqual([
      { feature: 1, annotator: 'ana', category: 'Token-level', origin: null }
    ])
    // One current SAE per checkpoint and layer, enforced by the database.
    const insert =
      "INSERT INTO sae (checkpoint_id, layer, path, preset, d, n, k, warm_started, tokens, steps, created_at) VALUES (1, 2, ?, 'x', 64, 8, 2, 0, 0, 0, 'now')"
    expect(() => db.prepare(insert).run('/elsewhere')).toThrow(/UNIQUE/)
    // Labelled features cannot be deleted, not even by a cascade; unlabelled ones can.
    expect(() => db.prepare('DELETE FROM feature_set WHERE id = 3').run()).toThrow(/keeps labelled features/)
    db.prepare('DELETE FROM feature WHERE set_id = 3 AND feature = 0').run()
    // A checkpoint removed under a set detaches the set; its features and labels stay.
    db.prepare('DELETE FROM checkpoint WHERE id = 1').run()
    expect(db.prepare('SELECT sae_id, checkpoint_id FROM feature_set').all()).toEqual([{ sae_id: null, checkpoint_id: null }])
    expect(db.prepare('SELECT count(*) AS n FROM label_event').get()).toEqual({ n: 1 })
    expect(db.prepare('SELECT count(*) AS n FROM label').get()).toEqual({ n: 1 })
    db.close()
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

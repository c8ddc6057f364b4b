// Portable projects: a project built by the demo pipeline (checkpoints, activations, SAEs, feature sets,
// labels, dynamics, geometry) is moved, then copied while the original still exists; each opens on its own
// files, its jobs write only inside it, and no string in its database names another folder. A database
// written the old way (absolute paths) is converted once when opened, even as a copy of a live original.
import Database from 'better-sqlite3'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Job } from '../../src/shared/api'
import { runDemo, SMALL_DEMO_SETTINGS, type DemoSettings } from '../../src/core/demo'
import { nodeWorkerSpawner } from '../../src/core/jobs/spawn'
import { Project } from '../../src/core/project'
import { callService, Workspace } from '../../src/core/services'
import { BUILT_WORKER, tempDir } from '../helpers'

const TINY: DemoSettings = { ...SMALL_DEMO_SETTINGS, maxTokens: 2048, n: 64, k: 4, batchSize: 256, tokens: 8192, warmupSteps: 5 }
const LAYER = TINY.layer

/** Every file and folder under `dir`, with size, mtime and content hash: equal snapshots mean nothing changed. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d).sort()) {
      const abs = join(d, name)
      const st = statSync(abs)
      if (st.isDirectory()) {
        out[`${rel}${name}/`] = 'dir'
        walk(abs, `${rel}${name}/`)
      } else out[`${rel}${name}`] = `${st.size}:${st.mtimeMs}:${createHash('sha256').update(readFileSync(abs)).digest('hex')}`
    }
  }
  walk(dir, '')
  return out
}

/** Table.column of every TEXT or BLOB value in the database that contains `needle`. */
function stringsNaming(dbFile: string, needle: string): string[] {
  const db = new Database(dbFile, { readonly: true })
  const found = new Set<string>()
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]
    expect(tables.length).toBeGreaterThan(10)
    for (const { name } of tables) {
      for (const row of db.prepare(`SELECT * FROM "${name}"`).iterate() as Iterable<Record<string, unknown>>) {
        for (const [col, v] of Object.entries(row)) {
          if ((typeof v === 'string' && v.includes(needle)) || (Buffer.isBuffer(v) && v.includes(Buffer.from(needle)))) found.add(`${name}.${col}`)
        }
      }
    }
  } finally {
    db.close()
  }
  return [...found]
}

async function withWorkspace<T>(dir: string, work: (ws: Workspace, project: Project) => Promise<T>): Promise<T> {
  const ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
  try {
    const project = ws.open(dir)
    return await work(ws, project)
  } finally {
    ws.close()
  }
}

async function runJob(ws: Workspace, request: Parameters<typeof callService<'jobs.start'>>[2]): Promise<Job> {
  const job = await callService(ws, 'jobs.start', request)
  const end = await ws.requireProject().jobs.waitFor(job.id)
  expect(end.state, end.error ?? '').toBe('done')
  return end
}

/** What a user sees of the project: a dashboard with its label, dynamics and a stored geometry result. */
async function readEverything(ws: Workspace): Promise<unknown> {
  const sets = (await callService(ws, 'features.sets')).filter((s) => s.layer === LAYER).sort((a, b) => a.step! - b.step!)
  const last = sets.at(-1)!
  const detail = await callService(ws, 'features.get', { setId: last.id, feature: 3 })
  const overview = await callService(ws, 'dynamics.overview', { layer: LAYER })
  const feature = await callService(ws, 'dynamics.feature', { layer: LAYER, feature: 3 })
  const galaxy = await callService(ws, 'geometry.results', { analysis: 'galaxy', layer: LAYER })
  const result = await callService(ws, 'geometry.result', { id: galaxy[0]!.id })
  return {
    sets: sets.map((s) => [s.step, s.nFeatures]),
    examples: detail.examples.length,
    histogram: detail.histogram,
    labels: detail.labels.map((l) => [l.annotator, l.category, l.note]),
    totalDrift: overview.totalDrift,
    cosToFinal: feature.cosToFinal,
    galaxy: [galaxy.map((g) => g.step), (result.result as { alpha: number }).alpha]
  }
}

describe('a moved or copied project', () => {
  let t: ReturnType<typeof tempDir>
  let first: string
  let seen: unknown

  beforeAll(async () => {
    t = tempDir('ft-portable-')
    first = join(t.dir, 'first-place', 'project')
    await withWorkspace(first, async (ws, project) => {
      await runDemo(ws, { waitFor: (job) => ws.requireProject().jobs.waitFor(job.id) }, TINY)
      await runJob(ws, { kind: 'geometry', analysis: 'galaxy', layer: LAYER, galaxy: { sample: 40, dims: 8, bootstraps: 3 }, backend: 'wasm' })
      const last = project.features
        .sets()
        .filter((s) => s.layer === LAYER)
        .sort((a, b) => a.step! - b.step!)
        .at(-1)!
      await callService(ws, 'labels.set', { setId: last.id, feature: 3, annotator: 'alice', category: 'Token-level', note: 'kana' })
      seen = await readEverything(ws)
    })
  }, 600_000)
  afterAll(() => t?.cleanup())

  it('stores its own files relative to its folder', () => {
    expect(stringsNaming(join(first, 'project.sqlite'), first)).toEqual([])
    const db = new Database(join(first, 'project.sqlite'), { readonly: true })
    const paths = db.prepare('SELECT path FROM sae UNION ALL SELECT path FROM activation_store').all() as { path: string }[]
    db.close()
    expect(paths).toHaveLength(6)
    for (const { path } of paths) expect(path).toMatch(/^artifacts\/(saes|activations)\/step\d+\/layer2$/)
  })

  it('moved to another folder, reads its dashboards, labels, dynamics and geometry there and runs a job on its own files', async () => {
    const moved = join(t.dir, 'second-place', 'project')
    mkdirSync(join(t.dir, 'second-place'))
    renameSync(first, moved)
    await withWorkspace(moved, async (ws, project) => {
      expect(project.info().missing).toEqual([])
      expect(await readEverything(ws)).toEqual(seen)
      for (const s of project.saes.list()) expect(s.path.startsWith(`${moved}/artifacts/saes/`)).toBe(true)
      // Lobes read the SAEs and activation stores, which now exist only in the new place.
      await runJob(ws, {
        kind: 'geometry',
        analysis: 'lobes',
        layer: LAYER,
        lobes: { ks: [2], metric: 'phi', permutations: 5, blockSize: 16 },
        backend: 'wasm'
      })
      expect(project.geometry.list('lobes', LAYER)).toHaveLength(3)
    })
    expect(stringsNaming(join(moved, 'project.sqlite'), first)).toEqual([])
    expect(stringsNaming(join(moved, 'project.sqlite'), moved)).toEqual([])
    renameSync(moved, first)
  })

  it('copied while the original exists, works on its own files and leaves the original byte for byte unchanged', async () => {
    const copy = join(t.dir, 'copy-place', 'project')
    cpSync(first, copy, { recursive: true })
    const before = snapshot(first)
    await withWorkspace(copy, async (ws, project) => {
      expect(await readEverything(ws)).toEqual(seen)
      const step = project.checkpoints.list().sort((a, b) => a.step - b.step)[0]!
      await runJob(ws, {
        kind: 'harvest',
        checkpointIds: [step.id],
        corpus: project.activations.list()[0]!.corpus,
        layer: 1,
        context: 64,
        maxTokens: 1024,
        seed: 0
      })
      await runJob(ws, { kind: 'train-series', checkpointIds: [step.id], layer: 1, n: 32, k: 4, tokens: 2048, batchSize: 256, warmupSteps: 2, seed: 0 })
      await runJob(ws, { kind: 'feature-stats', checkpointIds: [step.id], layer: 1 })
      expect(project.features.sets().filter((s) => s.layer === 1)).toHaveLength(1)
      const sae = project.saes.list().find((s) => s.layer === 1)!
      expect(sae.path).toBe(join(copy, 'artifacts', 'saes', `step${step.step}`, 'layer1'))
      expect(existsSync(join(sae.path, 'cfg.json'))).toBe(true)
      expect(existsSync(join(copy, 'artifacts', 'activations', `step${step.step}`, 'layer1', 'manifest.json'))).toBe(true)
    })
    expect(snapshot(first)).toEqual(before)
    expect(existsSync(join(first, 'artifacts', 'saes', 'step0', 'layer1'))).toBe(false)
    expect(stringsNaming(join(copy, 'project.sqlite'), first)).toEqual([])
    expect(stringsNaming(join(copy, 'project.sqlite'), copy)).toEqual([])
  })

  it('written the old way (absolute paths), converts once when opened, a copy of a live original included', async () => {
    // The old code stored every path absolute: write the project's paths back that way, and forget migration 10.
    const old = join(t.dir, 'old-place', 'project')
    cpSync(first, old, { recursive: true })
    const db = new Database(join(old, 'project.sqlite'))
    db.prepare("UPDATE sae SET path = ? || '/' || path").run(old)
    db.prepare("UPDATE activation_store SET path = ? || '/' || path").run(old)
    const step0 = (db.prepare('SELECT id FROM checkpoint ORDER BY step LIMIT 1').get() as { id: number }).id
    db.prepare(
      "INSERT INTO activation_store (checkpoint_id, layer, path, rows, d, dtype, context, corpus, imported, created_at) VALUES (?, 3, '/elsewhere/other/artifacts/activations/step0/layer3', 10, 64, 'f16', 64, '/elsewhere/corpus.jsonl', 1, 'x')"
    ).run(step0)
    db.prepare('UPDATE job SET error = ? WHERE id = (SELECT min(id) FROM job)').run(`Missing ${old}/artifacts/saes/step0/layer2/cfg.json; see ${old}.`)
    const geometryId = (db.prepare('SELECT min(id) AS id FROM geometry_result').get() as { id: number }).id
    db.prepare('UPDATE geometry_result SET params_json = ? WHERE id = ?').run(
      JSON.stringify({ seed: 0, crystals: { pairs: [`${old}/pairs/en-ja.tsv`, '/shared/pairs.tsv'] } }),
      geometryId
    )
    db.exec('DROP TABLE path_conversion_pending; DELETE FROM schema_migration WHERE version = 10')
    db.close()
    expect(stringsNaming(join(old, 'project.sqlite'), old).sort()).toEqual(['activation_store.path', 'geometry_result.params_json', 'job.error', 'sae.path'])

    const copy = join(t.dir, 'old-copy', 'project')
    cpSync(old, copy, { recursive: true })
    const original = snapshot(old)
    await withWorkspace(copy, async (ws, project) => {
      for (const s of project.saes.list()) expect(s.path.startsWith(`${copy}/artifacts/saes/`)).toBe(true)
      const stores = project.activations.list()
      expect(stores.filter((s) => !s.imported).every((s) => s.path.startsWith(`${copy}/artifacts/activations/`))).toBe(true)
      // An imported store is no evidence of where the project lived, and is not this project's file.
      expect(stores.find((s) => s.imported)!.path).toBe('/elsewhere/other/artifacts/activations/step0/layer3')
      expect(project.info().missing.map((m) => [m.kind, m.path])).toEqual([
        ['activations', '/elsewhere/other/artifacts/activations/step0/layer3'],
        ['corpus', '/elsewhere/corpus.jsonl']
      ])
      expect(project.jobs.list().at(-1)!.error).toBe('Missing artifacts/saes/step0/layer2/cfg.json; see ..')
      expect((project.geometry.get(geometryId)!.params as { crystals: { pairs: string[] } }).crystals.pairs).toEqual([
        join(copy, 'pairs/en-ja.tsv'),
        '/shared/pairs.tsv'
      ])
      expect(await readEverything(ws)).toEqual(seen)
      const applied = project.db.prepare('SELECT version FROM schema_migration WHERE version = 10').get()
      expect(applied).toEqual({ version: 10 })
      expect(project.db.prepare('SELECT count(*) AS n FROM path_conversion_pending').get()).toEqual({ n: 0 })
    })
    expect(stringsNaming(join(copy, 'project.sqlite'), old)).toEqual([])
    expect(stringsNaming(join(copy, 'project.sqlite'), copy)).toEqual([])
    expect(snapshot(old)).toEqual(original)
    // The original, opened where it is, converts the same way: its own paths become relative.
    await withWorkspace(old, async (_ws, project) => {
      for (const s of project.saes.list()) expect(s.path.startsWith(`${old}/artifacts/saes/`)).toBe(true)
    })
    expect(stringsNaming(join(old, 'project.sqlite'), old)).toEqual([])
  })
})

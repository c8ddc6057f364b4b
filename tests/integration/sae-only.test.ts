// SAE-only projects (issue 14, point 9): SAEs imported for steps with no registered checkpoint folder make
// checkpoints without weights (migration 11: path and layers NULL). What works on SAEs alone (drift, the
// feature's trajectory, galaxy geometry) works; what needs the model (harvest, verification, crystals) or
// activations (statistics, formation) says so, by step; activations made elsewhere make formation work;
// registering the folder later gives the entry its weights. Checked through the services every door calls
// (the data the checkpoint view and the import dialog show) and through the CLI.
import Database from 'better-sqlite3'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { computeDrift } from '../../src/core/analysis/drift'
import { galaxyOfSae } from '../../src/core/analysis/geometry/galaxy'
import { geometryItems, runGeometryItem } from '../../src/core/analysis/geometry/job'
import { ActivationStoreWriter } from '../../src/core/io/activation-store'
import { nodeWorkerSpawner } from '../../src/core/jobs/spawn'
import { callService, Workspace } from '../../src/core/services'
import { migrate } from '../../src/core/store/database'
import { migrations } from '../../src/core/store/migrations'
import { initBackend } from '../../src/core/tf/backend'
import { Rng } from '../../src/core/random'
import type { GeometryJobRequest } from '../../src/shared/geometry'
import { makeCheckpointSeries } from '../fixtures/checkpoint-series'
import { saeFixtures, type SaeFixtures } from '../fixtures/sae-fixtures'
import { BUILT_WORKER, CLI, tempDir } from '../helpers'

const never = { signal: new AbortController().signal, progress: () => {} }
const STEPS = [0, 100, 1000]

describe('SAE-only projects', () => {
  let t: ReturnType<typeof tempDir>
  let fx: SaeFixtures
  let series: string
  let store: string
  let n = 0
  beforeAll(async () => {
    await initBackend('cpu')
    t = tempDir()
    fx = saeFixtures()
    series = join(t.dir, 'ckpts')
    await makeCheckpointSeries(series, { names: STEPS.map((s) => `step${s}`), dModel: fx.d_in, layers: 4 })
    // Activations harvested elsewhere: the same token positions at every step, as one corpus and seed give.
    store = join(t.dir, 'store')
    const w = ActivationStoreWriter.begin(
      store,
      {
        model: 'elsewhere',
        modelType: 'llama',
        checkpointStep: 1000,
        layer: 2,
        finalNorm: false,
        d: fx.d_in,
        dtype: 'f32',
        context: 8,
        bos: false,
        seed: 0,
        corpus: 'synthetic',
        maxTokens: null,
        dropShort: false,
        createdBy: 'test'
      },
      64
    )
    if ('complete' in w) throw new Error('store exists')
    const rng = new Rng(9)
    for (let doc = 0; doc < 40; doc++)
      await w.appendSequence(
        Float32Array.from({ length: 8 * fx.d_in }, () => 2 * rng.gaussian() + 0.3),
        doc,
        [...Array(8).keys()],
        Array.from({ length: 8 }, () => rng.int(20))
      )
    await w.finish(
      Array.from({ length: 40 }, (_, id) => ({ id, lang: 'en', source: 'synthetic' })),
      (id) => ` tok${id}`
    )
  }, 120_000)
  afterAll(() => t.cleanup())

  function workspace(): Workspace {
    // Real workers: the import and the dynamics queries run in them as from any door.
    const ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    ws.open(join(t.dir, `project-${n++}`))
    return ws
  }

  it('migration 11 keeps every checkpoint and SAE row and foreign key, and lets a checkpoint have no path and layers (both or neither)', () => {
    const file = join(t.dir, 'v8.sqlite')
    const db = new Database(file)
    db.pragma('foreign_keys = ON')
    migrate(
      db,
      migrations.filter((m) => m.version <= 8)
    )
    db.exec(`
      INSERT INTO checkpoint (id, step, name, path, model_type, supported, d_model, layers, heads, vocab_size, tokens_seen, weights_bytes, config_json, verify_status, verify_report_json, registered_at)
        VALUES (1, 100, 'step100', '/ckpt/step100', 'llama', 1, 64, 4, 2, 1000, 5e6, 1234, '{"model_type":"llama"}', 'ok', '{"ok":true}', 'then');
      INSERT INTO activation_store (checkpoint_id, layer, path, rows, d, dtype, context, corpus, created_at) VALUES (1, 2, '/acts', 10, 64, 'f16', 64, 'c', 'then');
      INSERT INTO sae (id, checkpoint_id, layer, path, preset, d, n, k, warm_started, tokens, steps, created_at)
        VALUES (5, 1, 2, '/p/artifacts/saes/step100/layer2', 'sae-track', 64, 8, 2, 0, 100, 1, 'then');
      INSERT INTO feature_set (id, name, source, sae_id, checkpoint_id, layer, n_features, created_at) VALUES (3, 'step 100 · layer 2', 'sae', 5, 1, 2, 2, 'then');
    `)
    const before = db.prepare('SELECT * FROM checkpoint').all()
    migrate(db)
    expect(db.prepare('SELECT * FROM checkpoint').all()).toEqual(before)
    expect(db.pragma('foreign_key_check')).toEqual([])
    expect(db.prepare('SELECT id, hook FROM sae').all()).toEqual([{ id: 5, hook: null }])
    const weightless =
      "INSERT INTO checkpoint (step, name, path, model_type, supported, d_model, layers, config_json, registered_at) VALUES (?, 'x', ?, 'unknown', 0, 64, ?, '{}', 'now')"
    db.prepare(weightless).run(200, null, null)
    db.prepare(weightless).run(300, null, null)
    expect(() => db.prepare(weightless).run(400, null, 4)).toThrow(/CHECK/)
    expect(() => db.prepare(weightless).run(400, '/w', null)).toThrow(/CHECK/)
    // Deleting a checkpoint still cascades to its SAE and stores and detaches its sets: the references survived the rebuild.
    db.prepare('DELETE FROM checkpoint WHERE id = 1').run()
    expect(db.prepare('SELECT count(*) AS n FROM sae').get()).toEqual({ n: 0 })
    expect(db.prepare('SELECT count(*) AS n FROM activation_store').get()).toEqual({ n: 0 })
    expect(db.prepare('SELECT checkpoint_id FROM feature_set').all()).toEqual([{ checkpoint_id: null }])
    db.close()
  })

  it('import into an empty project makes SAE-only checkpoints; drift, trajectories and galaxy work; harvest, statistics, verification, crystals and formation say what they need', async () => {
    const ws = workspace()
    const project = ws.requireProject().project
    try {
      const path = join(fx.dir, 'sparsify-series')
      const scan = await callService(ws, 'saes.scanImport', { path })
      expect(scan.problems).toEqual([])
      expect(scan.found.map((s) => [s.step, s.newCheckpoint, s.checkpointId, s.hook, s.stream])).toEqual(
        STEPS.map((s) => [s, true, null, 'layers.1', 'residual'])
      )
      expect(scan.found[0]!.notes.join('\n')).toMatch(/step 0 has no registered checkpoint: the import records it as an SAE-only checkpoint/)
      const infos = await callService(ws, 'saes.import', { path })
      // The data the checkpoint view shows.
      const list = await callService(ws, 'checkpoints.list')
      expect(list.map((c) => [c.step, c.path, c.layers, c.dModel, c.supported, c.modelType])).toEqual(
        STEPS.map((s) => [s, null, null, fx.d_in, false, 'unknown'])
      )
      const detail = await callService(ws, 'checkpoints.get', { id: list[0]!.id })
      expect(detail.config).toMatchObject({ sae_only: true, format: 'sparsify' })
      expect((await callService(ws, 'saes.list')).map((s) => [s.step, s.layer, s.hook, s.checkpointId])).toEqual(
        STEPS.map((s, i) => [s, 2, 'layers.1', list[i]!.id])
      )

      // Drift on the SAEs alone, matched (independent SAEs), equal to computeDrift on the imported folders.
      const overview = await callService(ws, 'dynamics.overview', { layer: 2 })
      const drift = await computeDrift(
        infos.map((s) => s.path),
        { match: true },
        never
      )
      expect(overview).toMatchObject({ steps: STEPS, n: fx.d_sae, warmStarted: false, matchMethod: drift.matchMethod })
      expect(overview.totalDrift).toEqual(Array.from({ length: fx.d_sae }, (_, i) => 1 - drift.cosToFinal[i]!))
      const feature = await callService(ws, 'dynamics.feature', { layer: 2, feature: 3 })
      expect(feature.cosToFinal).toEqual(STEPS.map((_, s) => drift.cosToFinal[s * fx.d_sae + 3]))
      expect(feature.trajectory).toHaveLength(3)
      expect(feature.formation).toBeNull()
      expect(feature.formationUnavailable).toMatch(
        /Steps 0, 100, 1000 have an SAE but no layer-2 activations, which formation needs \(drift needs only the SAEs\); steps 0, 100, 1000 are SAE-only .* import-activations/
      )

      // Galaxy geometry: the job's items on SAE-only checkpoints, the same numbers as on the folder.
      const request = {
        kind: 'geometry',
        analysis: 'galaxy',
        layer: 2,
        checkpointIds: [],
        seed: 0,
        galaxy: { sample: 40, dims: 10, bootstraps: 3 }
      } as GeometryJobRequest
      const items = geometryItems(project, request)
      expect(items.map((i) => [i.step, i.sae])).toEqual(infos.map((s) => [s.step, s.path]))
      const item = await runGeometryItem(request, items[2]!, [], never)
      if (item.analysis !== 'galaxy') throw new Error('not a galaxy result')
      const g = item.result
      expect(g.alpha).toBe((await galaxyOfSae(infos[2]!.path, { entropySample: 40, entropyDims: 10, bootstraps: 3, seed: 0 })).alpha)
      expect(Number.isFinite(g.alpha)).toBe(true)

      // What needs the model or activations says so, naming the steps.
      const start = (req: unknown): Promise<unknown> => callService(ws, 'jobs.start', req as never)
      await expect(start({ kind: 'harvest', corpus: join(t.dir, 'nope.jsonl'), layer: 2 })).rejects.toThrow(
        /Steps 0, 100, 1000 are SAE-only checkpoints \(imported SAEs, no weights registered\): harvesting activations needs the model\. Register the checkpoint folders with `featuretrace checkpoints add FOLDER`.* import-activations/
      )
      await expect(start({ kind: 'harvest', corpus: join(t.dir, 'nope.jsonl'), layer: 2, checkpointIds: [list[1]!.id] })).rejects.toThrow(
        /Step 100 is an SAE-only checkpoint/
      )
      await expect(start({ kind: 'feature-stats', layer: 2 })).rejects.toThrow(
        /Step 0 is an SAE-only checkpoint .*: feature statistics need layer-2 activations, and harvesting them needs the model/
      )
      await expect(start({ kind: 'verify-checkpoints' })).rejects.toThrow(/no checkpoints with weights to verify: every registered checkpoint is SAE-only/)
      await expect(start({ kind: 'verify-checkpoints', checkpointIds: [list[0]!.id] })).rejects.toThrow(
        /Step 0 is an SAE-only checkpoint .*verifying weight files needs the model/
      )
      const pairs = join(t.dir, 'pairs.tsv')
      writeFileSync(pairs, 'king\tqueen\nman\twoman\n')
      await expect(start({ kind: 'geometry', analysis: 'crystals', layer: 2, crystals: { pairs: [pairs] } })).rejects.toThrow(
        /Step 0 is an SAE-only checkpoint .*crystals .* needs the model.*run galaxy/
      )
      await expect(start({ kind: 'dynamics', layer: 2 })).rejects.toThrow(/no layer-2 activations, which formation needs .* SAE-only/)
      // None of the refused requests made a job: the only one is the import's (an import is a job).
      expect((await callService(ws, 'jobs.list')).map((j) => j.kind)).toEqual(['sae-import'])

      // Activations made elsewhere: formation works on the SAE-only series.
      for (const c of list) await callService(ws, 'activations.import', { path: store, checkpointId: c.id })
      const formed = await callService(ws, 'dynamics.feature', { layer: 2, feature: 3 })
      expect(formed.formationUnavailable).toBeNull()
      expect(formed.formation!.m.sae).toHaveLength(3)
      expect(formed.formation!.m.sae.every(Number.isFinite)).toBe(true)

      // Registering the folders later gives the SAE-only entries their weights; the SAEs stay on them.
      const reg = await callService(ws, 'checkpoints.register', { folder: series })
      expect(reg.added.map((c) => [c.id, c.step, c.layers, c.modelType])).toEqual(list.map((c) => [c.id, c.step, 4, 'gpt_neox']))
      expect((await callService(ws, 'checkpoints.list')).every((c) => c.path !== null && c.supported)).toBe(true)
      expect((await callService(ws, 'saes.list')).map((s) => s.checkpointId)).toEqual(list.map((c) => c.id))
    } finally {
      ws.close()
    }
  })

  it("a folder whose width differs from an SAE-only checkpoint's SAEs is not attached to it", async () => {
    const ws = workspace()
    try {
      await callService(ws, 'saes.import', { path: join(fx.dir, 'saelens-topk'), step: 100 })
      const wide = join(t.dir, 'wide')
      await makeCheckpointSeries(wide, { names: ['step100'], dModel: 2 * fx.d_in, layers: 4 })
      const reg = await callService(ws, 'checkpoints.register', { folder: wide })
      expect(reg.added).toEqual([])
      expect(reg.skipped.map((s) => s.reason)).toEqual([
        `step 100 is an SAE-only checkpoint whose SAEs read d=${fx.d_in}, but this folder has d_model=${2 * fx.d_in}`
      ])
    } finally {
      ws.close()
    }
  })

  it('in a project with weights, a step without a checkpoint needs --sae-only; with it the step becomes SAE-only beside the others', async () => {
    const ws = workspace()
    try {
      await callService(ws, 'checkpoints.register', { folder: series })
      const path = join(fx.dir, 'saelens-topk')
      const scan = await callService(ws, 'saes.scanImport', { path, step: 5000 })
      expect(scan.found[0]!.newCheckpoint).toBe(false)
      expect(scan.problems.map((p) => p.reason)).toEqual([
        expect.stringMatching(/no registered checkpoint at step 5000; register its folder first, or import with --sae-only/)
      ])
      const [sae] = await callService(ws, 'saes.import', { path, step: 5000, saeOnly: true })
      const list = await callService(ws, 'checkpoints.list')
      expect(list.map((c) => [c.step, c.path === null])).toEqual([...STEPS.map((s) => [s, false]), [5000, true]])
      expect(sae).toMatchObject({ step: 5000, layer: 2, hook: 'blocks.1.hook_resid_post', checkpointId: list[3]!.id })
      // Harvesting every checkpoint takes those with weights.
      await expect(callService(ws, 'jobs.start', { kind: 'harvest', corpus: join(t.dir, 'nope.jsonl'), layer: 2 } as never)).rejects.toThrow(
        /Missing corpus file/
      )
    } finally {
      ws.close()
    }
  })

  it('CLI: import-sae into an empty project, checkpoints list shows them SAE only, galaxy runs, harvest-series and formation exit 2 saying what they need', () => {
    const ft = (...a: string[]): { status: number | null; stdout: string; stderr: string } => spawnSync(process.execPath, [CLI, ...a], { encoding: 'utf8' })
    const dir = join(t.dir, 'cli-sae-only')
    const r = ft('import-sae', join(fx.dir, 'sparsify-series'), '--project', dir)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/found +sparsify +step 0 \(new, SAE only\) layer 2 +d_in 16 d_sae 64 TopK k=8, BF16, input none, hook layers\.1 /)
    expect(r.stdout).toMatch(/note +step 1000 has no registered checkpoint: the import records it as an SAE-only checkpoint/)
    expect(r.stdout).toMatch(/imported step 1000 layer 2 \(hook layers\.1\): 64 latents/)
    const list = ft('checkpoints', 'list', '--project', dir)
    expect(
      list.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split('\t').slice(1, 6))
    ).toEqual(STEPS.map((s) => [String(s), `step${s}`, 'SAE only', '16', '-']))
    const galaxy = ft('geometry', 'galaxy', '--project', dir, '--layer', '2', '--sample', '40', '--dims', '10', '--bootstraps', '3', '--backend', 'cpu')
    expect(galaxy.status, galaxy.stderr).toBe(0)
    expect(galaxy.stdout.match(/^step \d+: \{"alpha":/gm)).toHaveLength(3)
    const corpus = join(t.dir, 'corpus.jsonl')
    writeFileSync(corpus, '{"text": "hello"}\n')
    const harvest = ft('harvest-series', '--project', dir, '--corpus', corpus, '--layer', '2')
    expect(harvest.status).toBe(2)
    expect(harvest.stderr).toMatch(/Steps 0, 100, 1000 are SAE-only checkpoints .*harvesting activations needs the model/)
    const formation = ft('formation', '--project', dir, '--features', '1,2', '--out', join(t.dir, 'f.json'), '--layer', '2')
    expect(formation.status).toBe(2)
    expect(formation.stderr).toMatch(/no layer-2 activations, which formation needs \(drift needs only the SAEs\); steps 0, 100, 1000 are SAE-only/)
  }, 120_000)
})

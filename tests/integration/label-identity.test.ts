// A label belongs to a feature, not to a computation: recomputing statistics with other options and retraining an
// SAE keep every label and every event; labels can be carried to the retrained SAE, and say where they came from.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiReply, CallName, CallOutput, FeatureSetInfo, Job, Label, LabelEvent } from '../../src/shared/api'
import { nodeWorkerSpawner } from '../../src/core/jobs/spawn'
import { createHandlers, dispatch, Workspace } from '../../src/core/services'
import { tinyModels } from '../fixtures/tiny-models'
import { BUILT_WORKER, CLI, tempDir } from '../helpers'

describe('labels survive recomputation and retraining', () => {
  let t: ReturnType<typeof tempDir>
  let ws: Workspace
  let h: ReturnType<typeof createHandlers>
  async function call<C extends CallName>(name: C, payload?: unknown): Promise<CallOutput<C>> {
    const reply = (await dispatch(h, name, payload)) as ApiReply<CallOutput<C>>
    if (!reply.ok) throw new Error(`${name}: ${reply.error.message}`)
    return reply.result
  }
  async function runJob(request: Record<string, unknown>): Promise<Job> {
    const job = await call('jobs.start', request)
    const done = await ws.requireProject().jobs.waitFor(job.id)
    if (done.state !== 'done') throw new Error(`${String(request.kind)} ended ${done.state}: ${done.error ?? ''}`)
    return done
  }
  /** Every label and event of the project, by set id, for before/after comparison. */
  function snapshot(): { labels: unknown[]; events: unknown[] } {
    const db = ws.requireProject().project.db
    return {
      labels: db.prepare('SELECT set_id, feature, annotator, category, note, updated_at FROM label ORDER BY set_id, feature, annotator').all(),
      events: db.prepare('SELECT id, set_id, feature, annotator, category_after, note_after, at FROM label_event ORDER BY id').all()
    }
  }

  beforeAll(async () => {
    t = tempDir()
    const root = tinyModels()
    for (const s of [0, 10, 100]) cpSync(join(root, 'models', 'gpt_neox'), join(t.dir, 'series', `step${s}`), { recursive: true })
    const text = 'The cat sat on the mat. The dog sat on the log. Language models learn features during training. '.repeat(8)
    writeFileSync(
      join(t.dir, 'c.jsonl'),
      Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: `${i} ${text}`, lang: i % 2 ? 'en' : 'xx' })).join('\n') + '\n'
    )
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    ws.open(join(t.dir, 'p'))
    h = createHandlers(ws)
    await call('checkpoints.register', { folder: join(t.dir, 'series') })
    await runJob({ kind: 'harvest', corpus: join(t.dir, 'c.jsonl'), layer: 2, context: 32 })
    await runJob({ kind: 'train-series', layer: 2, preset: 'sae-track', n: 64, k: 4, tokens: 8192, batchSize: 128, backend: 'wasm' })
    await runJob({ kind: 'feature-stats', layer: 2 })
  }, 180_000)
  afterAll(() => {
    ws.close()
    t.cleanup()
  })

  it('keeps every label and event through recomputed statistics and a retrained SAE, and carries labels with their origin', async () => {
    const sets = await call('features.sets')
    expect(sets.map((s) => s.name)).toEqual(['step 0 · layer 2', 'step 10 · layer 2', 'step 100 · layer 2'])
    const [, s10, s100] = sets as [FeatureSetInfo, FeatureSetInfo, FeatureSetInfo]
    const live = async (set: FeatureSetInfo) => (await call('features.list', { setId: set.id, dead: false, limit: 5 })).rows.map((r) => r.feature)
    const f10 = await live(s10)
    const f100 = await live(s100)
    // Two checkpoints, two annotators, a relabel and a note: events to keep.
    await call('labels.set', { setId: s10.id, feature: f10[0], annotator: 'ana', category: 'Token-level' })
    await call('labels.set', { setId: s10.id, feature: f10[0], annotator: 'ana', category: 'Concept-level (synonymy)', note: 'cat and dog' })
    await call('labels.set', { setId: s10.id, feature: f10[1], annotator: 'ben', category: 'Uninterpretable' })
    await call('labels.set', { setId: s100.id, feature: f100[0], annotator: 'ana', category: 'Token-level' })
    await call('labels.set', { setId: s100.id, feature: f100[1], annotator: 'ana', category: 'Concept-level (semantic similarity)', note: 'training' })
    await call('labels.set', { setId: s100.id, feature: f100[1], annotator: 'ben', category: 'Concept-level (semantic similarity)' })
    const before = snapshot()
    expect(before.labels).toHaveLength(5)
    expect(before.events).toHaveLength(6)

    // Recompute with other options: the job says what it replaces, then updates the sets in place.
    const stats = { kind: 'feature-stats', layer: 2, examples: 7, topN: 3, language: { rule: 'tags' }, languageThreshold: 0.6 }
    const replaces = await call('jobs.replaces', stats)
    expect(replaces.replaces.join(' ')).toMatch(/3 feature sets.*in place.*5 labels stay/)
    expect(replaces.labelsKept).toBe(5)
    await runJob(stats)
    const after = await call('features.sets')
    expect(after.map((s) => s.id)).toEqual(sets.map((s) => s.id))
    expect(after.every((s) => s.updatedAt !== null)).toBe(true)
    expect(snapshot()).toEqual(before)
    const dash = await call('features.get', { setId: s10.id, feature: f10[0] })
    expect(dash.examples.filter((e) => e.sampler === 'top').length).toBeLessThanOrEqual(3)
    expect(dash.labels).toMatchObject([{ annotator: 'ana', category: 'Concept-level (synonymy)', note: 'cat and dog', origin: null }])
    expect((await call('labels.history', { setId: s10.id, feature: f10[0] })).map((e) => e.categoryAfter)).toEqual(['Token-level', 'Concept-level (synonymy)'])

    // Retrain step 100's SAE: without retrain nothing is replaced; with it, the old SAE is kept as superseded.
    const checkpoints = await call('checkpoints.list')
    const c100 = checkpoints.find((c) => c.step === 100)!
    const retrain = {
      kind: 'train-series',
      layer: 2,
      checkpointIds: [c100.id],
      preset: 'sae-track',
      n: 64,
      k: 4,
      tokens: 8192,
      batchSize: 128,
      backend: 'wasm',
      seed: 7
    }
    expect((await call('jobs.replaces', { ...retrain, retrain: false })).replaces).toEqual([])
    const kept = await runJob({ ...retrain, retrain: false })
    expect(kept.result).toMatchObject({ saes: 0, kept: expect.stringMatching(/steps 100/) })
    expect((await call('jobs.replaces', { ...retrain, retrain: true })).replaces.join(' ')).toMatch(
      /steps 100.*kept as superseded.*1 feature sets and every label/
    )
    const oldSae = (await call('saes.list')).find((s) => s.checkpointId === c100.id)!
    await runJob({ ...retrain, retrain: true })
    const all = await call('saes.list', { includeSuperseded: true })
    const current = await call('saes.list')
    expect(current).toHaveLength(3)
    expect(all).toHaveLength(4)
    const newSae = current.find((s) => s.checkpointId === c100.id)!
    expect(newSae.id).not.toBe(oldSae.id)
    expect(newSae.path).not.toBe(oldSae.path)
    expect(existsSync(join(oldSae.path, 'sae_weights.safetensors'))).toBe(true)
    expect(all.find((s) => s.id === oldSae.id)).toMatchObject({ supersededBy: newSae.id, supersededAt: expect.any(String) })
    // The old set is still there, renamed and marked, with every label and event.
    const old = (await call('features.sets')).find((s) => s.id === s100.id)!
    expect(old).toMatchObject({ superseded: true, saeId: oldSae.id, labelCount: 3, name: `step 100 · layer 2 · superseded SAE #${oldSae.id}` })
    expect(snapshot()).toEqual(before)
    expect((await call('features.get', { setId: s100.id, feature: f100[1] })).labels.map((l) => l.annotator)).toEqual(['ana', 'ben'])

    // Statistics of the layer now cover the current SAEs: the new SAE gets its own set, the superseded one is untouched.
    await runJob({ kind: 'feature-stats', layer: 2 })
    expect(snapshot()).toEqual(before)
    const fresh = (await call('features.sets')).find((s) => s.saeId === newSae.id)!
    expect(fresh).toMatchObject({ name: 'step 100 · layer 2', superseded: false, labelCount: 0 })

    // Carry: a preview with cosines, then labels copied as new events that name their origin.
    const preview = await call('labels.carryPreview', { fromSetId: s100.id })
    expect(preview.to.id).toBe(fresh.id)
    expect(preview.pairs.map((p) => p.fromFeature)).toEqual([f100[0], f100[1]])
    expect(new Set(preview.pairs.map((p) => p.toFeature)).size).toBe(2)
    for (const p of preview.pairs) expect(p.cosine).toBeGreaterThan(-1.0001)
    // The terminal door shows the same matches; --dry-run writes nothing.
    const cli = spawnSync(
      process.execPath,
      [CLI, 'labels', 'carry', '--project', join(t.dir, 'p'), '--from', String(s100.id), '--min-cosine=-1', '--dry-run'],
      { encoding: 'utf8' }
    )
    expect(cli.status, cli.stderr).toBe(0)
    for (const p of preview.pairs) expect(cli.stdout).toContain(`${p.fromFeature}\t${p.toFeature}\t${p.cosine!.toFixed(4)}\t`)
    expect(snapshot()).toEqual(before)
    const carried = await call('labels.carry', { fromSetId: s100.id, minCosine: -1 })
    expect(carried).toEqual({ carried: 3, keptExisting: 0, belowThreshold: 0, toSetId: fresh.id })
    const pair = preview.pairs.find((p) => p.fromFeature === f100[1])!
    const moved = await call('features.get', { setId: fresh.id, feature: pair.toFeature! })
    expect(moved.labels.map((l: Label) => [l.annotator, l.category, l.note])).toEqual([
      ['ana', 'Concept-level (semantic similarity)', 'training'],
      ['ben', 'Concept-level (semantic similarity)', '']
    ])
    expect(moved.labels[0]!.origin).toEqual({ setId: s100.id, setName: old.name, feature: f100[1], saeId: oldSae.id, cosine: pair.cosine })
    const events = (await call('labels.history', { setId: fresh.id, feature: pair.toFeature! })) as LabelEvent[]
    expect(events.every((e) => e.origin?.setId === s100.id)).toBe(true)
    // Carrying again keeps what is there; the old set and its history are still intact.
    expect(await call('labels.carry', { fromSetId: s100.id, minCosine: -1 })).toMatchObject({ carried: 0, keptExisting: 3 })
    expect(await call('labels.carry', { fromSetId: s100.id, minCosine: 1.0 })).toMatchObject({ carried: 0, belowThreshold: expect.any(Number) })
    expect(snapshot().events).toHaveLength(9)
    // A carried label is undone like any other.
    const undone = await call('labels.undo', { annotator: 'ben', setId: fresh.id })
    expect(undone).toMatchObject({ feature: pair.toFeature, category: null })

    // The last line of defence: the database itself refuses to drop labelled features.
    const db = ws.requireProject().project.db
    expect(() => db.prepare('DELETE FROM feature_set WHERE id = ?').run(s10.id)).toThrow(/keeps labelled features/)
    expect(() => db.prepare('DELETE FROM feature WHERE set_id = ? AND feature = ?').run(s100.id, f100[0])).toThrow(/keeps labelled features/)
    expect(snapshot().labels).toHaveLength(7)
  }, 240_000)
})

// Feature sets, imports and labels on a real project database.
import Database from 'better-sqlite3'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { composition } from '../../src/core/analysis/composition'
import { importFeatureSet, IMPORT_ANNOTATOR } from '../../src/core/analysis/import-features'
import { Project } from '../../src/core/project'
import { callService, Workspace } from '../../src/core/services'
import type { CallInput, CallName, CallOutput, Label } from '../../src/shared/api'
import { writeFeatureSet } from '../fixtures/feature-sets'
import { tempDir } from '../helpers'

describe('feature sets and labels', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('imports a feature-example set per checkpoint, with labels, languages and searchable top tokens', () => {
    t = tempDir()
    const p = Project.open(join(t.dir, 'p'))
    const file = join(t.dir, 'f.jsonl')
    writeFeatureSet(file, { checkpoints: ['10', '988240'], features: 30, labels: ['Token-level', 'Uninterpretable'] })
    const sets = importFeatureSet(p, file, 'paper')
    expect(sets.map((s) => [s.name, s.nFeatures, s.checkpointLabel])).toEqual([
      ['paper @ 10', 30, '10'],
      ['paper @ 988240', 30, '988240']
    ])
    const detail = p.features.get(sets[0]!.id, 0)
    expect(detail.examples).toHaveLength(8)
    expect(detail.examples[0]!.tokens).toHaveLength(12)
    expect(detail.langClass).toBe('en')
    expect(p.features.get(sets[0]!.id, 1).langClass).toBe('ja')
    expect(detail.labels).toEqual([expect.objectContaining({ annotator: IMPORT_ANNOTATOR, category: 'Token-level', note: 'note 0' })])
    const all = p.features.list({ setId: sets[0]!.id, limit: 1000 })
    expect(all.total).toBe(30)
    expect(p.features.list({ setId: sets[0]!.id, lang: 'ja' }).total).toBe(10)
    expect(p.features.list({ setId: sets[0]!.id, search: 'Tokyo' }).rows.every((r) => r.topTokens.includes('Tokyo'))).toBe(true)
    expect(p.features.list({ setId: sets[0]!.id, label: 'Token-level', annotator: IMPORT_ANNOTATOR }).rows.map((r) => r.feature)).toEqual([0])
    expect(p.features.list({ setId: sets[0]!.id, sort: 'maxAct', descending: true, limit: 3 }).rows[0]!.maxAct).toBe(
      Math.max(...all.rows.map((r) => r.maxAct!))
    )
    // indexOf places a feature where the same query lists it, or nowhere when the filters leave it out.
    for (const q of [
      { sort: 'maxAct' as const, descending: true },
      { sort: 'density' as const },
      { lang: 'ja' },
      { sort: 'lang' as const, descending: true }
    ]) {
      const rows = p.features.list({ setId: sets[0]!.id, ...q, limit: 1000 }).rows.map((r) => r.feature)
      for (let f = 0; f < 30; f++) expect(p.features.indexOf({ setId: sets[0]!.id, ...q }, f)).toBe(rows.includes(f) ? rows.indexOf(f) : null)
    }
    expect(() => importFeatureSet(p, file, 'paper')).toThrow(/already exists/)
    p.close()
  })

  it('refuses bad files whole: unknown labels, duplicate features, malformed lines', () => {
    t = tempDir()
    const p = Project.open(join(t.dir, 'p'))
    const file = join(t.dir, 'bad.jsonl')
    writeFileSync(file, JSON.stringify({ feature: 1, examples: [], label: 'Great feature' }) + '\n')
    expect(() => importFeatureSet(p, file)).toThrow(/labels that are not in this project's taxonomy: Great feature/)
    writeFileSync(file, [1, 1].map((f) => JSON.stringify({ checkpoint: 5, feature: f, examples: [] })).join('\n'))
    expect(() => importFeatureSet(p, file)).toThrow(/feature 1 appears twice for checkpoint "5"/)
    writeFileSync(file, '{"feature": 1, "examples": [{"tokens": ["a"], "acts": [-1]}]}')
    expect(() => importFeatureSet(p, file)).toThrow(/bad\.jsonl, line 1: examples\.0\.acts\.0/)
    expect(p.features.sets()).toEqual([])
    p.close()
  })

  it('keeps every change: set, change, clear, undo in order, per annotator, with history', () => {
    t = tempDir()
    const p = Project.open(join(t.dir, 'p'))
    const file = join(t.dir, 'f.jsonl')
    writeFeatureSet(file, { checkpoints: [1], features: 5 })
    const [set] = importFeatureSet(p, file)
    const id = set!.id
    p.labels.setLabel(id, 0, 'ana', 'Token-level')
    p.labels.setLabel(id, 0, 'ana', 'Concept-level (synonymy)', 'translation pair')
    p.labels.setLabel(id, 1, 'ana', 'Uninterpretable')
    p.labels.setLabel(id, 0, 'ben', 'Token-level')
    expect(() => p.labels.setLabel(id, 0, 'ana', 'Nonsense')).toThrow(/not a category/)
    expect(() => p.labels.setLabel(id, 99, 'ana', 'Token-level')).toThrow(/Feature 99 is not in set/)
    expect(p.labels.undo('ana')).toMatchObject({ feature: 1, category: null })
    expect(p.labels.labels(id, 1)).toEqual([])
    expect(p.labels.undo('ana')).toMatchObject({ feature: 0, category: 'Token-level', note: '' })
    expect(p.labels.labels(id, 0).map((l) => [l.annotator, l.category])).toEqual([
      ['ana', 'Token-level'],
      ['ben', 'Token-level']
    ])
    expect(p.labels.undo('ana')).toMatchObject({ feature: 0, category: null })
    expect(p.labels.undo('ana')).toBeNull()
    const history = p.labels.history(id, 0)
    expect(history.map((h) => [h.annotator, h.categoryAfter, h.undoes !== null])).toEqual([
      ['ana', 'Token-level', false],
      ['ana', 'Concept-level (synonymy)', false],
      ['ben', 'Token-level', false],
      ['ana', 'Token-level', true],
      ['ana', null, true]
    ])
    p.close()
  })

  it('edits the taxonomy within its limits', () => {
    t = tempDir()
    const p = Project.open(join(t.dir, 'p'))
    expect(p.taxonomy.names()).toEqual(['Token-level', 'Concept-level (synonymy)', 'Concept-level (semantic similarity)', 'Uninterpretable'])
    expect(p.taxonomy.set(['Token', 'Concept', 'Noise'])).toEqual(['Token', 'Concept', 'Noise'])
    expect(() => p.taxonomy.set(['a', 'a'])).toThrow(/distinct/)
    expect(() => p.taxonomy.set(Array.from({ length: 10 }, (_, i) => `c${i}`))).toThrow(/At most 9/)
    p.close()
  })
})

describe('composition of labels and languages per checkpoint', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('counts labels (one annotator or the majority), languages, bilingual features by interpretability, and agreement', () => {
    t = tempDir()
    const p = Project.open(join(t.dir, 'p'))
    const file = join(t.dir, 'f.jsonl')
    writeFeatureSet(file, { checkpoints: ['10', '1000'], features: 9 })
    const [early, late] = importFeatureSet(p, file, 'paper')
    // Features 2, 5, 8 are bilingual ("mix") by construction of the fixture's vocabularies.
    expect(p.features.get(early!.id, 2).langClass).toBe('mix')
    for (const f of [0, 1, 2]) p.labels.setLabel(early!.id, f, 'ana', 'Token-level')
    p.labels.setLabel(early!.id, 5, 'ana', 'Uninterpretable')
    for (const f of [0, 1]) p.labels.setLabel(early!.id, f, 'ben', 'Token-level')
    p.labels.setLabel(early!.id, 2, 'ben', 'Uninterpretable')
    p.labels.setLabel(early!.id, 5, 'ben', 'Uninterpretable')
    const ana = composition(p, 'ana')
    expect(ana.map((c) => c.name)).toEqual(['paper @ 10', 'paper @ 1000'])
    expect(ana[0]).toMatchObject({
      features: 9,
      labels: { 'Token-level': 3, Uninterpretable: 1, 'Concept-level (synonymy)': 0 },
      unlabelled: 5,
      languages: { en: 3, ja: 3, mix: 3 },
      mix: { interpretable: 1, uninterpretable: 1, unlabelled: 1 },
      agreement: { annotators: ['ana', 'ben'], items: 4, statistic: 'cohen' }
    })
    expect(ana[0]!.agreement.kappa).toBeCloseTo(0.5, 10)
    // Majority over annotators, ties to the alphabetically first category.
    expect(composition(p)[0]!.labels).toMatchObject({ 'Token-level': 3, Uninterpretable: 1 })
    expect(ana[1]).toMatchObject({ unlabelled: 9, agreement: { kappa: null } })
    void late
    p.close()
  })
})

describe('interchange', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('exports features and re-imports them unchanged, labels included', async () => {
    const { exportFeatures } = await import('../../src/core/analysis/feature-export')
    t = tempDir()
    const a = Project.open(join(t.dir, 'a'))
    const file = join(t.dir, 'f.jsonl')
    writeFeatureSet(file, { checkpoints: ['500'], features: 6, labels: ['Token-level', 'Uninterpretable'] })
    const [set] = importFeatureSet(a, file, 'orig')
    a.labels.setLabel(set!.id, 3, 'ana', 'Concept-level (synonymy)', 'same meaning')
    const out = join(t.dir, 'out.jsonl')
    expect(exportFeatures(a, out)).toBe(6)
    const b = Project.open(join(t.dir, 'b'))
    const [again] = importFeatureSet(b, out, 'copy')
    for (let f = 0; f < 6; f++) {
      const x = a.features.get(set!.id, f)
      const y = b.features.get(again!.id, f)
      expect(y.examples.map((e) => e.tokens)).toEqual(x.examples.map((e) => e.tokens))
      y.examples.forEach((e, i) => e.acts.forEach((v, j) => expect(v).toBeCloseTo(x.examples[i]!.acts[j]!, 2)))
    }
    expect(b.labels.labels(again!.id, 3)[0]).toMatchObject({ category: 'Concept-level (synonymy)', note: 'same meaning' })
    expect(b.labels.labels(again!.id, 0)[0]).toMatchObject({ category: 'Token-level' })
    a.close()
    b.close()
  })

  it.each(['csv', 'json'])('merges labels from %s with a report of conflicts', async (ext) => {
    const { exportLabels, importLabels } = await import('../../src/core/analysis/label-files')
    t = tempDir()
    const file = join(t.dir, 'f.jsonl')
    writeFeatureSet(file, { checkpoints: [7], features: 5 })
    const a = Project.open(join(t.dir, 'a'))
    const b = Project.open(join(t.dir, 'b'))
    const [sa] = importFeatureSet(a, file, 'shared')
    const [sb] = importFeatureSet(b, file, 'shared')
    a.labels.setLabel(sa!.id, 0, 'ana', 'Token-level', 'has, a "quoted" comma')
    a.labels.setLabel(sa!.id, 1, 'ana', 'Uninterpretable')
    a.labels.setLabel(sa!.id, 2, 'ben', 'Token-level')
    b.labels.setLabel(sb!.id, 1, 'ana', 'Token-level')
    b.labels.setLabel(sb!.id, 2, 'ben', 'Token-level')
    const out = join(t.dir, `labels.${ext}`)
    expect(exportLabels(a, out)).toBe(3)
    const report = importLabels(b, out)
    expect(report).toMatchObject({ added: 1, unchanged: 1, overwritten: 0, skipped: [] })
    expect(report.conflicts).toEqual([{ set: 'shared @ 7', feature: 1, annotator: 'ana', ours: 'Token-level', theirs: 'Uninterpretable' }])
    expect(b.labels.labels(sb!.id, 0)[0]).toMatchObject({ category: 'Token-level', note: 'has, a "quoted" comma' })
    expect(importLabels(b, out, { overwrite: true })).toMatchObject({ overwritten: 1, conflicts: [] })
    expect(b.labels.labels(sb!.id, 1)[0]!.category).toBe('Uninterpretable')
    a.close()
    b.close()
  })
})

describe('label writes through the service: wide sets, request ids, blind judgements', () => {
  let t: ReturnType<typeof tempDir>
  let ws: Workspace
  afterEach(() => {
    ws.close()
    t.cleanup()
  })

  /** A workspace on a new project, and calls through the same dispatch every door uses. */
  function open(dir?: string): { project: Project; call: <C extends CallName>(name: C, payload: CallInput<C>) => Promise<CallOutput<C>>; events: Label[] } {
    if (!dir) t = tempDir()
    ws = new Workspace('cli', () => {
      throw new Error('no workers here')
    })
    const project = ws.open(dir ?? join(t.dir, 'p'))
    const events: Label[] = []
    ws.subscribe((event, payload) => event === 'labels.changed' && events.push(payload as Label))
    return { project, call: (name, payload) => callService(ws, name, payload), events }
  }

  /** A set of `n` bare features (no examples), written in one transaction. */
  function wideSet(project: Project, n: number): number {
    const features = (function* () {
      for (let f = 0; f < n; f++) {
        yield {
          feature: f,
          density: 0.01,
          maxAct: 1,
          meanAct: 0.5,
          dead: false,
          langClass: 'en',
          langCounts: null,
          topTokens: '',
          histogram: null,
          neighbours: [],
          examples: []
        }
      }
    })()
    return project.features.createSet({ name: 'wide', source: 'import' }, [], features).id
  }

  it('keeps the category when a note is saved on a feature beyond the first 5,000 of 32,768', async () => {
    const { project, call } = open()
    const setId = wideSet(project, 32_768)
    const sample = await call('labels.sample', { setId, n: 100, seed: 4, skipDead: true })
    const beyond = sample.filter((f) => f >= 5000)
    expect(beyond.length).toBeGreaterThan(80)
    for (const f of beyond) await call('labels.set', { setId, feature: f, annotator: 'ana', category: 'Token-level' })
    // The first 5,000 rows of the list (what the Label view used to read) hold none of them; the read by id holds all.
    const listed = await call('features.list', { setId, annotator: 'ana', limit: 5000 })
    expect(listed.rows.filter((r) => r.label !== null)).toEqual([])
    const mine = await call('labels.forFeatures', { setId, annotator: 'ana', features: sample })
    expect(mine.map((l) => l.feature)).toEqual([...beyond].sort((a, b) => a - b))
    expect(mine.every((l) => l.category === 'Token-level' && l.annotator === 'ana')).toBe(true)
    expect(await call('labels.forFeatures', { setId, annotator: 'ben', features: sample })).toEqual([])
    // A note alone keeps the category; null still clears it.
    const f = beyond[0]!
    expect(await call('labels.set', { setId, feature: f, annotator: 'ana', note: 'only a note' })).toMatchObject({
      category: 'Token-level',
      note: 'only a note'
    })
    expect(project.labels.labels(setId, f)).toEqual([expect.objectContaining({ category: 'Token-level', note: 'only a note' })])
    expect(await call('labels.set', { setId, feature: f, annotator: 'ana', category: null })).toMatchObject({ category: null, note: 'only a note' })
    await expect(call('labels.set', { setId, feature: f, annotator: 'ana' })).rejects.toThrow(/category: give a category \(null clears it\) or a note/)
    await expect(call('labels.forFeatures', { setId, annotator: 'ana', features: Array.from({ length: 100_001 }, (_, i) => i) })).rejects.toThrow(/features/)
  })

  it('migration 9 keeps the labels of an older project, their blindness unknown and undo still working', async () => {
    t = tempDir()
    const dir = join(t.dir, 'p')
    const old = Project.open(dir)
    const file = join(t.dir, 'f.jsonl')
    writeFeatureSet(file, { checkpoints: [1], features: 3 })
    const setId = importFeatureSet(old, file)[0]!.id
    old.close()
    // Back to the schema before migration 9, then two labels written as the older version wrote them.
    const raw = new Database(join(dir, 'project.sqlite'))
    raw.exec(`DROP INDEX label_event_request; ALTER TABLE label_event DROP COLUMN request_id; ALTER TABLE label_event DROP COLUMN blind_before;
      ALTER TABLE label_event DROP COLUMN blind; ALTER TABLE label DROP COLUMN blind; DELETE FROM schema_migration WHERE version = 9`)
    raw.prepare("INSERT INTO label (set_id, feature, annotator, category, note, updated_at) VALUES (?, 1, 'ana', 'Token-level', '', 'then')").run(setId)
    raw
      .prepare("INSERT INTO label_event (set_id, feature, annotator, category_after, note_after, at) VALUES (?, 1, 'ana', 'Token-level', '', 'then')")
      .run(setId)
    raw.close()
    const { call } = open(dir)
    expect(await call('labels.forFeatures', { setId, annotator: 'ana', features: [0, 1, 2] })).toEqual([
      expect.objectContaining({ feature: 1, category: 'Token-level' })
    ])
    expect(await call('labels.history', { setId, feature: 1 })).toEqual([expect.objectContaining({ categoryAfter: 'Token-level', blind: null })])
    await call('labels.set', { setId, feature: 1, annotator: 'ana', category: 'Uninterpretable', blind: true, requestId: 'after-migration' })
    expect(await call('labels.undo', { setId, annotator: 'ana' })).toMatchObject({ category: 'Token-level' })
    expect(await call('labels.history', { setId, feature: 1 })).toEqual([
      expect.objectContaining({ categoryAfter: 'Token-level', blind: null }),
      expect.objectContaining({ categoryAfter: 'Uninterpretable', blind: true }),
      expect.objectContaining({ categoryAfter: 'Token-level', blind: null })
    ])
  })

  it('applies a request id once: a resend returns the stored result, changes nothing and announces nothing', async () => {
    const { project, call, events } = open()
    const file = join(t.dir, 'f.jsonl')
    writeFeatureSet(file, { checkpoints: [1], features: 5 })
    const setId = importFeatureSet(project, file)[0]!.id
    const first = await call('labels.set', { setId, feature: 2, annotator: 'ana', category: 'Token-level', requestId: 'req-0001' })
    await call('labels.set', { setId, feature: 2, annotator: 'ana', category: 'Uninterpretable', requestId: 'req-0002' })
    const again = await call('labels.set', { setId, feature: 2, annotator: 'ana', category: 'Token-level', requestId: 'req-0001' })
    expect(again).toEqual(first)
    expect(project.labels.history(setId, 2).map((e) => e.categoryAfter)).toEqual(['Token-level', 'Uninterpretable'])
    expect(project.labels.labels(setId, 2)[0]!.category).toBe('Uninterpretable')
    expect(events.map((e) => e.category)).toEqual(['Token-level', 'Uninterpretable'])
    // An id is one write: reused for another feature or annotator, it is refused.
    await expect(call('labels.set', { setId, feature: 3, annotator: 'ana', category: 'Token-level', requestId: 'req-0001' })).rejects.toThrow(
      /already used for another feature/
    )
    await expect(call('labels.set', { setId, feature: 2, annotator: 'ben', category: 'Token-level', requestId: 'req-0001' })).rejects.toThrow(
      /another annotator/
    )
    await expect(call('labels.set', { setId, feature: 2, annotator: 'ana', category: 'Token-level', requestId: 'short' })).rejects.toThrow(/requestId/)
    // Undo too: sent twice, it reverts one change.
    expect(await call('labels.undo', { setId, annotator: 'ana', requestId: 'undo-0001' })).toMatchObject({ feature: 2, category: 'Token-level' })
    expect(await call('labels.undo', { setId, annotator: 'ana', requestId: 'undo-0001' })).toMatchObject({ feature: 2, category: 'Token-level' })
    expect(project.labels.labels(setId, 2)[0]!.category).toBe('Token-level')
    expect(project.labels.history(setId, 2)).toHaveLength(3)
  })

  it('records whether each judgement was blind, keeps it through notes and undo, and counts blind pairs in the agreement', async () => {
    const { project, call } = open()
    const file = join(t.dir, 'f.jsonl')
    writeFeatureSet(file, { checkpoints: [1], features: 6 })
    const setId = importFeatureSet(project, file)[0]!.id
    for (const f of [0, 1, 2, 3]) await call('labels.set', { setId, feature: f, annotator: 'ana', category: 'Token-level', blind: true })
    for (const f of [0, 1, 2])
      await call('labels.set', { setId, feature: f, annotator: 'ben', category: f === 2 ? 'Uninterpretable' : 'Token-level', blind: true })
    // Ben saw Ana's label of 3 before he judged it; a CLI or import write does not say.
    await call('labels.set', { setId, feature: 3, annotator: 'ben', category: 'Token-level', blind: false })
    await call('labels.set', { setId, feature: 4, annotator: 'ana', category: 'Token-level' })
    await call('labels.set', { setId, feature: 4, annotator: 'ben', category: 'Token-level', blind: true })
    const agreement = (await call('analysis.composition', {}))[0]!.agreement
    expect(agreement).toMatchObject({ annotators: ['ana', 'ben'], items: 5, statistic: 'cohen', blindItems: 3 })
    // A note alone keeps the judgement's flag; changing one's mind after seeing the others' is not blind.
    await call('labels.set', { setId, feature: 0, annotator: 'ben', note: 'same as Ana' })
    expect((await call('analysis.composition', {}))[0]!.agreement.blindItems).toBe(3)
    await call('labels.set', { setId, feature: 1, annotator: 'ben', category: 'Uninterpretable', blind: false })
    expect((await call('analysis.composition', {}))[0]!.agreement.blindItems).toBe(2)
    expect((await call('labels.history', { setId, feature: 1 })).map((e) => [e.annotator, e.categoryAfter, e.blind])).toEqual([
      ['ana', 'Token-level', true],
      ['ben', 'Token-level', true],
      ['ben', 'Uninterpretable', false]
    ])
    // Undo brings back the label before, and with it the flag it had.
    await call('labels.undo', { setId, annotator: 'ben' })
    expect(project.labels.allLabels(setId).find((l) => l.feature === 1 && l.annotator === 'ben')).toMatchObject({ category: 'Token-level', blind: true })
    expect((await call('analysis.composition', {}))[0]!.agreement.blindItems).toBe(3)
    expect(await call('labels.annotators', { setId })).toEqual(['ana', 'ben'])
  })
})

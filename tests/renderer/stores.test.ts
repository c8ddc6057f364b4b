// The renderer's Pinia stores against a fake API (createTestingPinia, real actions): the labelling session's
// store (samples, feature dashboards, the write queue, undo, refusals, a sample far beyond the first 5,000
// features), the jobs store (asking before replacing, events, errors said), the geometry store (typed results).
import { createTestingPinia } from '@pinia/testing'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { FeatureDetail, FeatureSetInfo, GeometryResultInfo, Job, Label } from '../../src/shared/api'
import { FakeApi, MemoryStorage, settle } from './fake-api'

const fake = vi.hoisted(() => ({ api: null as unknown as FakeApi }))
vi.mock('../../src/renderer/src/api/client', () => ({
  get api() {
    return fake.api
  },
  connection: { connected: true, listeners: new Set() },
  ApiCallError: class ApiCallError extends Error {
    constructor(
      readonly code: string,
      message: string
    ) {
      super(message)
    }
  }
}))

const { useLabelStore } = await import('../../src/renderer/src/stores/labels')
const { useJobStore } = await import('../../src/renderer/src/stores/jobs')
const { useGeometryStore } = await import('../../src/renderer/src/stores/geometry')
const { useProjectStore } = await import('../../src/renderer/src/stores/project')

const TAXONOMY = ['Token-level', 'Concept-level', 'Uninterpretable']
const set = (id: number, n: number): FeatureSetInfo => ({
  id,
  name: `set ${id}`,
  source: 'import',
  saeId: null,
  checkpointId: null,
  checkpointLabel: null,
  step: null,
  layer: null,
  nFeatures: n,
  createdAt: '2026-01-01',
  updatedAt: null,
  superseded: false,
  labelCount: 0
})
const detail = (setId: number, feature: number, labels: Label[] = []): FeatureDetail => ({
  setId,
  feature,
  density: 0.01,
  maxAct: 2,
  meanAct: 1,
  dead: false,
  langClass: 'en',
  langCounts: null,
  histogram: null,
  neighbours: [],
  examples: [],
  labels,
  logitEffects: null,
  logitEffectsNote: null,
  correlations: null,
  statsRows: null
})
const label = (setId: number, feature: number, annotator: string, category: string | null): Label => ({
  setId,
  feature,
  annotator,
  category,
  note: '',
  updatedAt: '2026-01-01',
  origin: null
})
const job = (over: Partial<Job> & Pick<Job, 'id' | 'kind' | 'state'>): Job =>
  ({
    params: null,
    fraction: 0,
    rate: null,
    rateUnit: null,
    etaSeconds: null,
    message: null,
    error: null,
    result: null,
    createdAt: '',
    startedAt: null,
    finishedAt: null,
    ...over
  }) as Job

beforeEach(() => {
  fake.api = new FakeApi()
  vi.stubGlobal('localStorage', new MemoryStorage())
  createTestingPinia({ createSpy: vi.fn, stubActions: false })
})
afterEach(() => vi.unstubAllGlobals())

/** A project open with one set of `n` features whose sample is `sample`; labels.set answers as the server would. */
function labellingProject(n: number, sample: number[], stored: Label[] = []): { written: Label[] } {
  const written: Label[] = []
  fake.api.handle('features.sets', () => [set(1, n)])
  fake.api.handle('taxonomy.get', () => TAXONOMY)
  fake.api.handle('project.info', () => ({ path: '/p', name: 'p', createdAt: '', schemaVersion: 1, checkpointCount: 0, missing: [] }))
  fake.api.handle('labels.sample', () => sample)
  fake.api.handle('labels.forFeatures', ({ features, annotator }) => stored.filter((l) => features.includes(l.feature) && l.annotator === annotator))
  fake.api.handle('labels.annotators', () => [...new Set(stored.map((l) => l.annotator))])
  fake.api.handle('features.get', ({ setId, feature }) =>
    detail(
      setId,
      feature,
      stored.filter((l) => l.feature === feature)
    )
  )
  fake.api.handle('labels.set', (w) => {
    if (w.category === 'refused') throw new Error('"refused" is not a category of this project\'s taxonomy')
    const l = label(w.setId, w.feature, w.annotator, w.category ?? null)
    written.push(l)
    return l
  })
  fake.api.handle('labels.undo', ({ setId, annotator }) => {
    const last = written.filter((l) => l.annotator === annotator && l.setId === setId).pop()
    return last ? label(last.setId, last.feature, annotator, null) : null
  })
  useProjectStore().project = { path: '/p', name: 'p', createdAt: '', schemaVersion: 1, checkpointCount: 0, missing: [] }
  return { written }
}

describe('the labelling store', () => {
  it('draws the sample, shows the first feature, labels the one shown and moves on at once', async () => {
    const { written } = labellingProject(40, [7, 3, 12])
    const labels = useLabelStore()
    labels.annotator = 'ana'
    await labels.start(1, 3, 0)
    expect(labels.sample).toEqual([7, 3, 12])
    expect(labels.feature).toBe(7)
    await settle()
    expect(labels.current?.feature).toBe(7)
    labels.label('Token-level')
    // The view moved on before the server answered; the write is of the feature shown when the key was pressed.
    expect(labels.feature).toBe(3)
    expect(labels.mine[7]).toEqual({ category: 'Token-level', note: '' })
    await settle()
    await settle()
    expect(written.map((l) => [l.feature, l.category])).toEqual([[7, 'Token-level']])
    expect(fake.api.payloads('labels.set')[0]).toMatchObject({
      setId: 1,
      feature: 7,
      annotator: 'ana',
      category: 'Token-level',
      requestId: expect.stringMatching(/^[0-9a-f]{32}$/)
    })
    expect(labels.unconfirmed.size).toBe(0)
  })

  it("reads this annotator's labels of exactly the sample, however far beyond the first 5,000 features they lie", async () => {
    labellingProject(32_768, [31_000, 5, 20_000], [label(1, 31_000, 'ana', 'Concept-level'), label(1, 20_000, 'bob', 'Token-level')])
    const labels = useLabelStore()
    labels.annotator = 'ana'
    await labels.start(1, 3, 0)
    expect(fake.api.payloads('labels.forFeatures')).toEqual([{ setId: 1, annotator: 'ana', features: [31_000, 5, 20_000] }])
    expect(labels.mine[31_000]).toEqual({ category: 'Concept-level', note: '' })
    expect(labels.mine[20_000]).toBeUndefined()
    expect(labels.annotators).toEqual(['ana', 'bob'])
  })

  it('undoes the latest label: the view goes back to it and the category is gone', async () => {
    const { written } = labellingProject(40, [7, 3, 12])
    const labels = useLabelStore()
    labels.annotator = 'ana'
    await labels.start(1, 3, 0)
    labels.label('Token-level')
    labels.label('Uninterpretable')
    expect(labels.feature).toBe(12)
    labels.undo()
    expect(labels.feature).toBe(3)
    expect(labels.mine[3]).toBeUndefined()
    expect(labels.mine[7]).toEqual({ category: 'Token-level', note: '' })
    for (let i = 0; i < 5; i++) await settle()
    expect(fake.api.payloads('labels.undo')).toHaveLength(1)
    expect(written.map((l) => l.feature)).toEqual([7, 3])
  })

  it('keeps a refused write marked with the reason, to retry or discard, and says when no annotator is given', async () => {
    labellingProject(40, [7, 3])
    const labels = useLabelStore()
    await labels.start(1, 2, 0)
    labels.label('Token-level')
    expect(labels.error).toBe('Type your name as annotator first: labels are saved under it.')
    expect(fake.api.payloads('labels.set')).toEqual([])
    labels.annotator = 'ana'
    labels.label('refused')
    for (let i = 0; i < 5; i++) await settle()
    expect(labels.sessionWrites.map((w) => [w.feature, w.state, w.error])).toEqual([[7, 'failed', expect.stringMatching(/not a category/)]])
    labels.discard(labels.sessionWrites[0]!.id)
    expect(labels.sessionWrites).toEqual([])
  })

  it("feature dashboards: another annotator's label stays hidden (blind) until this one has labelled the feature", async () => {
    labellingProject(40, [7, 3], [label(1, 7, 'bob', 'Concept-level')])
    const labels = useLabelStore()
    labels.annotator = 'ana'
    await labels.start(1, 2, 0)
    await settle()
    expect(labels.blind).toBe(true)
    expect(labels.others).toBeNull()
    // A label event from elsewhere reaches the dashboard of the feature it is about.
    fake.api.fire('labels.changed', label(1, 7, 'ana', 'Token-level'))
    expect(labels.others?.map((l) => [l.annotator, l.category])).toEqual([['bob', 'Concept-level']])
    expect(labels.current?.labels.map((l) => l.annotator)).toEqual(['ana', 'bob'])
  })
})

describe('the jobs store', () => {
  it('says why the list is empty when it cannot be read', async () => {
    fake.api.handle('jobs.list', () => {
      throw new Error('No project is open. Open or create a project first.')
    })
    const jobs = useJobStore()
    await jobs.load()
    expect(jobs.jobs).toEqual([])
    expect(jobs.error).toMatch(/No project is open/)
  })

  it('asks before a job that replaces stored results, and starts it only on yes', async () => {
    fake.api.handle('jobs.replaces', () => ({ replaces: ['the statistics of 2 feature sets'], labelsKept: 12 }))
    fake.api.handle('jobs.start', () => job({ id: 5, kind: 'feature-stats', state: 'queued' }))
    const jobs = useJobStore()
    const declined = jobs.start({ kind: 'feature-stats', layer: 2 })
    await settle()
    expect(jobs.confirming).toMatchObject({ replaces: ['the statistics of 2 feature sets'], labelsKept: 12 })
    jobs.confirming!.decide(false)
    expect(await declined).toBe(false)
    expect(fake.api.payloads('jobs.start')).toEqual([])
    const accepted = jobs.start({ kind: 'feature-stats', layer: 2 })
    await settle()
    jobs.confirming!.decide(true)
    expect(await accepted).toBe(true)
    // The request as the API takes it: the defaults are the server's to fill.
    expect(fake.api.payloads('jobs.start')).toEqual([{ kind: 'feature-stats', layer: 2 }])
    expect(jobs.active.map((j) => j.id)).toEqual([5])
  })

  it('follows a job by its events and reloads the checkpoints when a verification is done', async () => {
    fake.api.handle('jobs.replaces', () => ({ replaces: [], labelsKept: 0 }))
    fake.api.handle('jobs.start', () => job({ id: 9, kind: 'verify-checkpoints', state: 'queued' }))
    fake.api.handle('checkpoints.list', () => [])
    const jobs = useJobStore()
    await jobs.start({ kind: 'verify-checkpoints' })
    fake.api.fire('job.updated', job({ id: 9, kind: 'verify-checkpoints', state: 'running', fraction: 0.5 }))
    expect(jobs.active[0]).toMatchObject({ id: 9, fraction: 0.5 })
    fake.api.fire('job.updated', job({ id: 9, kind: 'verify-checkpoints', state: 'done', fraction: 1, result: { checked: 3, 'with problems': 0 } }))
    expect(jobs.active).toEqual([])
    await settle()
    expect(fake.api.payloads('checkpoints.list')).toHaveLength(1)
  })

  it('says why a start failed', async () => {
    fake.api.handle('jobs.replaces', () => {
      throw new Error('No SAE for layer 9; train one first.')
    })
    const jobs = useJobStore()
    expect(await jobs.start({ kind: 'dynamics', layer: 9 })).toBe(false)
    expect(jobs.error).toBe('No SAE for layer 9; train one first.')
  })
})

describe('the geometry store', () => {
  it("keeps each analysis's summaries apart and gives a full result only as the analysis asked for", async () => {
    const galaxy: GeometryResultInfo = {
      id: 1,
      analysis: 'galaxy',
      checkpointId: 1,
      step: 0,
      layer: 1,
      createdAt: '',
      summary: { alpha: 1.2, alpha_ci: [1, 1.4], r2: 0.9, clustering_entropy: 3, clustering_entropy_ci: [2.9, 3.1], n: 100, d: 16 }
    }
    fake.api.handle('geometry.results', ({ analysis }) => (analysis === 'galaxy' ? [galaxy] : []))
    fake.api.handle('geometry.result', () => ({
      ...galaxy,
      params: { seed: 0 },
      result: {
        ...galaxy.summary,
        ranks: [11, 150],
        gaussian_entropy: 1,
        knn_entropy: 1,
        sample: 10,
        dims: 5,
        bootstraps: 3,
        eigenvalues: [1],
        pcs: { explained: [1], features: [0], points: [[0, 0, 0]] }
      }
    }))
    const geometry = useGeometryStore()
    await geometry.load(1)
    expect(geometry.summaries.galaxy.map((r) => r.summary.alpha)).toEqual([1.2])
    expect(geometry.summaries.lobes).toEqual([])
    expect((await geometry.result(1, 'galaxy'))?.result.pcs.points).toEqual([[0, 0, 0]])
    expect(await geometry.result(1, 'lobes')).toBeNull()
  })
})

// Features found by the text of their labels and notes (features.list `text`), and interval samples named by range.
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { nodeWorkerSpawner } from '../../src/core/jobs/spawn'
import { Project } from '../../src/core/project'
import { createHandlers, dispatch, Workspace } from '../../src/core/services'
import type { FeatureRecord } from '../../src/core/store/feature-blobs'
import { BUILT_WORKER, tempDir } from '../helpers'

function records(n: number): FeatureRecord[] {
  return Array.from({ length: n }, (_, feature) => ({
    feature,
    density: 0.01,
    maxAct: 2,
    meanAct: 0.5,
    dead: false,
    langClass: null,
    langCounts: null,
    topTokens: 'x',
    histogram: null,
    neighbours: [],
    examples: [
      { sampler: 'top', tokens: [0, 1, 2], acts: Float32Array.from([0, 2, 0]) },
      // Peaks 0.9 and 1.99: intervals 3 and 5 of (0, 2] in fifths.
      { sampler: 'interval', tokens: [0, 1, 2], acts: Float32Array.from([0.9, 0, 0.1]) },
      { sampler: 'interval', tokens: [2, 1, 0], acts: Float32Array.from([0, 1.99, 0]) }
    ]
  }))
}

describe('feature search by label and note text', () => {
  let t: ReturnType<typeof tempDir>
  let ws: Workspace | undefined
  let p: Project | undefined
  afterEach(() => {
    ws?.close()
    p?.close()
    ws = undefined
    p = undefined
    t.cleanup()
  })

  it('matches any annotator’s category or note, case-insensitively, with % and _ taken literally', async () => {
    t = tempDir()
    p = Project.open(join(t.dir, 'p'))
    const c = p.checkpoints.addWeightless(100, 16, { test: true })
    const set = p.features.createSet({ name: 'step 100 · layer 2', source: 'import', checkpointId: c.id, layer: 2 }, ['a', 'b', 'c'], records(8))
    const other = p.features.createSet({ name: 'other', source: 'import', checkpointId: null, layer: 2 }, ['a', 'b', 'c'], records(8))
    p.labels.setLabel(set.id, 1, 'ana', 'Token-level', 'Fires on the surname Burton')
    p.labels.setLabel(set.id, 3, 'bo', 'Concept-level (synonymy)', 'burton and バートン')
    p.labels.setLabel(set.id, 4, 'bo', 'Uninterpretable', '100% noise')
    p.labels.setLabel(set.id, 5, 'bo', 'Uninterpretable', '100 noisy_tokens')
    p.labels.setLabel(other.id, 2, 'ana', 'Token-level', 'burton in another set')
    p.close()
    p = undefined
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    ws.open(join(t.dir, 'p'))
    const h = createHandlers(ws)
    const find = async (text: string, extra: Record<string, unknown> = {}): Promise<number[]> => {
      const r = await dispatch(h, 'features.list', { setId: set.id, text, ...extra })
      if (!r.ok) throw new Error(r.error.message)
      return (r.result as { rows: { feature: number }[] }).rows.map((x) => x.feature)
    }
    expect(await find('BURTON')).toEqual([1, 3])
    expect(await find('synonymy')).toEqual([3])
    expect(await find('バートン')).toEqual([3])
    // LIKE's wildcards are escaped: '%' and '_' match themselves only.
    expect(await find('100%')).toEqual([4])
    expect(await find('y_t')).toEqual([5])
    expect(await find('0_n')).toEqual([])
    // Combined with the other filters, and the index a deep link scrolls to.
    expect(await find('burton', { label: 'Token-level', annotator: 'ana' })).toEqual([1])
    const at = await dispatch(h, 'features.indexOf', { setId: set.id, text: 'burton', feature: 3 })
    expect(at).toMatchObject({ ok: true, result: { index: 1 } })
  })

  it('labels each activation-interval sample with its interval and range', () => {
    t = tempDir()
    p = Project.open(join(t.dir, 'p'))
    const set = p.features.createSet({ name: 's', source: 'import', checkpointId: null, layer: 2 }, ['a', 'b', 'c'], records(1))
    const d = p.features.get(set.id, 0)
    expect(d.examples.map((e) => e.interval ?? null)).toEqual([
      null,
      { index: 2, lo: expect.closeTo(0.8, 12), hi: expect.closeTo(1.2, 12) },
      { index: 4, lo: expect.closeTo(1.6, 12), hi: 2 }
    ])
  })
})

// No label is lost when the process is killed: every label the server acknowledged is in the database
// after a SIGKILL in the middle of writing.
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { importFeatureSet } from '../../src/core/analysis/import-features'
import { Project } from '../../src/core/project'
import { serve } from '../e2e/browser'
import { writeFeatureSet } from '../fixtures/feature-sets'
import { tempDir } from '../helpers'

describe('labels survive SIGKILL', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('finds every acknowledged label after the server is killed mid-write', async () => {
    t = tempDir()
    const dir = join(t.dir, 'p')
    const file = join(t.dir, 'f.jsonl')
    writeFeatureSet(file, { checkpoints: [3], features: 400 })
    const p = Project.open(dir)
    const setId = importFeatureSet(p, file)[0]!.id
    p.close()
    const served = await serve(['--project', dir])
    const categories = ['Token-level', 'Concept-level (synonymy)', 'Concept-level (semantic similarity)', 'Uninterpretable']
    const acknowledged = new Map<number, string>()
    let killed = false
    // Several writers at once, as a busy labelling session with two annotators' windows might send.
    const writer = async (offset: number): Promise<void> => {
      for (let f = offset; f < 400 && !killed; f += 4) {
        const category = categories[f % 4]!
        try {
          const res = await fetch(new URL('/api/call/labels.set', served.url), {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ setId, feature: f, annotator: 'ana', category, note: `n${f}` })
          })
          const reply = (await res.json()) as { ok: boolean }
          if (reply.ok) acknowledged.set(f, category)
        } catch {
          return // the server is gone
        }
      }
    }
    const writers = [0, 1, 2, 3].map(writer)
    while (acknowledged.size < 60) await new Promise((r) => setTimeout(r, 5))
    served.process.kill('SIGKILL')
    killed = true
    await Promise.all(writers)
    if (served.process.exitCode === null && served.process.signalCode === null) await new Promise((r) => served.process.once('exit', r))
    expect(served.process.signalCode).toBe('SIGKILL')
    const reopened = Project.open(dir)
    for (const [f, category] of acknowledged) {
      expect(reopened.labels.labels(setId, f), `feature ${f}`).toEqual([expect.objectContaining({ annotator: 'ana', category, note: `n${f}` })])
    }
    expect(acknowledged.size).toBeGreaterThanOrEqual(60)
    expect(acknowledged.size).toBeLessThan(400)
    reopened.close()
  }, 60_000)
})

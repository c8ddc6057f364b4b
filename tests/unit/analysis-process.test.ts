// The analysis process's host side and its cache, with a fake worker: queries answered by id, a cancelled
// query ends as cancelled (and a worker that ignores the cancel is replaced, the other queries asked again),
// and the drift cache stays within its bounds, sharing one computation among the queries that want it.
import { describe, expect, it } from 'vitest'
import type { DriftResult } from '../../src/core/analysis/drift'
import { DriftCache, driftBytes } from '../../src/core/analysis/drift-cache'
import { AnalysisProcess } from '../../src/core/jobs/analysis-process'
import { JobCancelled } from '../../src/core/jobs/job'
import type { HostMessage, WorkerHandle, WorkerMessage } from '../../src/core/jobs/protocol'
import { UserError } from '../../src/shared/api'

/** A worker that records what it is sent and answers when the test says. */
class FakeWorker implements WorkerHandle {
  readonly sent: HostMessage[] = []
  killed = false
  private listener: (m: WorkerMessage) => void = () => {}
  private exit: (code: number | null) => void = () => {}
  send(m: HostMessage): void {
    this.sent.push(m)
  }
  onMessage(l: (m: WorkerMessage) => void): void {
    this.listener = l
  }
  onExit(l: (code: number | null) => void): void {
    this.exit = l
  }
  kill(): void {
    this.killed = true
    this.exit(null)
  }
  answer(m: WorkerMessage): void {
    this.listener(m)
  }
  queries(): Extract<HostMessage, { type: 'query' }>[] {
    return this.sent.filter((m): m is Extract<HostMessage, { type: 'query' }> => m.type === 'query')
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('the analysis process (host side)', () => {
  it('answers each query by its id, user errors as UserError, and starts the worker once', async () => {
    const workers: FakeWorker[] = []
    const p = new AnalysisProcess(() => (workers.push(new FakeWorker()), workers.at(-1)!))
    const a = p.ask('dynamics.overview', { layer: 1 })
    const b = p.ask('dynamics.overview', { layer: 2 })
    expect(workers).toHaveLength(1)
    const [qa, qb] = workers[0]!.queries()
    workers[0]!.answer({ type: 'answer', queryId: qb!.queryId, ok: false, error: 'No SAEs at layer 2; train a series first.', kind: 'user' })
    workers[0]!.answer({ type: 'answer', queryId: qa!.queryId, ok: true, output: { n: 3 } })
    expect(await a).toEqual({ n: 3 })
    await expect(b).rejects.toBeInstanceOf(UserError)
    p.dispose()
  })

  it('cancels by request id; a worker that does not stop is replaced and the other queries asked again', async () => {
    const workers: FakeWorker[] = []
    const p = new AnalysisProcess(() => (workers.push(new FakeWorker()), workers.at(-1)!), { abortGraceMs: 20 })
    const slow = p.ask('dynamics.overview', { layer: 1 }, 'request-slow-1')
    const other = p.ask('dynamics.feature', { layer: 1, feature: 2 })
    expect(p.cancel('request-slow-1')).toBe(true)
    expect(p.cancel('no-such-request')).toBe(false)
    expect(workers[0]!.sent.filter((m) => m.type === 'abort')).toHaveLength(1)
    // The worker is stuck (a long exact matching): it does not answer the abort.
    await expect(slow).rejects.toBeInstanceOf(JobCancelled)
    expect(workers[0]!.killed).toBe(true)
    expect(workers).toHaveLength(2)
    const again = workers[1]!.queries()
    expect(again.map((q) => q.name)).toEqual(['dynamics.feature'])
    workers[1]!.answer({ type: 'answer', queryId: again[0]!.queryId, ok: true, output: 'done' })
    expect(await other).toBe('done')
    p.dispose()
  })

  it('a cancelled query the worker stops in time ends as cancelled, the worker kept', async () => {
    const worker = new FakeWorker()
    const p = new AnalysisProcess(() => worker, { abortGraceMs: 50 })
    const q = p.ask('dynamics.overview', { layer: 1 }, 'request-abc-123')
    p.cancel('request-abc-123')
    worker.answer({ type: 'answer', queryId: worker.queries()[0]!.queryId, ok: false, error: 'cancelled', kind: 'cancelled' })
    await expect(q).rejects.toBeInstanceOf(JobCancelled)
    await sleep(80)
    expect(worker.killed).toBe(false)
    p.dispose()
  })
})

const result = (n: number, T = 2): DriftResult => ({
  steps: Array.from({ length: T }, (_, i) => i),
  n,
  cosToFinal: new Float32Array(T * n),
  cosToPrevious: new Float32Array(T * n),
  matchToFinal: null,
  matchCos: null,
  matchMethod: null
})

describe('the drift cache', () => {
  it('keeps results within its bytes and entries, least recently used out', async () => {
    const one = driftBytes(result(100))
    const cache = new DriftCache(2.5 * one, 8)
    const signal = new AbortController().signal
    let computed = 0
    const get = (key: string): Promise<DriftResult> => cache.get(key, async () => (computed++, result(100)), signal)
    await get('a')
    await get('b')
    await get('a')
    await get('c') // over the budget: b, the least recently used, goes
    expect(cache.size()).toEqual({ entries: 2, bytes: 2 * one })
    await get('a')
    expect(computed).toBe(3)
    await get('b')
    expect(computed).toBe(4)
  })

  it('shares one computation; it stops only when every query that wanted it was cancelled', async () => {
    const cache = new DriftCache()
    let stopped = false
    let finish: (r: DriftResult) => void = () => {}
    const compute = (signal: AbortSignal): Promise<DriftResult> =>
      new Promise((resolve, reject) => {
        finish = resolve
        signal.addEventListener('abort', () => ((stopped = true), reject(new JobCancelled())))
      })
    const [c1, c2] = [new AbortController(), new AbortController()]
    const first = cache.get('k', compute, c1.signal)
    const second = cache.get('k', compute, c2.signal)
    c1.abort()
    await expect(first).rejects.toBeInstanceOf(JobCancelled)
    expect(stopped).toBe(false)
    finish(result(4))
    expect((await second).n).toBe(4)
    // Both asking, both cancelled: the computation stops.
    const [c3, c4] = [new AbortController(), new AbortController()]
    const third = cache.get('other', compute, c3.signal)
    const fourth = cache.get('other', compute, c4.signal)
    c3.abort()
    c4.abort()
    await expect(third).rejects.toBeInstanceOf(JobCancelled)
    await expect(fourth).rejects.toBeInstanceOf(JobCancelled)
    expect(stopped).toBe(true)
  })
})

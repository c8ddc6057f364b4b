// The analysis process keeps the drift of the series it measured, so a view that asks about one feature after
// the overview does not read every decoder again. Bounded by bytes and entries, least recently used first out.
// Queries that want the same drift while it is computed share the one computation; it stops only when every
// one of them has been cancelled.
import { JobCancelled } from '../jobs/job'
import type { DriftResult } from './drift'

/** What a drift result holds in memory. */
export function driftBytes(r: DriftResult): number {
  return r.cosToFinal.byteLength + r.cosToPrevious.byteLength + (r.matchToFinal?.byteLength ?? 0) + (r.matchCos?.byteLength ?? 0)
}

interface Pending {
  promise: Promise<DriftResult>
  controller: AbortController
  waiting: number
}

export class DriftCache {
  private readonly done = new Map<string, DriftResult>()
  private readonly pending = new Map<string, Pending>()

  constructor(
    readonly maxBytes = 1024 * 2 ** 20,
    readonly maxEntries = 8
  ) {}

  /** The cached result for `key`, else the one being computed, else a new computation. */
  async get(key: string, compute: (signal: AbortSignal) => Promise<DriftResult>, signal: AbortSignal): Promise<DriftResult> {
    if (signal.aborted) throw new JobCancelled()
    const hit = this.done.get(key)
    if (hit) {
      // Most recently used goes last.
      this.done.delete(key)
      this.done.set(key, hit)
      return hit
    }
    let p = this.pending.get(key)
    // A computation every earlier asker cancelled is stopping: start over rather than join it.
    if (!p || p.controller.signal.aborted) {
      const controller = new AbortController()
      const promise = compute(controller.signal).then((r) => {
        this.put(key, r)
        return r
      })
      p = { promise, controller, waiting: 0 }
      const entry = p
      void promise.then(
        () => this.pending.get(key) === entry && this.pending.delete(key),
        () => this.pending.get(key) === entry && this.pending.delete(key)
      )
      this.pending.set(key, p)
    }
    const entry = p
    entry.waiting++
    return new Promise<DriftResult>((resolve, reject) => {
      const onAbort = (): void => {
        entry.waiting--
        if (entry.waiting === 0) entry.controller.abort()
        reject(new JobCancelled())
      }
      signal.addEventListener('abort', onAbort, { once: true })
      entry.promise.then(
        (r) => {
          signal.removeEventListener('abort', onAbort)
          if (!signal.aborted) resolve(r)
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort)
          if (!signal.aborted) reject(err)
        }
      )
    })
  }

  /** Entries and bytes held now. */
  size(): { entries: number; bytes: number } {
    let bytes = 0
    for (const r of this.done.values()) bytes += driftBytes(r)
    return { entries: this.done.size, bytes }
  }

  private put(key: string, r: DriftResult): void {
    const bytes = driftBytes(r)
    // A result larger than the whole budget is answered but not kept.
    if (bytes > this.maxBytes) return
    this.done.set(key, r)
    let total = this.size().bytes
    for (const [k, old] of this.done) {
      if (total <= this.maxBytes && this.done.size <= this.maxEntries) break
      if (k === key) continue
      this.done.delete(k)
      total -= driftBytes(old)
    }
  }
}

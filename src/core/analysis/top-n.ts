// The N best of a stream by score, in a binary min-heap: each offer costs O(log N), and the item is made only
// when it gets in. Ties keep the earlier item (as a stable sort by descending score would).

interface Entry<T> {
  score: number
  seq: number
  item: T
}

/** Whether a is worse than b: a lower score, or the same score offered later. */
const worse = <T>(a: Entry<T>, b: Entry<T>): boolean => a.score < b.score || (a.score === b.score && a.seq > b.seq)

export class TopN<T> {
  private readonly heap: Entry<T>[] = []
  private seq = 0

  constructor(private readonly n: number) {}

  /** Keeps `make()` if `score` is among the N best so far (a score equal to the worst kept does not get in). */
  offer(score: number, make: () => T): void {
    const seq = this.seq++
    if (this.n <= 0) return
    if (this.heap.length < this.n) {
      this.heap.push({ score, seq, item: make() })
      this.up(this.heap.length - 1)
    } else if (score > this.heap[0]!.score) {
      this.heap[0] = { score, seq, item: make() }
      this.down(0)
    }
  }

  /** The kept items, best first (ties in the order offered). */
  sorted(): { score: number; item: T }[] {
    return [...this.heap].sort((a, b) => b.score - a.score || a.seq - b.seq).map(({ score, item }) => ({ score, item }))
  }

  get size(): number {
    return this.heap.length
  }

  private up(i: number): void {
    const h = this.heap
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!worse(h[i]!, h[parent]!)) return
      ;[h[i], h[parent]] = [h[parent]!, h[i]!]
      i = parent
    }
  }

  private down(i: number): void {
    const h = this.heap
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && worse(h[l]!, h[m]!)) m = l
      if (r < h.length && worse(h[r]!, h[m]!)) m = r
      if (m === i) return
      ;[h[i], h[m]] = [h[m]!, h[i]!]
      i = m
    }
  }
}

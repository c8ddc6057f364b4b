// A small seeded generator (mulberry32): harvest order and batch shuffles must repeat exactly for a seed,
// across processes and backends, which Math.random cannot give.
export class Rng {
  private state: number

  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** A standard normal draw (Box–Muller; the radius's uniform is drawn first). */
  gaussian(): number {
    return Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next())
  }

  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** Fisher–Yates, in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      ;[items[i], items[j]] = [items[j]!, items[i]!]
    }
    return items
  }

  /** The generator's state, for saving and resuming. */
  get seedState(): number {
    return this.state
  }

  static fromState(state: number): Rng {
    const r = new Rng(1)
    r.state = state >>> 0
    return r
  }
}

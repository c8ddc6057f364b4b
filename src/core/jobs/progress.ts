import type { JobProgress } from '../store/jobs'

/** Turns "done of total units" into fraction, smoothed rate and time left. */
export class ProgressMeter {
  private readonly startedAt: number
  private lastAt: number
  private lastDone = 0
  private rate: number | null = null

  constructor(
    private readonly total: number,
    private readonly unit: string,
    private readonly now: () => number = () => performance.now()
  ) {
    this.startedAt = this.now()
    this.lastAt = this.startedAt
  }

  update(done: number, message: string | null = null): JobProgress {
    const t = this.now()
    const dt = (t - this.lastAt) / 1000
    if (dt > 0.05) {
      const instant = (done - this.lastDone) / dt
      // Exponential smoothing keeps the time left from jumping with each noisy sample. No rate until work is seen:
      // a first sample of nothing done would read "0 B/s" until the next one, or to the end of a quick job.
      if (this.rate !== null || instant > 0) this.rate = this.rate === null ? instant : 0.7 * this.rate + 0.3 * instant
      this.lastAt = t
      this.lastDone = done
    } else if (this.rate === null && t > this.startedAt && done > 0) {
      this.rate = done / ((t - this.startedAt) / 1000)
    }
    const fraction = this.total > 0 ? Math.min(1, done / this.total) : 0
    const eta = this.rate && this.rate > 0 ? Math.max(0, (this.total - done) / this.rate) : null
    return { fraction, rate: this.rate, rateUnit: `${this.unit}/s`, etaSeconds: eta, message }
  }
}

/** Below this much of the whole, or this many seconds in, a job's pace says little (loading, the first batches). */
const MIN_FRACTION = 0.02
const MIN_ELAPSED_S = 5

/**
 * Time left for the whole job, from its overall fraction and how long it has run, never less than the time left its
 * current stage reports: a series job's stage may be nearly done at 3% of the whole. Null while there is too little to go on.
 */
export function jobTimeLeft(fraction: number, elapsedSeconds: number, reported: number | null): number | null {
  if (fraction >= 1) return 0
  if (!(fraction >= MIN_FRACTION) || !(elapsedSeconds >= MIN_ELAPSED_S)) return null
  const whole = (elapsedSeconds * (1 - fraction)) / fraction
  return reported === null || !Number.isFinite(reported) ? whole : Math.max(whole, reported)
}

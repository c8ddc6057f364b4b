// Time left as a job reports it: the whole job's, and nothing until there is something to go on.
import { describe, expect, it } from 'vitest'
import { jobTimeLeft, ProgressMeter } from '../../src/core/jobs/progress'

describe('jobTimeLeft', () => {
  it('gives the whole job, not the current stage: 3% after 30 s is about 16 minutes, not the stage’s 0 s', () => {
    expect(jobTimeLeft(0.03, 30, 0)).toBeCloseTo((30 * 0.97) / 0.03, 6)
  })

  it('keeps a stage’s own estimate when it is longer than the whole job’s pace suggests', () => {
    expect(jobTimeLeft(0.5, 10, 60)).toBe(60)
    expect(jobTimeLeft(0.5, 10, null)).toBe(10)
  })

  it('says nothing while too little has been done or too little time has passed', () => {
    expect(jobTimeLeft(0.01, 100, 5)).toBeNull()
    expect(jobTimeLeft(0.5, 1, 5)).toBeNull()
    expect(jobTimeLeft(Number.NaN, 100, 5)).toBeNull()
  })

  it('is zero once the job is complete', () => {
    expect(jobTimeLeft(1, 0, null)).toBe(0)
  })
})

describe('ProgressMeter', () => {
  it('estimates the stage’s time left from its smoothed rate', () => {
    let now = 0
    const meter = new ProgressMeter(1000, 'rows', () => now)
    now = 1000
    const p = meter.update(100)
    expect(p.fraction).toBeCloseTo(0.1)
    expect(p.rate).toBeCloseTo(100)
    expect(p.etaSeconds).toBeCloseTo(9)
  })

  it('gives no rate until work is seen, rather than a rate of 0 that stays to the end of a quick job', () => {
    let now = 0
    const meter = new ProgressMeter(1000, 'B', () => now)
    now = 100
    expect(meter.update(0).rate).toBeNull()
    now = 120
    expect(meter.update(0).rate).toBeNull()
    now = 130
    expect(meter.update(1000).rate).toBeGreaterThan(0)
  })
})

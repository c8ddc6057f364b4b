// Jobs in words: what a finished job produced, and how long a running one has left.
import type { Job } from '../../../shared/api'
import { formatDuration, n, plural } from './format'

/** "wasm (tfjs-node-gpu is not installed; …)" → "wasm": the reason stays in the tooltip. */
const backend = (v: unknown): string => (typeof v === 'string' ? ` on ${v.split(' ')[0]}` : '')

/** A finished job's outcome as a sentence, never internal ids. */
export function describeResult(job: Job): string {
  const r = (job.result ?? {}) as Record<string, unknown>
  const p = (job.params ?? {}) as Record<string, unknown>
  switch (job.kind) {
    case 'harvest':
      return `${plural(r.checkpoints, 'checkpoint')}, ${n(r.tokens)} tokens at layer ${n(p.layer)}${backend(r.backend)}`
    case 'train-series':
      return `${plural(r.saes, 'SAE')} trained at layer ${n(p.layer)}${backend(r.backend)}`
    case 'feature-stats':
      return `${n(r.features)} features in ${plural(r.sets, 'set')}${r.rows ? ` (${n(r.rows)})` : ''}`
    case 'dynamics':
      return `${n(r.formed)} of ${n(r.features)} features formed (threshold ${n(r.threshold)}) at layer ${n(r.layer)}`
    case 'geometry': {
      const count = Array.isArray(r.results) ? r.results.length : 0
      return `${String(p.analysis ?? 'geometry')} at ${plural(count, 'checkpoint')} of layer ${n(p.layer)} stored${backend(r.backend)}`
    }
    case 'evaluate-saes':
      return `${plural(r.evaluated, 'SAE')} at layer ${n(r.layer)} evaluated by splicing${backend(r.backend)}`
    case 'verify-checkpoints': {
      const same = r['same weights as another step'] ? `, ${n(r['same weights as another step'])} with the same weights as another step` : ''
      return r['with problems']
        ? `${plural(r.checked, 'checkpoint')} checked, ${n(r['with problems'])} with problems${same}`
        : `${plural(r.checked, 'checkpoint')} checked, ${same ? `files sound${same}` : 'all sound'}`
    }
    default:
      // A kind without its own sentence: its plain values, lists as counts.
      return Object.entries(r)
        .filter(([, v]) => (v !== null && typeof v !== 'object') || Array.isArray(v))
        .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.length : String(v)}`)
        .join(', ')
  }
}

/** What a person wants to read about a job: its error, its outcome, or what it is doing. */
export function describeJob(job: Job): string {
  if (job.error) return job.error
  if (job.state === 'done' && job.result && typeof job.result === 'object') return describeResult(job)
  return job.message ?? ''
}

/** Time left of a running job; the server sends none until the job's pace is known. */
export function timeLeft(job: Job): string {
  if (job.state !== 'running') return ''
  if (job.etaSeconds === null) return job.fraction > 0 ? 'estimating time left…' : ''
  return `about ${formatDuration(Math.max(1, job.etaSeconds))} left`
}

// Every job kind in one registry: what the host prepares, what the worker runs, what the host stores.
import type { JobKind } from '../../shared/api'
import { verifyCheckpointsJob } from '../checkpoints/verify'
import { harvestJob } from '../lm/harvest-job'
import { trainSeriesJob } from '../sae/series-job'
import { featureStatsJob } from '../analysis/feature-stats-job'
import { dynamicsJob } from '../analysis/dynamics-job'
import { geometryJob } from '../analysis/geometry/job'
import { saeImportJob } from './sae-import-job'
import { evaluateSaesJob } from '../sae/evaluate-job'
import type { JobKindDefinition } from './job'

// The registry is keyed by kind; each entry's types are checked where it is defined.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyJobKind = JobKindDefinition<any, any, any>

export const jobKinds: Record<JobKind, AnyJobKind> = {
  'verify-checkpoints': verifyCheckpointsJob,
  harvest: harvestJob,
  'train-series': trainSeriesJob,
  'feature-stats': featureStatsJob,
  dynamics: dynamicsJob,
  geometry: geometryJob,
  'sae-import': saeImportJob,
  'evaluate-saes': evaluateSaesJob
}

export function jobKind(kind: string): AnyJobKind {
  const def = (jobKinds as Record<string, AnyJobKind | undefined>)[kind]
  if (!def) throw new Error(`Unknown job kind ${kind}`)
  return def
}

// The queries of the analysis process, by call name: each prepared on the host from the project (quick, plain
// data out), run in the long-lived analysis process (decoders, activations, tfjs), never in the host.
import type { CallOutput, CallParsedInput } from '../../shared/api'
import type { Project } from '../project'
import { matchCarry, prepareCarry, type CarryInput } from './carry-labels'
import type { DriftCache } from './drift-cache'
import { featureQuery, formationByLabelQuery, formationCurvesQuery, formationQuery, overviewQuery } from './dynamics'
import { LoadedModels, prepareLiveText, runLiveText, type LiveTextInput } from './live-text'

/** What a query's run gets besides its input: the cancel signal and the analysis process's caches. */
export interface QueryContext {
  signal: AbortSignal
  drift: DriftCache
  /** Checkpoints and SAEs kept loaded for live text. */
  models: LoadedModels
}

export const QUERY_NAMES = [
  'dynamics.overview',
  'dynamics.feature',
  'dynamics.formationCurves',
  'dynamics.formationByLabel',
  'dynamics.formation',
  'labels.carryPreview',
  'liveText.run'
] as const
export type QueryName = (typeof QUERY_NAMES)[number]

/** One query of the analysis process: prepared on the host from the project, run where the heavy work may go. */
export interface AnalysisQuery<C extends QueryName, Input> {
  prepare(project: Project, input: CallParsedInput<C>): Input
  run(input: Input, ctx: QueryContext): Promise<CallOutput<C>>
}

export function isQueryName(name: string): name is QueryName {
  return (QUERY_NAMES as readonly string[]).includes(name)
}

/** The labelled features of a superseded SAE's set matched to the new SAE's latents (both decoders read, a Hungarian matching). */
const carryPreviewQuery: AnalysisQuery<'labels.carryPreview', CarryInput> = {
  prepare: (project, { fromSetId, toSetId }) => prepareCarry(project, fromSetId, toSetId),
  run: (input) => matchCarry(input)
}

/** A text through the set's checkpoint and SAE: the feature's activation per token and the top features there. */
const liveTextQuery: AnalysisQuery<'liveText.run', LiveTextInput> = {
  prepare: (project, req) => prepareLiveText(project, req),
  run: (input, ctx) => runLiveText(input, ctx)
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const analysisQueries: { [C in QueryName]: AnalysisQuery<C, any> } = {
  'dynamics.overview': overviewQuery,
  'dynamics.feature': featureQuery,
  'dynamics.formationCurves': formationCurvesQuery,
  'dynamics.formationByLabel': formationByLabelQuery,
  'dynamics.formation': formationQuery,
  'labels.carryPreview': carryPreviewQuery,
  'liveText.run': liveTextQuery
}

/**
 * Runs a query here, in this process (tests, scripts): prepare and run back to back with private caches, or with
 * `models` given, the caller's loaded models (kept after the query; the caller disposes them).
 */
export async function queryInProcess<C extends QueryName>(
  project: Project,
  name: C,
  input: CallParsedInput<C>,
  signal: AbortSignal = new AbortController().signal,
  models?: LoadedModels
): Promise<CallOutput<C>> {
  const { DriftCache } = await import('./drift-cache')
  const q = analysisQueries[name] as AnalysisQuery<C, unknown>
  const own = models ?? new LoadedModels()
  try {
    return await q.run(q.prepare(project, input), { signal, drift: new DriftCache(), models: own })
  } finally {
    if (!models) await own.dispose()
  }
}

export const dynamicsOverview = (project: Project, layer: number): Promise<CallOutput<'dynamics.overview'>> =>
  queryInProcess(project, 'dynamics.overview', { layer })
export const dynamicsFeature = (project: Project, layer: number, feature: number, threshold?: number): Promise<CallOutput<'dynamics.feature'>> =>
  queryInProcess(project, 'dynamics.feature', { layer, feature, threshold })

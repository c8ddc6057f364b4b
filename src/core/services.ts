// The services behind every door: one Workspace (the open project and its jobs) and one handler per call.
import type { z } from 'zod'
import type { ApiReply, CallInput, CallName, CallOutput, CallParsedInput, Door, EventName, EventPayload } from '../shared/api'
import { apiCalls, isCallName, UserError } from '../shared/api'
import { composition } from './analysis/composition'
import { applyCarry, prepareCarry } from './analysis/carry-labels'
import { liveTextStatus } from './analysis/live-text'
import { analysisQueries, type QueryName } from './analysis/queries'
import { discoverCheckpoints } from './checkpoints/discover'
import { importActivationStore } from './lm/import-store'
import { importFeatureSet } from './analysis/import-features'
import { exportFeatures } from './analysis/feature-export'
import { exportLabels, importLabels } from './analysis/label-files'
import { exportNeuronpedia } from './analysis/neuronpedia'
import { AnalysisProcess } from './jobs/analysis-process'
import { JobCancelled } from './jobs/job'
import { JobManager } from './jobs/manager'
import { jobKind } from './jobs/kinds'
import type { WorkerSpawner } from './jobs/protocol'
import { Project } from './project'
import { relocateInputs } from './relocate'
import { SCHEMA_VERSION } from './store/migrations'
import { VERSION } from './version'
import type { EngineStatus } from '../shared/start'
import { probeEngine } from './jobs/engine-probe'
import { startHandlers } from './start-page'
import type { UserSettings } from './user-settings'

export type EventSink = <E extends EventName>(event: E, payload: EventPayload<E>) => void

/** What the process hosting a workspace adds: the desktop app and the browser mode give most of it, the CLI none. */
export interface WorkspaceHost {
  /** Recent projects and the last one opened; every project opened is recorded here. */
  settings?: UserSettings
  /** The user's documents folder: the demo project and suggested new projects go under <documents>/FeatureTrace. */
  documentsDir?: string
  /** The bundled demo series (resources/demo in a checkout, <resources>/demo in a package). */
  demoSource?: string
  /** The system's folder dialog (desktop app): the folder chosen, or null when cancelled. */
  chooseFolder?(purpose: 'open' | 'create'): Promise<string | null>
  /** What only the host knows about the running app (About dialog). */
  about?: { packaged: boolean; downloadsUrl: string | null; electron: string | null; chrome: string | null }
  log?(message: string): void
}

export class Workspace {
  private current: { project: Project; jobs: JobManager; analysis: AnalysisProcess } | null = null
  private readonly sinks = new Set<EventSink>()
  private engine: EngineStatus | null = null

  constructor(
    readonly door: Door,
    private readonly spawner: WorkerSpawner,
    readonly host: WorkspaceHost = {}
  ) {}

  /** Subscribes to every event; returns the unsubscribe function. */
  subscribe(sink: EventSink): () => void {
    this.sinks.add(sink)
    return () => this.sinks.delete(sink)
  }

  emit<E extends EventName>(event: E, payload: EventPayload<E>): void {
    for (const sink of this.sinks) sink(event, payload)
  }

  get project(): Project | null {
    return this.current?.project ?? null
  }

  open(path: string): Project {
    const project = Project.open(path)
    try {
      for (const job of project.jobs.markInterrupted()) this.emit('job.updated', job)
    } catch (err) {
      project.close()
      throw err
    }
    this.close()
    const jobs = new JobManager(project, this.spawner, (event, payload) => this.emit(event, payload))
    this.current = { project, jobs, analysis: new AnalysisProcess(this.spawner) }
    const info = project.info()
    try {
      this.host.settings?.remember(project.path, info.name)
    } catch (err) {
      this.host.log?.(`Could not record ${project.path} among recent projects: ${(err as Error).message}`)
    }
    this.emit('project.changed', info)
    return project
  }

  /** The compute engine jobs run on: the first call asks a job worker (engine-probe.ts), `engine.changed` tells its answer. */
  engineStatus(): EngineStatus {
    if (!this.engine) {
      this.engine = { state: 'probing', engine: null, gpu: null, reason: 'Asking a job worker which compute engine it can run…' }
      void probeEngine(this.spawner).then((status) => {
        this.engine = status
        this.emit('engine.changed', status)
      })
    }
    return this.engine
  }

  close(): void {
    if (!this.current) return
    this.current.jobs.dispose()
    this.current.analysis.dispose()
    this.current.project.close()
    this.current = null
  }

  requireProject(): { project: Project; jobs: JobManager; analysis: AnalysisProcess } {
    if (!this.current) throw new UserError('No project is open. Open or create a project first.', 'no-project')
    return this.current
  }
}

export type Handlers = { [C in CallName]: (input: CallParsedInput<C>) => CallOutput<C> | Promise<CallOutput<C>> }

export function createHandlers(ws: Workspace): Handlers {
  /** A query of the analysis process: the host prepares its input from the project, the process computes. */
  const query =
    <C extends QueryName>(name: C) =>
    async (input: CallParsedInput<C>): Promise<CallOutput<C>> => {
      const { project, analysis } = ws.requireProject()
      const prepared: unknown = analysisQueries[name].prepare(project, input as never)
      return (await analysis.ask(name, prepared, input.requestId)) as CallOutput<C>
    }
  return {
    'app.info': async () => ({
      name: 'FeatureTrace',
      version: VERSION,
      door: ws.door,
      schemaVersion: SCHEMA_VERSION,
      project: ws.project?.info() ?? null,
      // demo.ts calls services: imported when needed, not at load, so the two modules do not load each other.
      pairLists: (await import('./demo')).bundledPairLists()
    }),
    'project.open': ({ path }) => ws.open(path).info(),
    'project.info': () => ws.project?.info() ?? null,
    'project.relocate': ({ from, to }) => {
      const { project } = ws.requireProject()
      const relocated = relocateInputs(project, from, to)
      const info = project.info()
      ws.emit('project.changed', info)
      ws.emit('checkpoints.changed', { count: info.checkpointCount })
      return { relocated, project: info }
    },
    'checkpoints.list': () => ws.requireProject().project.checkpoints.list(),
    'checkpoints.get': ({ id }) => ws.requireProject().project.checkpoints.detail(id),
    'checkpoints.register': ({ folder, tokensPerStep, step }) => {
      const { project } = ws.requireProject()
      const discovered = discoverCheckpoints(folder, step)
      const { added, skipped } = project.checkpoints.addAll(discovered.found, tokensPerStep)
      ws.emit('checkpoints.changed', { count: project.checkpoints.count() })
      return { added, skipped: [...discovered.skipped, ...skipped] }
    },
    'checkpoints.update': ({ id, ...change }) => {
      const { project } = ws.requireProject()
      const updated = project.checkpoints.update(id, change)
      ws.emit('checkpoints.changed', { count: project.checkpoints.count() })
      return updated
    },
    'activations.list': () => ws.requireProject().project.activations.list(),
    'activations.import': async ({ path, checkpointId }) => {
      const { project } = ws.requireProject()
      const info = await importActivationStore(project, path, checkpointId)
      ws.emit('checkpoints.changed', { count: project.checkpoints.count() })
      return info
    },
    'saes.list': (input) => ws.requireProject().project.saes.list({ includeSuperseded: input?.includeSuperseded }),
    'saes.metrics': ({ checkpointId, layer }) => ws.requireProject().project.saes.metrics(checkpointId, layer),
    'saes.quality': ({ layer }) => ws.requireProject().project.features.quality(layer),
    'saes.evaluations': (input) => ws.requireProject().project.evaluations.list(input?.layer),
    'saes.scanImport': async (req) => (await import('./sae/import')).scanSaeImport(ws.requireProject().project, req),
    'saes.import': async (req) => {
      const { project, jobs } = ws.requireProject()
      const job = await jobs.waitFor(jobs.start({ ...req, kind: 'sae-import' }).id)
      if (job.state === 'cancelled') throw new JobCancelled()
      if (job.kind !== 'sae-import' || job.state !== 'done' || !job.result) throw new UserError(job.error ?? `The SAE import ${job.state}.`)
      return job.result.saeIds.map((id) => project.saes.get(id)!)
    },
    'features.sets': () => ws.requireProject().project.features.sets(),
    'features.list': (q) => ws.requireProject().project.features.list(q),
    'features.indexOf': ({ feature, ...q }) => ({ index: ws.requireProject().project.features.indexOf(q, feature) }),
    'features.get': ({ setId, feature }) => ws.requireProject().project.features.get(setId, feature),
    'liveText.status': ({ setId }) => liveTextStatus(ws.requireProject().project, setId),
    'liveText.run': query('liveText.run'),
    'features.import': ({ path, name }) => {
      const { project } = ws.requireProject()
      const sets = importFeatureSet(project, path, name)
      ws.emit('features.changed', { sets: project.features.sets().length })
      return sets
    },
    'features.export': ({ path, ...opts }) => ({ features: exportFeatures(ws.requireProject().project, path, opts), path }),
    'features.exportNeuronpedia': ({ path, ...opts }) => exportNeuronpedia(ws.requireProject().project, path, opts),
    'taxonomy.get': () => ws.requireProject().project.taxonomy.names(),
    'taxonomy.set': ({ names }) => ws.requireProject().project.taxonomy.set(names),
    'labels.set': ({ setId, feature, annotator, category, note, requestId, blind }) => {
      const { label, applied } = ws.requireProject().project.labels.applyLabel(setId, feature, annotator, category, note, { requestId, blind })
      // A retried request changed nothing: announcing its old result again could undo a newer change elsewhere.
      if (applied) ws.emit('labels.changed', label)
      return label
    },
    'labels.undo': ({ annotator, setId, requestId }) => {
      const { label, applied } = ws.requireProject().project.labels.applyUndo(annotator, setId, requestId)
      if (label && applied) ws.emit('labels.changed', label)
      return label
    },
    'labels.forFeatures': ({ setId, annotator, features }) => ws.requireProject().project.labels.labelsOf(setId, annotator, features),
    'labels.annotators': ({ setId }) => ws.requireProject().project.labels.annotators(setId),
    'labels.sample': ({ setId, n, seed, skipDead }) => ws.requireProject().project.features.sample(setId, n, seed, skipDead),
    'labels.history': ({ setId, feature }) => ws.requireProject().project.labels.history(setId, feature),
    'labels.carryPreview': query('labels.carryPreview'),
    'labels.carry': async ({ fromSetId, toSetId, minCosine, requestId }) => {
      const { project, analysis } = ws.requireProject()
      // The matching in the analysis process; the copy, one transaction, here.
      const preview = (await analysis.ask('labels.carryPreview', prepareCarry(project, fromSetId, toSetId), requestId)) as CallOutput<'labels.carryPreview'>
      const result = applyCarry(project, preview, minCosine)
      ws.emit('features.changed', { sets: project.features.sets().length })
      return result
    },
    'analysis.composition': (input) => composition(ws.requireProject().project, input?.annotator),
    'labels.export': ({ path }) => ({ labels: exportLabels(ws.requireProject().project, path), path }),
    'labels.import': ({ path, overwrite }) => {
      const { project } = ws.requireProject()
      const report = importLabels(project, path, { overwrite })
      ws.emit('features.changed', { sets: project.features.sets().length })
      return report
    },
    'dynamics.overview': query('dynamics.overview'),
    'dynamics.feature': query('dynamics.feature'),
    'dynamics.formationByLabel': query('dynamics.formationByLabel'),
    'dynamics.formationCurves': query('dynamics.formationCurves'),
    'dynamics.formation': query('dynamics.formation'),
    'dynamics.run': ({ layer }) => ws.requireProject().project.dynamics.run(layer),
    'dynamics.rows': ({ layer }) => ws.requireProject().project.dynamics.rows(layer),
    'analysis.cancel': ({ requestId }) => ({ cancelled: ws.requireProject().analysis.cancel(requestId) }),
    'jobs.list': () => ws.requireProject().project.jobs.list(),
    'jobs.start': (request) => ws.requireProject().jobs.start(request),
    'jobs.replaces': (request) => {
      const { project } = ws.requireProject()
      const labelsKept = (project.db.prepare('SELECT count(*) AS n FROM label WHERE category IS NOT NULL').get() as { n: number }).n
      return { replaces: jobKind(request.kind).replaces?.(project, request) ?? [], labelsKept }
    },
    'jobs.cancel': ({ id }) => ws.requireProject().jobs.cancel(id),
    'geometry.results': ({ analysis, layer }) => ws.requireProject().project.geometry.list(analysis, layer),
    'geometry.result': ({ id }) => {
      const r = ws.requireProject().project.geometry.get(id)
      if (!r) throw new UserError(`No geometry result ${id} in this project.`, 'not-found')
      return r
    },
    ...startHandlers(ws)
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'payload'}: ${i.message}`).join('; ')
}

/**
 * The single entry point of every door: validates the call name and payload, runs the handler,
 * and wraps the outcome in the reply envelope. Never throws.
 */
export async function dispatch(handlers: Handlers, name: unknown, payload: unknown): Promise<ApiReply<unknown>> {
  if (!isCallName(name)) {
    return { ok: false, error: { code: 'bad-request', message: `Unknown call ${JSON.stringify(name)}.` } }
  }
  const parsed = apiCalls[name].input.safeParse(payload ?? undefined)
  if (!parsed.success) {
    return { ok: false, error: { code: 'bad-request', message: `Invalid payload for ${name}: ${describeIssues(parsed.error)}` } }
  }
  try {
    const handler = handlers[name] as (input: unknown) => unknown
    const result = await handler(parsed.data)
    return { ok: true, result }
  } catch (err) {
    if (err instanceof UserError) return { ok: false, error: { code: err.code, message: err.message } }
    if (err instanceof JobCancelled) return { ok: false, error: { code: 'cancelled', message: `${name} was cancelled.` } }
    console.error(`[featuretrace] ${name} failed:`, err)
    return { ok: false, error: { code: 'internal', message: `Internal error in ${name}: ${thrownText(err)}` } }
  }
}

/** A thrown value as text; handlers may throw non-Errors, even ones String() cannot convert. */
export function thrownText(err: unknown): string {
  if (err instanceof Error) return err.message
  try {
    return String(err)
  } catch {
    return 'a value that is not an Error'
  }
}

/** One call from inside the process (CLI, demo): validated and handled as from any door; a failure is thrown. */
export async function callService<C extends CallName>(ws: Workspace, name: C, payload?: CallInput<C>): Promise<CallOutput<C>> {
  const reply = (await dispatch(createHandlers(ws), name, payload)) as ApiReply<CallOutput<C>>
  if (!reply.ok) throw new UserError(reply.error.message, reply.error.code)
  return reply.result
}

// The API contract: every call and event that crosses a process boundary, described once.
// Imported by core (implementation), main/preload (Electron IPC), server (HTTP/WebSocket), cli and renderer.
import { z } from 'zod'

export const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'] as const
export const JobStateSchema = z.enum(JOB_STATES)
export type JobState = z.infer<typeof JobStateSchema>

export const ProjectInfoSchema = z.object({
  path: z.string(),
  name: z.string(),
  createdAt: z.string(),
  schemaVersion: z.number().int(),
  checkpointCount: z.number().int().nonnegative()
})
export type ProjectInfo = z.infer<typeof ProjectInfoSchema>

export const VerifyStatusSchema = z.enum(['unverified', 'ok', 'problems'])

export const CheckpointSchema = z.object({
  id: z.number().int(),
  step: z.number().int().nonnegative(),
  name: z.string(),
  path: z.string(),
  modelType: z.string(),
  /** Whether FeatureTrace can run this architecture itself (gpt_neox, llama, gpt2). */
  supported: z.boolean(),
  dModel: z.number().int().positive(),
  layers: z.number().int().positive(),
  heads: z.number().int().positive().nullable(),
  vocabSize: z.number().int().positive().nullable(),
  tokensSeen: z.number().nonnegative().nullable(),
  weightsBytes: z.number().int().nonnegative().nullable(),
  verifyStatus: VerifyStatusSchema,
  registeredAt: z.string(),
  /** Harvested (or imported) activation stores, one per layer. */
  activations: z.array(z.object({ layer: z.number().int(), rows: z.number().int() }))
})
export type Checkpoint = z.infer<typeof CheckpointSchema>

export const ActivationStoreInfoSchema = z.object({
  id: z.number().int(),
  checkpointId: z.number().int(),
  step: z.number().int(),
  layer: z.number().int(),
  path: z.string(),
  rows: z.number().int(),
  d: z.number().int(),
  dtype: z.enum(['f16', 'f32']),
  context: z.number().int(),
  corpus: z.string(),
  imported: z.boolean(),
  createdAt: z.string()
})
export type ActivationStoreInfo = z.infer<typeof ActivationStoreInfoSchema>

export const VerifyFileSchema = z.object({
  file: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().nullable(),
  tensors: z.number().int().nonnegative().nullable()
})
export const VerifyReportSchema = z.object({
  checkpointId: z.number().int(),
  ok: z.boolean(),
  files: z.array(VerifyFileSchema),
  problems: z.array(z.string())
})
export type VerifyReport = z.infer<typeof VerifyReportSchema>

export const CheckpointDetailSchema = CheckpointSchema.extend({
  config: z.record(z.string(), z.unknown()),
  verifyReport: VerifyReportSchema.nullable(),
  stores: z.array(ActivationStoreInfoSchema)
})
export type CheckpointDetail = z.infer<typeof CheckpointDetailSchema>

export const SkippedFolderSchema = z.object({ path: z.string(), reason: z.string() })

export const SaeInfoSchema = z.object({
  id: z.number().int(),
  checkpointId: z.number().int(),
  step: z.number().int(),
  layer: z.number().int(),
  path: z.string(),
  preset: z.string(),
  d: z.number().int(),
  n: z.number().int(),
  k: z.number().int(),
  warmStarted: z.boolean(),
  tokens: z.number().int(),
  steps: z.number().int(),
  fvu: z.number().nullable(),
  explainedVariance: z.number().nullable(),
  cosine: z.number().nullable(),
  l0: z.number().nullable(),
  deadFraction: z.number().nullable(),
  backend: z.string().nullable(),
  createdAt: z.string()
})
export type SaeInfo = z.infer<typeof SaeInfoSchema>

export const SaeMetricSchema = z.object({
  checkpointId: z.number().int(),
  layer: z.number().int(),
  step: z.number().int(),
  tokens: z.number().int(),
  loss: z.number(),
  auxLoss: z.number(),
  l0: z.number(),
  deadFraction: z.number(),
  lr: z.number(),
  tokensPerSecond: z.number().nullable()
})
export type SaeMetric = z.infer<typeof SaeMetricSchema>

/** Parameters of each job kind; the discriminant is `kind`. Later issues add kinds here. */
export const JobRequestSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('verify-checkpoints'),
    /** Empty: every registered checkpoint. */
    checkpointIds: z.array(z.number().int()).max(100_000).default([])
  }),
  z.object({
    kind: z.literal('harvest'),
    /** Empty: every registered checkpoint, in step order. */
    checkpointIds: z.array(z.number().int()).max(100_000).default([]),
    corpus: z.string().min(1).max(4096),
    /** Language tag for a plain-text corpus. */
    lang: z.string().max(32).optional(),
    layer: z.number().int().nonnegative().max(10_000),
    context: z.number().int().positive().max(1_000_000).default(64),
    maxTokens: z.number().int().positive().optional(),
    dtype: z.enum(['f16', 'f32']).default('f16'),
    seed: z.number().int().default(0),
    dropShort: z.boolean().default(false),
    backend: z.enum(['tensorflow', 'wasm', 'cpu']).optional()
  }),
  z.object({
    kind: z.literal('train-series'),
    /** Empty: every checkpoint with activations at this layer, in step order. */
    checkpointIds: z.array(z.number().int()).max(100_000).default([]),
    layer: z.number().int().nonnegative(),
    preset: z.enum(['inaba2025', 'sae-track', 'gao2024']).default('sae-track'),
    n: z.number().int().positive().max(1 << 22).optional(),
    k: z.number().int().positive().optional(),
    /** Tokens for the first SAE; warm-started ones take the preset's fraction of it. */
    tokens: z.number().int().positive().optional(),
    batchSize: z.number().int().positive().optional(),
    lr: z.number().positive().optional(),
    seed: z.number().int().default(0),
    backend: z.enum(['tensorflow', 'wasm', 'cpu']).optional()
  })
])
export type JobRequest = z.infer<typeof JobRequestSchema>
export type JobKind = JobRequest['kind']

export const JobSchema = z.object({
  id: z.number().int(),
  kind: z.string(),
  params: z.unknown(),
  state: JobStateSchema,
  fraction: z.number().min(0).max(1),
  rate: z.number().nullable(),
  rateUnit: z.string().nullable(),
  etaSeconds: z.number().nullable(),
  message: z.string().nullable(),
  error: z.string().nullable(),
  result: z.unknown().nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable()
})
export type Job = z.infer<typeof JobSchema>

export const DoorSchema = z.enum(['electron', 'browser', 'cli'])
export type Door = z.infer<typeof DoorSchema>

export const AppInfoSchema = z.object({
  name: z.literal('FeatureTrace'),
  version: z.string(),
  door: DoorSchema,
  schemaVersion: z.number().int(),
  project: ProjectInfoSchema.nullable()
})
export type AppInfo = z.infer<typeof AppInfoSchema>

const pathString = z.string().min(1).max(4096)
const id = z.object({ id: z.number().int().nonnegative() }).strict()
const none = z.object({}).strict().optional()

/** Every call: its payload schema and its result schema. */
export const apiCalls = {
  'app.info': { input: none, output: AppInfoSchema },
  'project.open': {
    input: z.object({ path: pathString }).strict(),
    output: ProjectInfoSchema
  },
  'project.info': { input: none, output: ProjectInfoSchema.nullable() },
  'checkpoints.list': { input: none, output: z.array(CheckpointSchema) },
  'checkpoints.get': { input: id, output: CheckpointDetailSchema },
  'checkpoints.register': {
    input: z
      .object({
        folder: pathString,
        /** Tokens per training step, to fill tokens seen (Pythia: 2,097,152). */
        tokensPerStep: z.number().int().positive().max(1e12).optional(),
        /** Step for a single checkpoint folder whose name carries none. */
        step: z.number().int().nonnegative().optional()
      })
      .strict(),
    output: z.object({ added: z.array(CheckpointSchema), skipped: z.array(SkippedFolderSchema) })
  },
  'checkpoints.update': {
    input: z
      .object({
        id: z.number().int().nonnegative(),
        step: z.number().int().nonnegative().optional(),
        tokensSeen: z.number().nonnegative().nullable().optional()
      })
      .strict(),
    output: CheckpointSchema
  },
  'activations.list': { input: none, output: z.array(ActivationStoreInfoSchema) },
  'activations.import': {
    input: z.object({ path: pathString, checkpointId: z.number().int().nonnegative() }).strict(),
    output: ActivationStoreInfoSchema
  },
  'saes.list': { input: none, output: z.array(SaeInfoSchema) },
  'saes.metrics': {
    input: z.object({ checkpointId: z.number().int().nonnegative(), layer: z.number().int().nonnegative() }).strict(),
    output: z.array(SaeMetricSchema)
  },
  'jobs.list': { input: none, output: z.array(JobSchema) },
  'jobs.start': { input: JobRequestSchema, output: JobSchema },
  'jobs.cancel': { input: id, output: JobSchema }
} as const

export type ApiCalls = typeof apiCalls
export type CallName = keyof ApiCalls
export type CallInput<C extends CallName> = z.input<ApiCalls[C]['input']>
export type CallParsedInput<C extends CallName> = z.output<ApiCalls[C]['input']>
export type CallOutput<C extends CallName> = z.output<ApiCalls[C]['output']>

export const apiEvents = {
  'job.updated': JobSchema,
  'checkpoints.changed': z.object({ count: z.number().int() }),
  'project.changed': ProjectInfoSchema.nullable(),
  'sae.metric': SaeMetricSchema,
  'saes.changed': z.object({ count: z.number().int() })
} as const
export type ApiEvents = typeof apiEvents
export type EventName = keyof ApiEvents
export type EventPayload<E extends EventName> = z.output<ApiEvents[E]>

export function isCallName(name: unknown): name is CallName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(apiCalls, name)
}
export function isEventName(name: unknown): name is EventName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(apiEvents, name)
}

/** Every reply crossing a boundary is this envelope. */
export type ApiError = { code: ApiErrorCode; message: string }
export type ApiErrorCode = 'bad-request' | 'no-project' | 'not-found' | 'forbidden' | 'user-error' | 'internal'
export type ApiReply<T> = { ok: true; result: T } | { ok: false; error: ApiError }

/** The one client interface every view uses: `window.api` in Electron, a WebSocket client in the browser. */
export interface ApiClient {
  call<C extends CallName>(name: C, payload?: CallInput<C>): Promise<CallOutput<C>>
  on<E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): () => void
}

/** What the preload exposes as `window.api`: untyped transport the renderer wraps into an ApiClient. */
export interface PreloadBridge {
  invoke(name: string, payload: unknown): Promise<ApiReply<unknown>>
  subscribe(listener: (event: string, payload: unknown) => void): () => void
}

/** An error whose message is meant for the user (bad file, wrong folder), not a bug. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly code: ApiErrorCode = 'user-error'
  ) {
    super(message)
    this.name = 'UserError'
  }
}

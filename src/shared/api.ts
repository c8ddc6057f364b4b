// The API contract: every call and event that crosses a process boundary, described once.
// Imported by core (implementation), main/preload (Electron IPC), server (HTTP/WebSocket), cli and renderer.
import { z } from 'zod'
import { geometryCalls, GeometryJobRequestSchema } from './geometry'
import { startCalls, startEvents } from './start'

export const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'] as const
export const JobStateSchema = z.enum(JOB_STATES)
export type JobState = z.infer<typeof JobStateSchema>

/** An input kept outside the project folder (so stored absolute) that is no longer where it was. */
export const MissingInputSchema = z.object({
  kind: z.enum(['checkpoint', 'activations', 'sae', 'corpus']),
  /** The checkpoint's, activation store's or SAE's id (a corpus: the first store harvested from it). */
  id: z.number().int(),
  /** Where the project expects it. */
  path: z.string(),
  /** What it is, for people: "checkpoint step 1000", "corpus of layer 2 at step 0". */
  what: z.string()
})
export type MissingInput = z.infer<typeof MissingInputSchema>

export const ProjectInfoSchema = z.object({
  path: z.string(),
  name: z.string(),
  createdAt: z.string(),
  schemaVersion: z.number().int(),
  checkpointCount: z.number().int().nonnegative(),
  missing: z.array(MissingInputSchema)
})
export type ProjectInfo = z.infer<typeof ProjectInfoSchema>

export const VerifyStatusSchema = z.enum(['unverified', 'ok', 'problems'])

export const CheckpointSchema = z.object({
  id: z.number().int(),
  step: z.number().int().nonnegative(),
  name: z.string(),
  /** The checkpoint folder; null for an SAE-only checkpoint (known by SAEs imported for its step, no weights registered). */
  path: z.string().nullable(),
  modelType: z.string(),
  /** Whether FeatureTrace can run this architecture itself (gpt_neox, llama, gpt2); false without weights. */
  supported: z.boolean(),
  dModel: z.number().int().positive(),
  /** Number of blocks; null for an SAE-only checkpoint. */
  layers: z.number().int().positive().nullable(),
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
  /** The hook the SAE reads in its source's naming (SAELens hook_name, sparsify hookpoint, Gemma Scope's by release); null for SAEs trained here. */
  hook: z.string().nullable(),
  createdAt: z.string(),
  /** The SAE that replaced this one as the checkpoint's current SAE at this layer (retrained or re-imported); null while current. */
  supersededBy: z.number().int().nullable(),
  supersededAt: z.string().nullable()
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

export const FeatureSetInfoSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  source: z.enum(['sae', 'import']),
  saeId: z.number().int().nullable(),
  checkpointId: z.number().int().nullable(),
  /** The checkpoint as an imported file named it. */
  checkpointLabel: z.string().nullable(),
  step: z.number().int().nullable(),
  layer: z.number().int().nullable(),
  nFeatures: z.number().int(),
  createdAt: z.string(),
  /** When statistics were last recomputed in place (labels kept); null if never. */
  updatedAt: z.string().nullable(),
  /** The set's SAE was superseded by a retrained or re-imported one: its features and labels are kept here. */
  superseded: z.boolean(),
  /** Labels anywhere in the set (all annotators). */
  labelCount: z.number().int()
})
export type FeatureSetInfo = z.infer<typeof FeatureSetInfoSchema>

export const FeatureSummarySchema = z.object({
  feature: z.number().int(),
  density: z.number().nullable(),
  maxAct: z.number().nullable(),
  meanAct: z.number().nullable(),
  dead: z.boolean(),
  langClass: z.string().nullable(),
  topTokens: z.string(),
  /** The requesting annotator's category, if any. */
  label: z.string().nullable(),
  /** From the layer's dynamics run, when one was computed: formation step (SAE variant) and total drift. */
  formationStep: z.number().int().nullable(),
  totalDrift: z.number().nullable()
})
export type FeatureSummary = z.infer<typeof FeatureSummarySchema>

export const FeatureListQuerySchema = z
  .object({
    setId: z.number().int().nonnegative(),
    offset: z.number().int().nonnegative().optional(),
    limit: z.number().int().positive().max(5000).optional(),
    sort: z.enum(['feature', 'density', 'maxAct', 'meanAct', 'lang', 'formation', 'drift']).optional(),
    descending: z.boolean().optional(),
    lang: z.string().max(32).optional(),
    /** A category, or 'unlabelled'. */
    label: z.string().max(200).optional(),
    annotator: z.string().max(100).optional(),
    search: z.string().max(200).optional(),
    minDensity: z.number().optional(),
    maxDensity: z.number().optional(),
    dead: z.boolean().optional()
  })
  .strict()
export type FeatureListQuery = z.infer<typeof FeatureListQuerySchema>

/** Where a label was carried from: a feature of a superseded SAE's set matched to this one by decoder cosine. */
export const LabelOriginSchema = z.object({
  setId: z.number().int(),
  setName: z.string(),
  feature: z.number().int(),
  saeId: z.number().int().nullable(),
  cosine: z.number()
})
export type LabelOrigin = z.infer<typeof LabelOriginSchema>

export const LabelSchema = z.object({
  setId: z.number().int(),
  feature: z.number().int(),
  annotator: z.string(),
  category: z.string().nullable(),
  note: z.string(),
  updatedAt: z.string(),
  origin: LabelOriginSchema.nullable()
})
export type Label = z.infer<typeof LabelSchema>

export const LabelEventSchema = z.object({
  id: z.number().int(),
  annotator: z.string(),
  categoryBefore: z.string().nullable(),
  noteBefore: z.string().nullable(),
  categoryAfter: z.string().nullable(),
  noteAfter: z.string().nullable(),
  at: z.string(),
  undoes: z.number().int().nullable(),
  origin: LabelOriginSchema.nullable(),
  /** Made without seeing other annotators' labels of the feature; null when not recorded. */
  blind: z.boolean().nullable()
})
export type LabelEvent = z.infer<typeof LabelEventSchema>

export const FeatureExampleViewSchema = z.object({
  sampler: z.enum(['paper', 'top', 'interval', 'imported']),
  tokens: z.array(z.string()),
  acts: z.array(z.number())
})
export type FeatureExampleView = z.infer<typeof FeatureExampleViewSchema>

export const FeatureDetailSchema = z.object({
  setId: z.number().int(),
  feature: z.number().int(),
  density: z.number().nullable(),
  maxAct: z.number().nullable(),
  meanAct: z.number().nullable(),
  dead: z.boolean(),
  langClass: z.string().nullable(),
  langCounts: z.record(z.string(), z.number()).nullable(),
  histogram: z.object({ lo: z.number(), hi: z.number(), counts: z.array(z.number()) }).nullable(),
  neighbours: z.array(z.object({ feature: z.number().int(), cosine: z.number() })),
  examples: z.array(FeatureExampleViewSchema),
  labels: z.array(LabelSchema)
})
export type FeatureDetail = z.infer<typeof FeatureDetailSchema>

const annotatorName = z.string().trim().min(1).max(100)
/** M_i(t) is a difference of mean cosines: a threshold outside (−1, 1) is never crossed, so every feature would read "not formed". */
const THRESHOLD_RANGE = 'must lie between −1 and 1 (M is a difference of mean cosines; SAE-Track uses 0.5)'
export const formationThreshold = z.number().gt(-1, THRESHOLD_RANGE).lt(1, THRESHOLD_RANGE)
/** The longest note a label may carry, in UTF-16 code units (what the UI counts too). */
export const NOTE_MAX_CHARS = 10_000
/** A client-made id of one label write, so a retry after a lost reply is applied once. */
const requestId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'must be 8–64 letters, digits, - or _')

export const CompositionSchema = z.object({
  setId: z.number().int(),
  name: z.string(),
  step: z.number().int().nullable(),
  checkpointLabel: z.string().nullable(),
  features: z.number().int(),
  /** Labelled features per category (by the chosen annotator, else each feature's majority label). */
  labels: z.record(z.string(), z.number().int()),
  unlabelled: z.number().int(),
  /** Features per language class (en, ja, mix, …). */
  languages: z.record(z.string(), z.number().int()),
  /** Bilingual ("mix") features split by whether their label says interpretable. */
  mix: z.object({ interpretable: z.number().int(), uninterpretable: z.number().int(), unlabelled: z.number().int() }),
  agreement: z.object({
    annotators: z.array(z.string()),
    items: z.number().int(),
    statistic: z.enum(['cohen', 'fleiss']).nullable(),
    kappa: z.number().nullable(),
    /** Of those items, the ones every compared label of which was made blind. */
    blindItems: z.number().int()
  })
})
export type Composition = z.infer<typeof CompositionSchema>

const variantCurves = z.object({ sae: z.array(z.number()), raw: z.array(z.number()), jaccard: z.array(z.number()), weightedJaccard: z.array(z.number()) })
const variantSteps = z.object({ sae: z.number().nullable(), raw: z.number().nullable(), jaccard: z.number().nullable(), weightedJaccard: z.number().nullable() })

export const DynamicsOverviewSchema = z.object({
  layer: z.number().int(),
  steps: z.array(z.number().int()),
  n: z.number().int(),
  warmStarted: z.boolean(),
  matchMethod: z.string().nullable(),
  /** Per checkpoint, 100 bins of the cosine to the final SAE on [-1, 1]. */
  histograms: z.array(z.array(z.number().int())),
  /** Per feature, 1 − cos(first checkpoint, final). */
  totalDrift: z.array(z.number())
})
export type DynamicsOverview = z.infer<typeof DynamicsOverviewSchema>

export const DynamicsFeatureSchema = z.object({
  layer: z.number().int(),
  feature: z.number().int(),
  steps: z.array(z.number().int()),
  cosToFinal: z.array(z.number()),
  cosToPrevious: z.array(z.number()),
  /** PCA(2) of the feature's decoder rows across checkpoints. */
  trajectory: z.array(z.tuple([z.number(), z.number()])),
  /** Null when some step of the series has no activations (an SAE-only checkpoint): formationUnavailable says which. */
  formation: z.object({ threshold: z.number(), m: variantCurves, formationStep: variantSteps }).nullable(),
  formationUnavailable: z.string().nullable(),
  sets: z.array(z.object({ step: z.number().int(), setId: z.number().int() }))
})
export type DynamicsFeature = z.infer<typeof DynamicsFeatureSchema>

export const DynamicsRunSchema = z.object({
  layer: z.number().int(),
  steps: z.array(z.number().int()),
  n: z.number().int(),
  threshold: z.number(),
  warmStarted: z.boolean(),
  matchMethod: z.string().nullable(),
  createdAt: z.string()
})
export type DynamicsRunInfo = z.infer<typeof DynamicsRunSchema>

export const FeatureDynamicsRowSchema = z.object({
  feature: z.number().int(),
  /** 1 − cos(decoder row at the first checkpoint, at the final one). */
  totalDrift: z.number(),
  /** The largest single move: the smallest cosine to the previous checkpoint. */
  minCosToPrevious: z.number(),
  formationStep: variantSteps,
  /** M_i at the final checkpoint (SAE variant). */
  mFinal: z.number().nullable()
})
export type FeatureDynamicsRow = z.infer<typeof FeatureDynamicsRowSchema>

export const FormationCurvesSchema = z.object({
  layer: z.number().int(),
  steps: z.array(z.number().int()),
  threshold: z.number(),
  curves: z.array(z.object({ feature: z.number().int(), m: z.array(z.number()), formationStep: z.number().int().nullable() }))
})
export type FormationCurves = z.infer<typeof FormationCurvesSchema>

export const FormationByLabelSchema = z.object({
  layer: z.number().int(),
  steps: z.array(z.number().int()),
  labelledFeatures: z.number().int(),
  /** Whether the steps came from the stored dynamics run (else computed for this request). */
  stored: z.boolean(),
  /** category → formation step (or "never") → features. */
  counts: z.record(z.string(), z.record(z.string(), z.number().int())),
  /** Whether labels from every checkpoint counted (a warm-started series), or only the final checkpoint's. */
  warmStarted: z.boolean(),
  /** Whose labels counted; null: each feature's majority label over all annotators. */
  annotator: z.string().nullable(),
  /** Everyone who labelled features of the checkpoints that count. */
  annotators: z.array(z.string()),
  /** The checkpoints whose labels were counted. */
  labelSteps: z.array(z.number().int())
})
export type FormationByLabel = z.infer<typeof FormationByLabelSchema>

export const SaeImportItemSchema = z.object({
  /** The SAE's folder or file. */
  path: z.string(),
  format: z.enum(['saelens', 'sparsify', 'gemma-scope', 'llm-jp-sae']),
  architecture: z.enum(['topk', 'jumprelu', 'standard']),
  dIn: z.number().int(),
  dSae: z.number().int(),
  k: z.number().int().nullable(),
  /** JumpReLU's per-latent threshold: smallest, median, largest. */
  threshold: z.object({ min: z.number(), median: z.number(), max: z.number() }).nullable(),
  applyBDecToInput: z.boolean(),
  inputScaling: z.string(),
  dtype: z.string(),
  /** The hook the SAE reads, in its source's naming. */
  hook: z.string().nullable(),
  /** What that hook is: residual, mlp_out, attn_out, attn_heads, transcoder, … (only the residual stream is imported). */
  stream: z.string(),
  step: z.number().int().nullable(),
  checkpointId: z.number().int().nullable(),
  /** The step has no registered checkpoint: the import makes an SAE-only one (no weights). */
  newCheckpoint: z.boolean(),
  layer: z.number().int().nullable(),
  notes: z.array(z.string())
})
export type SaeImportItem = z.infer<typeof SaeImportItemSchema>
export const SaeImportScanSchema = z.object({ path: z.string(), found: z.array(SaeImportItemSchema), problems: z.array(SkippedFolderSchema) })
export type SaeImportScan = z.infer<typeof SaeImportScanSchema>
export const SaeImportRequestSchema = z
  .object({
    path: z.string().min(1).max(4096),
    /** Checkpoint step for a single SAE whose name and config carry none. */
    step: z.number().int().nonnegative().optional(),
    /** Residual-stream layer (after block L) when the source does not say. */
    layer: z.number().int().nonnegative().max(10_000).optional(),
    /** Which hookpoint subfolder to take where a step folder holds several (sparsify). */
    hookpoint: z.string().max(200).optional(),
    /** Replace SAEs already attached at the same checkpoint and layer. */
    replace: z.boolean().optional(),
    /**
     * Record steps without a registered checkpoint folder as SAE-only checkpoints (no weights). Implied when the
     * project has no checkpoint with weights.
     */
    saeOnly: z.boolean().optional()
  })
  .strict()
export type SaeImportRequest = z.infer<typeof SaeImportRequestSchema>

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
    kind: z.literal('feature-stats'),
    /** Empty: every SAE of the layer. */
    checkpointIds: z.array(z.number().int()).max(100_000).default([]),
    layer: z.number().int().nonnegative(),
    examples: z.number().int().positive().max(1000).default(50),
    topN: z.number().int().positive().max(1000).default(20),
    maxRows: z.number().int().positive().optional(),
    language: z
      .union([
        z.object({ rule: z.literal('paper') }),
        z.object({ rule: z.literal('script'), scripts: z.record(z.string().max(32), z.array(z.string().regex(/^[A-Z][a-z_]+$/)).min(1)) }),
        z.object({ rule: z.literal('tags') })
      ])
      .optional(),
    languageThreshold: z.number().gt(0.5).lt(1).optional()
  }),
  z.object({
    kind: z.literal('dynamics'),
    layer: z.number().int().nonnegative(),
    /** M above which a feature counts as formed (METHODS §2). */
    threshold: formationThreshold.default(0.5),
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
    /** Warm-up steps of the first SAE (the preset's when absent). */
    warmupSteps: z.number().int().nonnegative().optional(),
    /** Tokens of each warm-started SAE as a fraction of the first's (sae-track: 0.05). */
    warmTokenFraction: z.number().gt(0).max(1).optional(),
    /** Learning rate of each warm-started SAE as a fraction of the first's (sae-track: 0.1). */
    warmLrFactor: z.number().gt(0).max(1).optional(),
    /**
     * Train new SAEs where the checkpoints already have one at this layer. The new ones become current; the old SAEs,
     * their feature sets and labels are kept (superseded). Without it, existing SAEs are kept and skipped.
     */
    retrain: z.boolean().default(false),
    seed: z.number().int().default(0),
    backend: z.enum(['tensorflow', 'wasm', 'cpu']).optional(),
    /** The model's name written into each SAE's cfg.json (SAELens' model_name); default: from the checkpoint folder. */
    modelName: z.string().trim().min(1).max(200).optional()
  }),
  GeometryJobRequestSchema
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
  project: ProjectInfoSchema.nullable(),
  /** The example word-pair lists shipped with FeatureTrace (absolute paths), for crystals. */
  pairLists: z.array(z.string())
})
export type AppInfo = z.infer<typeof AppInfoSchema>

export const CarryPreviewSchema = z.object({
  from: FeatureSetInfoSchema,
  to: FeatureSetInfoSchema,
  /** The labelled features matched one-to-one to the new latents by decoder cosine, optimally (Hungarian method). */
  method: z.literal('hungarian'),
  /** One row per labelled feature of the old set: its match in the new set (null when unmatched). */
  pairs: z.array(
    z.object({
      fromFeature: z.number().int(),
      toFeature: z.number().int().nullable(),
      cosine: z.number().nullable(),
      labels: z.number().int(),
      /** Labels the target feature already has from the same annotators (kept, not overwritten). */
      targetLabels: z.number().int()
    })
  )
})
export type CarryPreview = z.infer<typeof CarryPreviewSchema>

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
  /** Points every outside input stored under `from` at the same place under `to`, once `to` holds them all. */
  'project.relocate': {
    input: z.object({ from: pathString, to: pathString }).strict(),
    output: z.object({ relocated: z.array(MissingInputSchema.omit({ path: true }).extend({ from: z.string(), to: z.string() })), project: ProjectInfoSchema })
  },
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
  'saes.list': {
    input: z.object({ includeSuperseded: z.boolean().optional() }).strict().optional(),
    output: z.array(SaeInfoSchema)
  },
  'saes.metrics': {
    input: z.object({ checkpointId: z.number().int().nonnegative(), layer: z.number().int().nonnegative() }).strict(),
    output: z.array(SaeMetricSchema)
  },
  'saes.scanImport': { input: SaeImportRequestSchema, output: SaeImportScanSchema },
  'saes.import': { input: SaeImportRequestSchema, output: z.array(SaeInfoSchema) },
  'features.sets': { input: none, output: z.array(FeatureSetInfoSchema) },
  'features.list': { input: FeatureListQuerySchema, output: z.object({ total: z.number().int(), rows: z.array(FeatureSummarySchema) }) },
  /** Where a feature stands in the list a query gives (null: the filters leave it out). */
  'features.indexOf': {
    input: FeatureListQuerySchema.omit({ offset: true, limit: true }).extend({ feature: z.number().int().nonnegative() }).strict(),
    output: z.object({ index: z.number().int().nullable() })
  },
  'features.get': {
    input: z.object({ setId: z.number().int().nonnegative(), feature: z.number().int().nonnegative() }).strict(),
    output: FeatureDetailSchema
  },
  'features.import': {
    input: z.object({ path: pathString, name: z.string().trim().min(1).max(200).optional() }).strict(),
    output: z.array(FeatureSetInfoSchema)
  },
  'taxonomy.get': { input: none, output: z.array(z.string()) },
  'taxonomy.set': { input: z.object({ names: z.array(z.string().trim().min(1).max(200)).min(1).max(9) }).strict(), output: z.array(z.string()) },
  /** Category omitted keeps the current one (null clears it); a request id already applied returns its stored result. */
  'labels.set': {
    input: z
      .object({
        setId: z.number().int().nonnegative(),
        feature: z.number().int().nonnegative(),
        annotator: annotatorName,
        category: z.string().max(200).nullable().optional(),
        note: z.string().max(NOTE_MAX_CHARS).optional(),
        requestId: requestId.optional(),
        blind: z.boolean().optional()
      })
      .strict()
      .refine((x) => x.category !== undefined || x.note !== undefined, { message: 'give a category (null clears it) or a note', path: ['category'] }),
    output: LabelSchema
  },
  'labels.undo': {
    input: z.object({ annotator: annotatorName, setId: z.number().int().nonnegative().optional(), requestId: requestId.optional() }).strict(),
    output: LabelSchema.nullable()
  },
  /** One annotator's labels of the given features (a labelling session's sample), in feature order. */
  'labels.forFeatures': {
    input: z.object({ setId: z.number().int().nonnegative(), annotator: annotatorName, features: z.array(z.number().int().nonnegative()).max(100_000) }).strict(),
    output: z.array(LabelSchema)
  },
  /** Everyone who has labelled a feature of the set. */
  'labels.annotators': {
    input: z.object({ setId: z.number().int().nonnegative() }).strict(),
    output: z.array(z.string())
  },
  /** The paper's protocol: N random features of a set (seeded), optionally without dead ones. */
  'labels.sample': {
    input: z
      .object({ setId: z.number().int().nonnegative(), n: z.number().int().positive().max(100_000).default(100), seed: z.number().int().default(0), skipDead: z.boolean().default(true) })
      .strict(),
    output: z.array(z.number().int())
  },
  /** Which features of a superseded SAE's set match the current SAE's, with their decoder cosines and labels. */
  'labels.carryPreview': {
    input: z.object({ fromSetId: z.number().int().nonnegative(), toSetId: z.number().int().nonnegative().optional() }).strict(),
    output: CarryPreviewSchema
  },
  /** Copies labels along the matches with cosine ≥ minCosine; never overwrites a label the target already has. */
  'labels.carry': {
    input: z
      .object({
        fromSetId: z.number().int().nonnegative(),
        toSetId: z.number().int().nonnegative().optional(),
        minCosine: z.number().min(-1).max(1).default(0.7)
      })
      .strict(),
    output: z.object({ carried: z.number().int(), keptExisting: z.number().int(), belowThreshold: z.number().int(), toSetId: z.number().int() })
  },
  'labels.history': {
    input: z.object({ setId: z.number().int().nonnegative(), feature: z.number().int().nonnegative() }).strict(),
    output: z.array(LabelEventSchema)
  },
  'analysis.composition': {
    input: z.object({ annotator: z.string().max(100).optional() }).strict().optional(),
    output: z.array(CompositionSchema)
  },
  'dynamics.overview': { input: z.object({ layer: z.number().int().nonnegative() }).strict(), output: DynamicsOverviewSchema },
  'dynamics.feature': {
    input: z.object({ layer: z.number().int().nonnegative(), feature: z.number().int().nonnegative(), threshold: formationThreshold.optional() }).strict(),
    output: DynamicsFeatureSchema
  },
  'dynamics.formationByLabel': {
    input: z.object({ layer: z.number().int().nonnegative(), threshold: formationThreshold.optional(), annotator: annotatorName.optional() }).strict(),
    output: FormationByLabelSchema
  },
  'dynamics.formationCurves': {
    input: z.object({ layer: z.number().int().nonnegative(), features: z.array(z.number().int().nonnegative()).min(1).max(50), threshold: formationThreshold.optional() }).strict(),
    output: FormationCurvesSchema
  },
  'dynamics.run': { input: z.object({ layer: z.number().int().nonnegative() }).strict(), output: DynamicsRunSchema.nullable() },
  'jobs.list': { input: none, output: z.array(JobSchema) },
  'jobs.start': { input: JobRequestSchema, output: JobSchema },
  /** What a job would replace, in words, and how many labels stay (they always do): the UI asks before starting it. */
  'jobs.replaces': { input: JobRequestSchema, output: z.object({ replaces: z.array(z.string()), labelsKept: z.number().int() }) },
  'jobs.cancel': { input: id, output: JobSchema },
  ...geometryCalls,
  ...startCalls,
  /** Opens the demo project in the user's documents, first copying the bundled series there, and starts what it lacks as jobs. */
  'start.openDemo': { input: none, output: ProjectInfoSchema },
  /** Creates a project in a new or empty folder (refused where one exists: open it instead). */
  'start.create': { input: z.object({ path: pathString }).strict(), output: ProjectInfoSchema }
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
  'saes.changed': z.object({ count: z.number().int() }),
  'labels.changed': LabelSchema,
  'features.changed': z.object({ sets: z.number().int() }),
  ...startEvents
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

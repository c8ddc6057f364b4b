// The contract of labels: the taxonomy, labels and their history, their interchange files, composition.
import { z } from 'zod'
import { none, pathString, requestId } from './schema'

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

export const annotatorName = z.string().trim().min(1).max(100)
/** The longest note a label may carry, in UTF-16 code units (what the UI counts too). */
export const NOTE_MAX_CHARS = 10_000

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

/** What merging a label file did: counts, and each conflict and skipped row with its reason. */
export const LabelImportReportSchema = z.object({
  added: z.number().int(),
  overwritten: z.number().int(),
  unchanged: z.number().int(),
  conflicts: z.array(z.object({ set: z.string(), feature: z.number().int(), annotator: z.string(), ours: z.string(), theirs: z.string() })),
  skipped: z.array(z.object({ row: z.number().int(), reason: z.string() }))
})
export type LabelImportReport = z.infer<typeof LabelImportReportSchema>

export const labelCalls = {
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
    input: z
      .object({ setId: z.number().int().nonnegative(), annotator: annotatorName, features: z.array(z.number().int().nonnegative()).max(100_000) })
      .strict(),
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
      .object({
        setId: z.number().int().nonnegative(),
        n: z.number().int().positive().max(100_000).default(100),
        seed: z.number().int().default(0),
        skipDead: z.boolean().default(true)
      })
      .strict(),
    output: z.array(z.number().int())
  },
  'labels.history': {
    input: z.object({ setId: z.number().int().nonnegative(), feature: z.number().int().nonnegative() }).strict(),
    output: z.array(LabelEventSchema)
  },
  'analysis.composition': {
    input: z
      .object({ annotator: z.string().max(100).optional() })
      .strict()
      .optional(),
    output: z.array(CompositionSchema)
  },
  /** Writes every label of the project's current sets as CSV or JSON (by the file's extension). */
  'labels.export': {
    input: z.object({ path: pathString }).strict(),
    output: z.object({ labels: z.number().int(), path: z.string() })
  },
  /** Merges labels from CSV or JSON, reporting conflicts (kept as they are unless overwrite). */
  'labels.import': {
    input: z.object({ path: pathString, overwrite: z.boolean().default(false) }).strict(),
    output: LabelImportReportSchema
  }
} as const

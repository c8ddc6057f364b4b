// The contract of the project itself: the open project, inputs it misses, the app and its doors.
import { z } from 'zod'
import { none, pathString } from './schema'

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

export const projectCalls = {
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
  }
} as const

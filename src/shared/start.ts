// The API contract of the start page (recent projects, the demo, new projects), the About dialog and the
// compute-engine status.
import { z } from 'zod'
import { DoorSchema, ProjectInfoSchema } from './project'
import { none, pathString } from './schema'

export const RecentProjectSchema = z.object({
  path: z.string(),
  name: z.string(),
  openedAt: z.string(),
  /** Whether the folder still holds a project (a moved or deleted one is listed until forgotten). */
  exists: z.boolean()
})
export type RecentProject = z.infer<typeof RecentProjectSchema>

export const StartPageSchema = z.object({
  recent: z.array(RecentProjectSchema),
  demo: z.object({
    /** Whether this installation ships the demo series. */
    available: z.boolean(),
    /** The demo project's folder in the user's documents (made, with a copy of the series, on first open). */
    path: z.string(),
    created: z.boolean()
  }),
  /** Where new projects are suggested: <documents>/FeatureTrace. */
  projectsFolder: z.string(),
  /** Whether start.chooseFolder can show the system's folder dialog (the desktop app only). */
  folderDialog: z.boolean()
})
export type StartPage = z.infer<typeof StartPageSchema>

export const EngineStatusSchema = z.object({
  state: z.enum(['probing', 'ready', 'failed']),
  /** The compute engine jobs run on, as the job worker chose it (tensorflow, wasm, cpu, …); null until known. */
  engine: z.string().nullable(),
  /** Whether it computes on a GPU: false for wasm and cpu; null where the machine decides (tfjs-node-gpu uses CUDA when a GPU is visible). */
  gpu: z.boolean().nullable(),
  /** Why this engine, in one sentence (what was tried before it and why it could not run). */
  reason: z.string()
})
export type EngineStatus = z.infer<typeof EngineStatusSchema>

export const AboutSchema = z.object({
  name: z.literal('FeatureTrace'),
  version: z.string(),
  door: DoorSchema,
  /** An installed package (true) or a source checkout. */
  packaged: z.boolean(),
  platform: z.string(),
  arch: z.string(),
  runtime: z.object({ node: z.string(), electron: z.string().nullable(), chrome: z.string().nullable() }),
  schemaVersion: z.number().int(),
  /** FeatureTrace never looks for updates itself; this says where newer packages come from. */
  updates: z.object({ url: z.string().nullable(), how: z.string() }),
  /** The file holding recent projects; null where none is kept (CLI). */
  settingsFile: z.string().nullable()
})
export type About = z.infer<typeof AboutSchema>

export const startCalls = {
  'start.page': { input: none, output: StartPageSchema },
  /** The system's folder dialog (desktop app): the folder chosen, or null when cancelled. */
  'start.chooseFolder': {
    input: z.object({ purpose: z.enum(['open', 'create']) }).strict(),
    output: z.object({ path: z.string().nullable() })
  },
  /** Removes a project from the recent list; its folder is not touched. */
  'start.forget': { input: z.object({ path: pathString }).strict(), output: z.array(RecentProjectSchema) },
  'app.about': { input: none, output: AboutSchema },
  /** Which compute engine jobs run on; the first call starts a probe and `engine.changed` reports its result. */
  'engine.status': { input: none, output: EngineStatusSchema },
  /** Opens the demo project in the user's documents, first copying the bundled series there, and starts what it lacks as jobs. */
  'start.openDemo': { input: none, output: ProjectInfoSchema },
  /** Creates a project in a new or empty folder (refused where one exists: open it instead). */
  'start.create': { input: z.object({ path: pathString }).strict(), output: ProjectInfoSchema }
} as const

export const startEvents = {
  'engine.changed': EngineStatusSchema,
  /** The desktop app's Help → About menu asks the window to show the About dialog. */
  'app.showAbout': z.object({}).strict(),
  /** The desktop app's File → Start Page menu asks the window to show the start page. */
  'app.showStart': z.object({}).strict()
} as const

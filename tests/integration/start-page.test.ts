// The services behind the start page, the About dialog and the status bar, through the one API as the
// browser mode serves them: recent projects, a new project, the demo project copied into the user's
// documents and its pipeline started as jobs, and the compute engine asked of a real job worker.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { ApiReply, EventName } from '../../src/shared/api'
import type { WorkerHandle, WorkerSpawner } from '../../src/core/jobs/protocol'
import { nodeWorkerSpawner } from '../../src/core/jobs/spawn'
import { createHandlers, dispatch, Workspace } from '../../src/core/services'
import { MARKER_FILE } from '../../src/core/project'
import { SERIES_DIR } from '../../src/core/demo-project'
import { UserSettings } from '../../src/core/user-settings'
import { BUILT_WORKER, REPO, tempDir } from '../helpers'

const t = tempDir('ft-start-')
afterAll(() => t.cleanup())

/** Workers that start and never finish: the demo's jobs stay queued or running, and cost nothing. */
function idleSpawner(): { spawn: WorkerSpawner; started: number } {
  const state = {
    started: 0,
    spawn: (): WorkerHandle => {
      state.started++
      const exits: ((code: number | null) => void)[] = []
      return { send: () => {}, onMessage: () => {}, onExit: (l) => void exits.push(l), kill: () => exits.forEach((l) => l(null)) }
    }
  }
  return state
}

function workspace(
  name: string,
  spawn: WorkerSpawner
): { ws: Workspace; call: (c: string, p?: unknown) => Promise<ApiReply<unknown>>; logs: string[]; docs: string } {
  const logs: string[] = []
  const docs = join(t.dir, name, 'Documents')
  mkdirSync(docs, { recursive: true })
  const ws = new Workspace('browser', spawn, {
    settings: new UserSettings(join(t.dir, name, 'config', 'settings.json')),
    documentsDir: docs,
    demoSource: join(REPO, 'resources/demo'),
    log: (m) => logs.push(m)
  })
  const handlers = createHandlers(ws)
  return { ws, call: (c, p) => dispatch(handlers, c, p), logs, docs }
}

const result = <T>(reply: ApiReply<unknown>): T => {
  if (!reply.ok) throw new Error(`${reply.error.code}: ${reply.error.message}`)
  return reply.result as T
}

describe('the start page services', () => {
  it('lists nothing on a first start, offers the demo and suggests <documents>/FeatureTrace', async () => {
    const { ws, call, docs } = workspace('first', idleSpawner().spawn)
    expect(result(await call('start.page'))).toEqual({
      recent: [],
      demo: { available: true, path: join(docs, 'FeatureTrace', 'Demo'), created: false },
      projectsFolder: join(docs, 'FeatureTrace'),
      folderDialog: false
    })
    expect(await call('start.chooseFolder', { purpose: 'open' })).toMatchObject({ ok: false, error: { code: 'bad-request' } })
    ws.close()
  })

  it('creates a project only in a new or empty folder, with its marker, and lists it first', async () => {
    const { ws, call } = workspace('create', idleSpawner().spawn)
    const dir = join(t.dir, 'create', 'projects', 'pythia')
    const info = result<{ path: string; name: string }>(await call('start.create', { path: dir }))
    expect(info).toMatchObject({ path: dir, name: 'pythia' })
    expect(existsSync(join(dir, MARKER_FILE))).toBe(true)
    expect(await call('start.create', { path: dir })).toMatchObject({
      ok: false,
      error: { message: expect.stringMatching(/already holds a FeatureTrace project/) }
    })
    const full = join(t.dir, 'create', 'full')
    mkdirSync(full)
    writeFileSync(join(full, 'notes.txt'), 'mine')
    expect(await call('start.create', { path: full })).toMatchObject({ ok: false, error: { message: expect.stringMatching(/not empty/) } })
    expect(readdirSync(full)).toEqual(['notes.txt'])

    const other = join(t.dir, 'create', 'projects', 'llm-jp')
    result(await call('project.open', { path: other }))
    const page = result<{ recent: { name: string; exists: boolean }[] }>(await call('start.page'))
    expect(page.recent.map((r) => r.name)).toEqual(['llm-jp', 'pythia'])
    expect(ws.host.settings!.lastProject()).toBe(other)
    expect(result<unknown[]>(await call('start.forget', { path: dir }))).toHaveLength(1)
    ws.close()
  })

  it('copies the demo series into the demo project once and starts its pipeline once; another project stops it', async () => {
    const workers = idleSpawner()
    const { ws, call, docs, logs } = workspace('demo', workers.spawn)
    const demo = join(docs, 'FeatureTrace', 'Demo')
    const info = result<{ path: string; checkpointCount: number }>(await call('start.openDemo'))
    expect(info.path).toBe(demo)
    expect(readdirSync(join(demo, SERIES_DIR)).sort()).toEqual(readdirSync(join(REPO, 'resources/demo')).sort())
    // Registered from the copy, stored relative: the project never points into the installation.
    const paths = (ws.project!.db.prepare('SELECT path FROM checkpoint').all() as { path: string }[]).map((r) => r.path)
    expect(paths.length).toBe(7)
    expect(paths.every((p) => p.startsWith(`${SERIES_DIR}/checkpoints/`))).toBe(true)
    await new Promise((r) => setTimeout(r, 50))
    const jobs = ws.project!.jobs.list()
    expect(jobs.map((j) => [j.kind, j.state])).toEqual([['harvest', 'running']])

    // Opened again while it runs: the same project, the same pipeline.
    expect(result<{ path: string }>(await call('start.openDemo')).path).toBe(demo)
    expect(ws.project!.jobs.list()).toHaveLength(1)
    expect(result<{ demo: { created: boolean } }>(await call('start.page')).demo.created).toBe(true)

    // Another project: the harvest is interrupted and the pipeline starts nothing in the other project.
    const other = join(t.dir, 'demo', 'other')
    result(await call('project.open', { path: other }))
    await new Promise((r) => setTimeout(r, 50))
    expect(ws.project!.jobs.list()).toEqual([])
    expect(logs.at(-1)).toMatch(/demo: stopped: .*resumes when it is opened again/)
    ws.close()
  })

  it('says which compute engine a real job worker chooses, and why', async () => {
    const { ws, call } = workspace('engine', nodeWorkerSpawner(BUILT_WORKER))
    const events: [EventName, unknown][] = []
    ws.subscribe((e, p) => events.push([e, p]))
    expect(result(await call('engine.status'))).toMatchObject({ state: 'probing', engine: null })
    const deadline = Date.now() + 60_000
    while (!events.some(([e]) => e === 'engine.changed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    const status = result<{ state: string; engine: string; gpu: boolean | null; reason: string }>(await call('engine.status'))
    expect(events).toContainEqual(['engine.changed', status])
    expect(status.state).toBe('ready')
    // Here tfjs-node-gpu cannot install (no libtensorflow download) and Dawn finds no GPU: onnxruntime on the CPU,
    // saying why each engine before it could not run, and on how many threads.
    expect(status).toMatchObject({ engine: 'ort', gpu: false })
    expect(status.reason).toMatch(
      /^onnxruntime-node runs the dense products on \d+ threads, the SAE step's sparse host loops and Adam run on \d+ threads, tfjs wasm the rest; not tensorflow: @tensorflow\/tfjs-node-gpu is not installed .*CUDA 11\.2 and cuDNN 8\.1.*; not webgpu: (no GPU device here|no WebGPU adapter|the only WebGPU adapter, .* is .*emulated)/
    )
    ws.close()
  }, 90_000)

  it('tells the version and where newer packages come from, never fetching', async () => {
    const { ws, call } = workspace('about', idleSpawner().spawn)
    const about = result<{ version: string; door: string; packaged: boolean; updates: { url: string | null; how: string }; settingsFile: string }>(
      await call('app.about')
    )
    expect(about).toMatchObject({ door: 'browser', packaged: false, updates: { url: null } })
    expect(about.version).toMatch(/^\d+\.\d+\.\d+/)
    expect(about.updates.how).toMatch(/never connects to the internet/)
    expect(about.settingsFile).toBe(join(t.dir, 'about', 'config', 'settings.json'))
    ws.close()
  })
})

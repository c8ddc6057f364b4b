import { spawn, spawnSync } from 'node:child_process'
import { existsSync, openSync, closeSync, ftruncateSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Job } from '../../src/shared/api'
import { nodeWorkerSpawner } from '../../src/core/jobs/spawn'
import { createHandlers, dispatch, Workspace } from '../../src/core/services'
import { makeCheckpointSeries } from '../fixtures/checkpoint-series'
import { BUILT_WORKER, CLI, tempDir } from '../helpers'

/** A checkpoint whose weight file is a large sparse file: slow to hash, free on disk. */
function slowCheckpoint(dir: string, gigabytes: number): string {
  const folder = join(dir, 'step5')
  mkdirSync(folder, { recursive: true })
  writeFileSync(join(folder, 'config.json'), JSON.stringify({ model_type: 'gpt_neox', hidden_size: 8, num_hidden_layers: 1 }))
  const fd = openSync(join(folder, 'model.safetensors'), 'w')
  ftruncateSync(fd, gigabytes * 1024 ** 3)
  closeSync(fd)
  return folder
}

function until(pred: () => boolean, ms = 20_000): Promise<void> {
  const start = Date.now()
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (pred()) resolve()
      else if (Date.now() - start > ms) reject(new Error('timed out'))
      else setTimeout(tick, 25)
    }
    tick()
  })
}

describe('jobs in a real worker process', () => {
  let t: ReturnType<typeof tempDir>
  let ws: Workspace | null = null
  beforeAll(() => {
    if (!existsSync(BUILT_WORKER)) throw new Error('Run `npm run build` before the integration tests.')
  })
  afterEach(() => {
    ws?.close()
    ws = null
    t.cleanup()
  })

  it('runs verification to done with progress events, and stores its reports', async () => {
    t = tempDir()
    await makeCheckpointSeries(join(t.dir, 'series'), { names: ['step0', 'step10', 'step100'] })
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    const p = ws.open(join(t.dir, 'p'))
    const handlers = createHandlers(ws)
    await dispatch(handlers, 'checkpoints.register', { folder: join(t.dir, 'series') })
    const events: Job[] = []
    ws.subscribe((e, payload) => e === 'job.updated' && events.push(payload as Job))
    const reply = await dispatch(handlers, 'jobs.start', { kind: 'verify-checkpoints' })
    expect(reply.ok).toBe(true)
    const job = (reply as { result: Job }).result
    const end = await ws.requireProject().jobs.waitFor(job.id)
    expect(end).toMatchObject({ state: 'done', fraction: 1, result: { checked: 3, 'with problems': 0 } })
    expect(events.map((e) => e.state)).toEqual(expect.arrayContaining(['queued', 'running', 'done']))
    const detail = p.checkpoints.detail(p.checkpoints.list()[0]!.id)
    expect(detail.verifyStatus).toBe('ok')
    expect(detail.verifyReport!.files[0]).toMatchObject({ file: 'model.safetensors', tensors: 1 })
    expect(detail.verifyReport!.files[0]!.sha256).toMatch(/^[0-9a-f]{64}$/)
  })

  it('reports a truncated weight file as a problem of that checkpoint', async () => {
    t = tempDir()
    const [folder] = await makeCheckpointSeries(join(t.dir, 'series'), { names: ['step7'] })
    const file = join(folder!, 'model.safetensors')
    const fd = openSync(file, 'r+')
    ftruncateSync(fd, 200)
    closeSync(fd)
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    const p = ws.open(join(t.dir, 'p'))
    await dispatch(createHandlers(ws), 'checkpoints.register', { folder: join(t.dir, 'series') })
    const job = ws.requireProject().jobs.start({ kind: 'verify-checkpoints', checkpointIds: [] })
    const end = await ws.requireProject().jobs.waitFor(job.id)
    expect(end.result).toEqual({ checked: 1, 'with problems': 1, 'same weights as another step': 0 })
    const report = p.checkpoints.detail(p.checkpoints.list()[0]!.id).verifyReport!
    expect(report.problems.join('\n')).toMatch(/step7\/model\.safetensors .*(truncated|claims)/)
  })

  it('reports a config key the forward pass would not honour as a problem, before any harvest', async () => {
    t = tempDir()
    const [folder] = await makeCheckpointSeries(join(t.dir, 'series'), { names: ['step9'], modelType: 'llama' })
    const file = join(folder!, 'config.json')
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), rope_scaling: { rope_type: 'longrope', factor: 4 } }))
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    const p = ws.open(join(t.dir, 'p'))
    await dispatch(createHandlers(ws), 'checkpoints.register', { folder: join(t.dir, 'series') })
    const job = ws.requireProject().jobs.start({ kind: 'verify-checkpoints', checkpointIds: [] })
    expect((await ws.requireProject().jobs.waitFor(job.id)).result).toEqual({ checked: 1, 'with problems': 1, 'same weights as another step': 0 })
    const report = p.checkpoints.detail(p.checkpoints.list()[0]!.id).verifyReport!
    expect(report.problems.join('\n')).toMatch(/step9\/config\.json.*longrope/)
  })

  it('reports progress with rate and time left, and cancels a running job', async () => {
    t = tempDir()
    slowCheckpoint(t.dir, 32)
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    ws.open(join(t.dir, 'p'))
    await dispatch(createHandlers(ws), 'checkpoints.register', { folder: t.dir })
    const progress: Job[] = []
    ws.subscribe((e, payload) => {
      const j = payload as Job
      if (e === 'job.updated' && j.state === 'running' && j.fraction > 0) progress.push(j)
    })
    const { jobs } = ws.requireProject()
    const job = jobs.start({ kind: 'verify-checkpoints', checkpointIds: [] })
    // Time left shows once the job has run long enough to know its pace, and is the whole job's.
    await until(() => progress.some((p) => p.etaSeconds !== null))
    expect(progress[0]!.etaSeconds).toBeNull()
    const last = progress.at(-1)!
    expect(last.rate).toBeGreaterThan(0)
    expect(last.rateUnit).toBe('B/s')
    expect(last.etaSeconds).toBeGreaterThan(0)
    const elapsed = (Date.now() - Date.parse(last.startedAt!)) / 1000
    expect(last.etaSeconds).toBeGreaterThanOrEqual((0.8 * ((elapsed - 1) * (1 - last.fraction))) / last.fraction)
    expect(last.message).toMatch(/checkpoint 1\/1: step5/)
    jobs.cancel(job.id)
    const end = await jobs.waitFor(job.id)
    expect(end.state).toBe('cancelled')
    expect(end.fraction).toBeLessThan(1)
  })

  it('refuses a job on checkpoints that do not exist, before queueing anything', async () => {
    t = tempDir()
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    ws.open(join(t.dir, 'p'))
    const r = await dispatch(createHandlers(ws), 'jobs.start', { kind: 'verify-checkpoints', checkpointIds: [42] })
    expect(r).toMatchObject({ ok: false, error: { code: 'not-found', message: expect.stringMatching(/id 42/) } })
    expect(ws.requireProject().project.jobs.list()).toEqual([])
  })

  it('shows a job as interrupted after its process is killed, not as running', async () => {
    t = tempDir()
    slowCheckpoint(t.dir, 64)
    const project = join(t.dir, 'p')
    const add = spawnSync(process.execPath, [CLI, 'checkpoints', 'add', t.dir, '--project', project], { encoding: 'utf8' })
    expect(add.status, add.stderr).toBe(0)
    const cli = spawn(process.execPath, [CLI, 'verify', '--project', project], { stdio: 'ignore' })
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    // Watch the database until the CLI's job is running, then kill the CLI outright.
    const { default: Database } = await import('better-sqlite3')
    await until(() => existsSync(join(project, 'project.sqlite')))
    const peek = new Database(join(project, 'project.sqlite'), { readonly: true })
    await until(() => (peek.prepare('SELECT state FROM job').get() as { state?: string } | undefined)?.state === 'running')
    peek.close()
    cli.kill('SIGKILL')
    await new Promise((r) => cli.once('exit', r))
    const p = ws.open(project)
    const [job] = p.jobs.list()
    expect(job).toMatchObject({ state: 'interrupted', error: expect.stringMatching(/stopped before it finished/) })
  })
})

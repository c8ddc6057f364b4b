// `featuretrace train-series` forwards every option it accepts: each one, alone, reaches the job's request,
// and a series trained with all of them set shows each setting in its SAE's stored configuration.
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { trainSeriesRequest } from '../../src/cli/train'
import { runJobToEnd } from '../../src/cli/options'
import { nodeWorkerSpawner } from '../../src/core/jobs/spawn'
import { Sae } from '../../src/core/sae/sae'
import { callService, Workspace } from '../../src/core/services'
import { tinyModels } from '../fixtures/tiny-models'
import { BUILT_WORKER, tempDir } from '../helpers'

/** Each option of train-series, a value for it, and the request field it must set to that value. */
const OPTIONS: [option: string, value: string, field: string, expected: unknown][] = [
  ['--preset', 'gao2024', 'preset', 'gao2024'],
  ['--latents', '96', 'n', 96],
  ['--k', '6', 'k', 6],
  ['--tokens', '20480', 'tokens', 20480],
  ['--batch', '64', 'batchSize', 64],
  ['--lr', '0.002', 'lr', 0.002],
  ['--warmup', '7', 'warmupSteps', 7],
  ['--seed', '5', 'seed', 5],
  ['--scaling', 'layer_norm', 'inputScaling', 'layer_norm'],
  ['--aux-k', '12', 'auxK', 12],
  ['--eval-rows', '300', 'evalRows', 300],
  ['--log-every', '4', 'logEvery', 4],
  ['--checkpoint-every', '9', 'checkpointEvery', 9],
  ['--backend', 'wasm', 'backend', 'wasm'],
  ['--model-name', 'tiny-neox', 'modelName', 'tiny-neox'],
  ['--layer', '2', 'layer', 2]
]

describe('train-series on the command line', () => {
  let t: ReturnType<typeof tempDir>
  let ws: Workspace
  let checkpointIds: number[]
  beforeAll(async () => {
    t = tempDir()
    const root = tinyModels()
    for (const s of [0, 10]) cpSync(join(root, 'models', 'gpt_neox'), join(t.dir, 'series', `step${s}`), { recursive: true })
    const text = 'The cat sat on the mat. The dog sat on the log. Language models learn features during training. '.repeat(8)
    writeFileSync(join(t.dir, 'c.jsonl'), Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: `${i} ${text}` })).join('\n') + '\n')
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    ws.open(join(t.dir, 'p'))
    const r = await callService(ws, 'checkpoints.register', { folder: join(t.dir, 'series') })
    checkpointIds = r.added.map((c) => c.id)
    await runJobToEnd(ws, { kind: 'harvest', corpus: join(t.dir, 'c.jsonl'), layer: 2, context: 32 })
  }, 120_000)
  afterAll(() => {
    ws?.close()
    t.cleanup()
  })

  for (const [option, value, field, expected] of OPTIONS) {
    it(`forwards ${option}`, async () => {
      const request = await trainSeriesRequest(ws, ['--project', 'unused', option, value])
      expect(request).toHaveProperty(field, expected)
    })
  }

  it('forwards --checkpoint (repeatable) and --retrain', async () => {
    const request = await trainSeriesRequest(ws, ['--checkpoint', '10', '--checkpoint', '0', '--retrain'])
    expect(request.checkpointIds).toEqual([checkpointIds[1], checkpointIds[0]])
    expect(request.retrain).toBe(true)
  })

  it('accepts no option it does not forward', async () => {
    // Every option declared for train-series is in the table above (or checked just before).
    const { TRAIN_OPTIONS } = await import('../../src/cli/train')
    const covered = new Set([...OPTIONS.map(([o]) => o.slice(2)), 'checkpoint', 'retrain', 'project'])
    expect(Object.keys(TRAIN_OPTIONS).filter((o) => !covered.has(o))).toEqual([])
  })

  it('trains with every setting given and stores each in the SAE', async () => {
    const args = [
      '--checkpoint',
      '0',
      '--latents',
      '96',
      '--k',
      '6',
      '--tokens',
      '20480',
      '--batch',
      '64',
      '--lr',
      '0.002',
      '--warmup',
      '7',
      '--seed',
      '5',
      '--scaling',
      'layer_norm',
      '--aux-k',
      '12',
      '--eval-rows',
      '300',
      '--log-every',
      '4',
      '--checkpoint-every',
      '9',
      '--backend',
      'wasm',
      '--model-name',
      'tiny-neox',
      '--layer',
      '2',
      '--preset',
      'inaba2025'
    ]
    const job = await runJobToEnd(ws, await trainSeriesRequest(ws, args))
    expect(job.result?.saes).toBe(1)
    const [sae] = (await callService(ws, 'saes.list')).filter((s) => s.checkpointId === checkpointIds[0])
    const loaded = await Sae.load(sae!.path)
    const config = loaded.featuretrace.config!
    loaded.dispose()
    const cfg = JSON.parse(readFileSync(join(sae!.path, 'cfg.json'), 'utf8')) as { metadata: { model_name: string | null } }
    expect(cfg.metadata.model_name).toBe('tiny-neox')
    expect(config).toMatchObject({
      n: 96,
      k: 6,
      tokens: 20480,
      batchSize: 64,
      warmupSteps: 7,
      seed: 5,
      inputScaling: 'layer_norm',
      auxK: 12,
      evalRows: 300,
      logEvery: 4,
      checkpointEvery: 9
    })
    expect(config.lr).toBeCloseTo(0.002, 12)
    expect(sae!.backend).toMatch(/^wasm/)
  }, 120_000)
})

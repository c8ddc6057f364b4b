// Harvest as a project job in a real worker process, and importing stores made elsewhere.
import { cpSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Job } from '../../src/shared/api'
import { nodeWorkerSpawner } from '../../src/core/jobs/spawn'
import { createHandlers, dispatch, Workspace } from '../../src/core/services'
import { tinyModels } from '../fixtures/tiny-models'
import { BUILT_WORKER, tempDir } from '../helpers'

let root: string
beforeAll(() => {
  root = tinyModels()
})

function series(dir: string, model: string, steps: number[]): string {
  const out = join(dir, 'series')
  for (const s of steps) cpSync(join(root, 'models', model), join(out, `step${s}`), { recursive: true })
  return out
}

describe('harvest over a project series', () => {
  let t: ReturnType<typeof tempDir>
  let ws: Workspace
  afterEach(() => {
    ws.close()
    t.cleanup()
  })

  it('stores one layer per checkpoint, records it, and refuses a layer beyond the model', async () => {
    t = tempDir()
    const corpus = join(t.dir, 'c.jsonl')
    writeFileSync(corpus, '{"text": "The cat sat on the mat.", "lang": "en"}\n{"text": "猫はマットの上に座った。", "lang": "ja"}\n')
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    const project = ws.open(join(t.dir, 'p'))
    const h = createHandlers(ws)
    await dispatch(h, 'checkpoints.register', { folder: series(t.dir, 'gpt_neox', [0, 10, 100]) })

    const tooDeep = await dispatch(h, 'jobs.start', { kind: 'harvest', corpus, layer: 4 })
    expect(tooDeep).toMatchObject({ ok: false, error: { message: expect.stringMatching(/Layer 4 is out of range for step 0: it has 3 layers/) } })
    const noCorpus = await dispatch(h, 'jobs.start', { kind: 'harvest', corpus: join(t.dir, 'nope.jsonl'), layer: 1 })
    expect(noCorpus).toMatchObject({ ok: false, error: { message: expect.stringMatching(/Missing corpus file .*nope\.jsonl/) } })

    const progress: Job[] = []
    ws.subscribe((e, p) => e === 'job.updated' && progress.push(p as Job))
    const started = await dispatch(h, 'jobs.start', { kind: 'harvest', corpus, layer: 2, context: 8 })
    expect(started.ok).toBe(true)
    const job = await ws.requireProject().jobs.waitFor((started as { result: Job }).result.id)
    expect(job.state, job.error ?? '').toBe('done')
    expect(job.result).toMatchObject({ checkpoints: 3, backend: expect.stringMatching(/ort|wasm|cpu|tensorflow/) })
    expect(progress.some((p) => p.state === 'running' && /step \d+ \(\d\/3\) on (ort|wasm|cpu|tensorflow)/.test(p.message ?? ''))).toBe(true)
    const list = project.checkpoints.list()
    expect(list.every((c) => c.activations.length === 1 && c.activations[0]!.layer === 2 && c.activations[0]!.rows > 0)).toBe(true)
    const stores = project.activations.list()
    expect(stores.map((s) => s.path)).toEqual(list.map((c) => join(project.artifactsDir, 'activations', `step${c.step}`, 'layer2')))
    expect(project.checkpoints.detail(list[0]!.id).stores[0]).toMatchObject({ layer: 2, dtype: 'f16', context: 8, imported: false })
  })

  it('imports a store made elsewhere, checking it against the checkpoint', async () => {
    t = tempDir()
    const corpus = join(t.dir, 'c.jsonl')
    writeFileSync(corpus, '{"text": "Tokyo is the capital of Japan."}\n')
    ws = new Workspace('cli', nodeWorkerSpawner(BUILT_WORKER))
    const project = ws.open(join(t.dir, 'p'))
    const h = createHandlers(ws)
    const { harvest } = await import('../../src/core/lm/harvest')
    const ext = join(t.dir, 'external')
    await harvest({ model: join(root, 'models', 'gpt2'), corpus, layers: [1], out: () => ext }, { signal: new AbortController().signal, progress: () => {} })
    await dispatch(h, 'checkpoints.register', { folder: series(t.dir, 'gpt2', [5]) })
    const c = project.checkpoints.list()[0]!
    const ok = await dispatch(h, 'activations.import', { path: ext, checkpointId: c.id })
    expect(ok).toMatchObject({ ok: true, result: { layer: 1, imported: true, step: 5 } })

    cpSync(join(root, 'models', 'llama-gqa-tied'), join(t.dir, 'other', 'step9'), { recursive: true })
    const { readFileSync } = await import('node:fs')
    const cfg = JSON.parse(readFileSync(join(t.dir, 'other', 'step9', 'config.json'), 'utf8')) as Record<string, unknown>
    writeFileSync(join(t.dir, 'other', 'step9', 'config.json'), JSON.stringify({ ...cfg, hidden_size: 128 }))
    await dispatch(h, 'checkpoints.register', { folder: join(t.dir, 'other') })
    const wide = project.checkpoints.list().find((x) => x.step === 9)!
    const bad = await dispatch(h, 'activations.import', { path: ext, checkpointId: wide.id })
    expect(bad).toMatchObject({ ok: false, error: { message: expect.stringMatching(/holds d=64 activations but checkpoint step 9 has d_model=128/) } })
    const notStore = await dispatch(h, 'activations.import', { path: t.dir, checkpointId: c.id })
    expect(notStore).toMatchObject({ ok: false, error: { message: expect.stringMatching(/not a complete activation store/) } })

    // A float16 store that overflowed where it was written (Inf where values exceeded ±65504) is refused (case07).
    const { SafetensorsFile } = await import('../../src/core/io/safetensors')
    const { writeAt } = await import('../fixtures/large-files')
    const shard = join(ext, 'shard-00000.safetensors')
    const f = await SafetensorsFile.open(shard)
    const at = f.info('activations').begin
    await f.close()
    const inf = new Uint16Array([0x7c00, 0xfc00]) // +Inf, -Inf
    writeAt(shard, at + 2 * (64 * 3 + 5), inf)
    writeAt(shard, at + 2 * (64 * 7), inf.subarray(0, 1))
    const overflowed = await dispatch(h, 'activations.import', { path: ext, checkpointId: c.id })
    expect(overflowed).toMatchObject({
      ok: false,
      error: {
        message: expect.stringMatching(
          /external: 3 of [\d,]+ stored values \(in 2 rows; the first in shard-00000\.safetensors, row 3\) are Inf or NaN\. float16 holds at most ±65,504, .*Harvest layer 1 again with --dtype f32 .*Nothing was imported\./
        )
      }
    })
  })
})

describe('resources/harvest_activations.py', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('writes stores FeatureTrace opens and imports (its writer, driven with known values)', async () => {
    t = tempDir()
    const { execFileSync } = await import('node:child_process')
    const { PYTHON } = await import('../fixtures/tiny-models')
    const { REPO } = await import('../helpers')
    const out = join(t.dir, 'py-store')
    const script = `
import importlib.util, numpy as np, sys
spec = importlib.util.spec_from_file_location("h", sys.argv[1]); h = importlib.util.module_from_spec(spec); spec.loader.exec_module(h)
acts = (np.arange(5 * 64, dtype=np.float32).reshape(5, 64) / 100)
h.write_store(sys.argv[2], acts, np.array([0, 0, 0, 1, 1]), np.array([0, 1, 2, 0, 1]), np.array([7, 8, 9, 7, 3]),
  [{"id": 0, "lang": "en", "source": "c.jsonl:1"}, {"id": 1, "lang": "ja", "source": "c.jsonl:2"}],
  {3: "の", 7: "The", 8: "Ġcat", 9: "."},
  dict(model="/m", modelType="mamba", checkpointStep=None, layer=2, finalNorm=False, dtype="f32", context=64, bos=False,
       seed=0, corpus="/c.jsonl", maxTokens=None, dropShort=False, sequences=2))
`
    execFileSync(PYTHON, ['-c', script, join(REPO, 'resources/harvest_activations.py'), out])
    const { ActivationStore } = await import('../../src/core/io/activation-store')
    const store = await ActivationStore.open(out)
    expect(store.manifest).toMatchObject({ rows: 5, d: 64, layer: 2, dtype: 'f32' })
    const shard = await store.readShard(0)
    expect(shard.acts[64 * 3 + 1]).toBeCloseTo((64 * 3 + 1) / 100, 5)
    expect(Array.from(shard.token)).toEqual([7, 8, 9, 7, 3])
    expect(store.tokenText(3)).toBe('の')
    expect(store.documents()[1]).toEqual({ id: 1, lang: 'ja', source: 'c.jsonl:2' })
  })

  it('refuses values float16 cannot hold and caps shards in bytes at context-window starts', async () => {
    t = tempDir()
    const { execFileSync } = await import('node:child_process')
    const { PYTHON } = await import('../fixtures/tiny-models')
    const { REPO } = await import('../helpers')
    const script = `
import importlib.util, numpy as np, sys
spec = importlib.util.spec_from_file_location("h", sys.argv[1]); h = importlib.util.module_from_spec(spec); spec.loader.exec_module(h)
acts = np.ones((12, 8), np.float32); acts[4, 2] = 7e4; acts[9, 1] = -1e6
doc = np.array([0] * 7 + [1] * 5); pos = np.array(list(range(7)) + list(range(5))); tok = np.arange(12)
settings = dict(model="/m", modelType="llama", checkpointStep=None, layer=3, finalNorm=False, context=3, bos=False,
                seed=0, corpus="/c.jsonl", maxTokens=None, dropShort=False, sequences=5)
try:
    h.write_store(sys.argv[2] + "/f16", acts, doc, pos, tok, [], {}, dict(settings, dtype="f16"))
except ValueError as e:
    print(e)
h.SHARD_BYTES = 4 * 8 * 4  # four f32 rows of d = 8
h.write_store(sys.argv[2] + "/f32", acts, doc, pos, tok, [], {}, dict(settings, dtype="f32"))
`
    const said = execFileSync(PYTHON, ['-c', script, join(REPO, 'resources/harvest_activations.py'), t.dir], { encoding: 'utf8' })
    expect(said).toMatch(
      /^layer 3: 2 of 96 values exceed float16's range \(\+-65,504; the largest \|x\| is 1e\+06\) and would be stored as inf\. Nothing was stored\. Run again with --dtype f32\./
    )
    const { existsSync } = await import('node:fs')
    expect(existsSync(join(t.dir, 'f16'))).toBe(false)
    const { ActivationStore } = await import('../../src/core/io/activation-store')
    const store = await ActivationStore.open(join(t.dir, 'f32'))
    // Windows of 3 start at rows 0, 3, 6 (doc 0) and 7, 10 (doc 1): shards close at the first start after 4 rows.
    expect(store.manifest.shards.map((s) => s.rows)).toEqual([6, 4, 2])
    expect((await store.readShard(1)).acts[2 * 8 + 1]).toBe(1)
    expect((await store.readShard(1)).acts[3 * 8 + 1]).toBe(-1e6)
  })
})

// Importing SAEs from SAELens, sparsify, Gemma Scope and llm-jp-sae: each fixture is written by
// make_sae_fixtures.py in its library's exact layout, with reference activations computed in numpy from
// the same files; the imported SAE's activations must equal them. Then the round trip of an SAE trained
// here, the bad inputs, and an imported series going through drift, feature statistics and the
// Neuronpedia export.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { discoverCheckpoints } from '../../src/core/checkpoints/discover'
import { computeDrift } from '../../src/core/analysis/drift'
import { computeFeatureStats } from '../../src/core/analysis/feature-stats'
import { exportNeuronpedia, NEURONPEDIA_BOT_USER } from '../../src/core/analysis/neuronpedia'
import { ActivationStoreWriter } from '../../src/core/io/activation-store'
import { importActivationStore } from '../../src/core/lm/import-store'
import { Project } from '../../src/core/project'
import { importSaes, scanSaeImport } from '../../src/core/sae/import'
import { Sae } from '../../src/core/sae/sae'
import { trainSae } from '../../src/core/sae/train'
import { initBackend } from '../../src/core/tf/backend'
import { Rng } from '../../src/core/random'
import { UserError } from '../../src/shared/api'
import { makeCheckpointSeries } from '../fixtures/checkpoint-series'
import { writePlantedActivations, plantedDictionary } from '../fixtures/planted'
import { pythonReference, saeFixtures, type SaeFixtures } from '../fixtures/sae-fixtures'
import { CLI, tempDir } from '../helpers'

const never = { signal: new AbortController().signal, progress: () => {} }
const STEPS = [0, 100, 1000]

/** Largest absolute difference between our dense activations and a reference [rows][n]. */
function maxDiff(ours: Float32Array, ref: number[][], n: number): number {
  let m = 0
  ref.forEach((row, r) => row.forEach((v, j) => (m = Math.max(m, Math.abs(ours[r * n + j]! - v)))))
  return m
}

async function activationsOf(dir: string, inputs: number[][]): Promise<Float32Array> {
  const enc = await Sae.load(dir)
  try {
    return await enc.dense(Float32Array.from(inputs.flat()), inputs.length)
  } finally {
    enc.dispose()
  }
}

describe('SAE import', () => {
  let t: ReturnType<typeof tempDir>
  let fx: SaeFixtures
  let series: string
  let n = 0
  beforeAll(async () => {
    await initBackend('cpu')
    t = tempDir()
    fx = saeFixtures()
    series = join(t.dir, 'ckpts')
    await makeCheckpointSeries(series, { names: STEPS.map((s) => `step${s}`), dModel: fx.d_in, layers: 4 })
  }, 120_000)
  afterAll(() => t.cleanup())

  /** A fresh project with the checkpoint series registered. */
  function project(): Project {
    const p = Project.open(join(t.dir, `project-${n++}`))
    p.checkpoints.addAll(discoverCheckpoints(series).found, undefined)
    return p
  }

  const single: [string, Partial<{ layer: number }>][] = [
    ['saelens-topk', {}],
    ['saelens-jumprelu', {}],
    ['sparsify-step100', {}],
    ['gemma-scope', {}],
    ['gemma-scope-compressed', { layer: 4 }],
    ['llm-jp-sae', { layer: 2 }]
  ]
  it.each(single)("%s: shows what it found, and the imported SAE reproduces the library's activations to 1e-5", async (name, opts) => {
    const ref = fx.saes[name]!
    const p = project()
    try {
      const path = join(fx.dir, ref.path)
      const scan = await scanSaeImport(p, { path, step: 100, ...opts })
      expect(scan.problems).toEqual([])
      expect(scan.found).toHaveLength(1)
      const item = scan.found[0]!
      expect(item).toMatchObject({ format: ref.format, architecture: ref.architecture, dIn: fx.d_in, dSae: fx.d_sae, k: ref.k, step: 100 })
      if (ref.architecture === 'jumprelu') expect(item.threshold!.max).toBeGreaterThan(item.threshold!.min)
      else expect(item.threshold).toBeNull()
      const [info] = await importSaes(p, { path, step: 100, ...opts })
      expect(info).toMatchObject({ step: 100, d: fx.d_in, n: fx.d_sae, preset: `import:${ref.format}`, warmStarted: false })
      if (ref.layer !== undefined && opts.layer === undefined) expect(info!.layer).toBe(ref.layer)
      const ours = await activationsOf(info!.path, fx.inputs)
      const diff = maxDiff(ours, ref.acts, fx.d_sae)
      console.log(`${name}: max |ours - numpy| = ${diff.toExponential(2)} over ${fx.rows}×${fx.d_sae} activations`)
      expect(diff).toBeLessThan(1e-5)
      // Every latent the library fires, we fire; and no others.
      const active = ref.acts.flat().filter((v) => v > 0).length
      expect(Array.from(ours).filter((v) => v > 0).length).toBe(active)
    } finally {
      p.close()
    }
  })

  it('imports a sparsify series of step folders onto the checkpoints by step; drift needs matching; feature statistics and the Neuronpedia export use it', async () => {
    const p = project()
    try {
      const scan = await scanSaeImport(p, { path: join(fx.dir, 'sparsify-series') })
      expect(scan.problems).toEqual([])
      expect(scan.found.map((s) => [s.step, s.layer, s.hook, s.k, s.dtype])).toEqual(STEPS.map((s) => [s, 2, 'layers.1', 8, 'BF16']))
      const infos = await importSaes(p, { path: join(fx.dir, 'sparsify-series') })
      expect(infos.map((s) => s.step)).toEqual(STEPS)
      for (const [i, s] of STEPS.entries()) {
        const diff = maxDiff(await activationsOf(infos[i]!.path, fx.inputs), fx.saes[`sparsify-step${s}`]!.acts, fx.d_sae)
        expect(diff).toBeLessThan(1e-5)
      }
      // Imported SAEs are not warm-started: drift over them is matched.
      const drift = await computeDrift(
        infos.map((s) => s.path),
        { match: true },
        never
      )
      expect(drift.matchMethod).toBeTruthy()
      expect(drift.n).toBe(fx.d_sae)
      // Feature statistics on an activation store of this checkpoint.
      const store = join(t.dir, 'store')
      const w = ActivationStoreWriter.begin(
        store,
        {
          model: 'fixture',
          modelType: 'gpt_neox',
          checkpointStep: 1000,
          layer: 2,
          finalNorm: false,
          d: fx.d_in,
          dtype: 'f32',
          context: 8,
          bos: false,
          seed: 0,
          corpus: 'synthetic',
          maxTokens: null,
          dropShort: false,
          createdBy: 'test'
        },
        64
      )
      if ('complete' in w) throw new Error('store exists')
      const rng = new Rng(5)
      for (let doc = 0; doc < 40; doc++) {
        await w.appendSequence(
          Float32Array.from({ length: 8 * fx.d_in }, () => 2 * rng.gaussian() + 0.3),
          doc,
          [...Array(8).keys()],
          Array.from({ length: 8 }, () => rng.int(20))
        )
      }
      await w.finish(
        Array.from({ length: 40 }, (_, id) => ({ id, lang: 'en', source: 'synthetic' })),
        (id) => ` tok${id}`
      )
      const last = p.checkpoints.list().find((c) => c.step === 1000)!
      // The same tokens at every checkpoint (as a harvest with one corpus and seed gives): the Dynamics view's drift is matched.
      for (const c of p.checkpoints.list()) await importActivationStore(p, store, c.id)
      const { dynamicsOverview } = await import('../../src/core/analysis/queries')
      expect(await dynamicsOverview(p, 2)).toMatchObject({ steps: STEPS, n: fx.d_sae, warmStarted: false, matchMethod: drift.matchMethod })
      const stats = await computeFeatureStats({ sae: infos[2]!.path, activations: store, paperExamples: 3, topN: 3, rows: 'all' }, never)
      expect(stats.features).toHaveLength(fx.d_sae)
      // A JumpReLU SAE (Gemma Scope) through the same statistics: density = share of rows where pre > threshold and > 0.
      const [gemma] = await importSaes(p, { path: join(fx.dir, 'gemma-scope'), step: 0, layer: 3 })
      const jr = await computeFeatureStats({ sae: gemma!.path, activations: store, paperExamples: 3, topN: 3, rows: 'all' }, never)
      const gw = (await Sae.load(gemma!.path)).weights
      const firing = new Float64Array(fx.d_sae)
      const { ActivationStore } = await import('../../src/core/io/activation-store')
      const st = await ActivationStore.open(store)
      for (let sh = 0; sh < st.manifest.shards.length; sh++) {
        const { acts: a } = await st.readShard(sh)
        for (let r = 0; r < a.length / fx.d_in; r++) {
          for (let j = 0; j < fx.d_sae; j++) {
            let pre = gw.b_enc[j]!
            for (let i = 0; i < fx.d_in; i++) pre += a[r * fx.d_in + i]! * gw.W_enc[i * fx.d_sae + j]!
            if (pre > gw.threshold![j]! && pre > 0) firing[j]!++
          }
        }
      }
      for (const f of jr.features) expect(f.density!, `JumpReLU density of ${f.feature}`).toBeCloseTo(firing[f.feature]! / st.rows, 6)
      expect(jr.features.filter((f) => !f.dead).length).toBeGreaterThan(fx.d_sae / 2)
      // Geometry's lobes fire by the same rule: per 8-token block (one document each), the features above threshold.
      const { blockFirings } = await import('../../src/core/analysis/geometry/lobes')
      const blocks = await blockFirings(gemma!.path, store, { blockSize: 8 })
      expect(blocks.blocks).toBe(40)
      const byDoc = new Map<number, Uint8Array>()
      for (let sh = 0; sh < st.manifest.shards.length; sh++) {
        const { acts: a, doc: docs } = await st.readShard(sh)
        for (let r = 0; r < docs.length; r++) {
          const fired = byDoc.get(docs[r]!) ?? new Uint8Array(fx.d_sae)
          byDoc.set(docs[r]!, fired)
          for (let j = 0; j < fx.d_sae; j++) {
            let pre = gw.b_enc[j]!
            for (let i = 0; i < fx.d_in; i++) pre += a[r * fx.d_in + i]! * gw.W_enc[i * fx.d_sae + j]!
            if (pre > gw.threshold![j]! && pre > 0) fired[j] = 1
          }
        }
      }
      for (let b = 0; b < blocks.blocks; b++) {
        expect(Array.from(blocks.fired.subarray(b * fx.d_sae, (b + 1) * fx.d_sae)), `block ${b}`).toEqual(Array.from(byDoc.get(blocks.doc[b]!)!))
      }
      const set = p.features.createSet(
        { name: 'step 1000 · layer 2', source: 'sae', saeId: infos[2]!.id, checkpointId: last.id, layer: 2 },
        stats.tokens,
        stats.features
      )
      const live = stats.features.find((f) => !f.dead)!
      p.labels.setLabel(set.id, live.feature, 'ana', 'Token-level', 'fires on tok3')
      // Formation (SAE-Track's measure) over the imported series.
      const { dynamicsFeature } = await import('../../src/core/analysis/queries')
      const dyn = await dynamicsFeature(p, 2, live.feature)
      expect(dyn.formation!.m.sae).toHaveLength(STEPS.length)
      expect(dyn.formation!.m.sae.every(Number.isFinite)).toBe(true)
      const out = join(t.dir, 'np')
      const r = exportNeuronpedia(p, out, { modelId: 'tiny-neox' })
      expect(r.sources).toHaveLength(1)
      const src = join(out, 'tiny-neox', '1-featuretrace__step1000')
      expect(readdirSync(src).sort()).toEqual(['activations', 'explanations', 'features', 'model.jsonl', 'source.jsonl', 'sourceset.jsonl'])
      const lines = (sub: string): Record<string, unknown>[] =>
        readdirSync(join(src, sub))
          .sort()
          .flatMap((f) =>
            gunzipSync(readFileSync(join(src, sub, f)))
              .toString('utf8')
              .split('\n')
              .filter(Boolean)
              .map((l) => JSON.parse(l) as Record<string, unknown>)
          )
      const features = lines('features')
      expect(features).toHaveLength(fx.d_sae)
      expect(readdirSync(join(src, 'features'))).toEqual(['batch-0.jsonl.gz'])
      const f = features.find((x) => x.index === String(live.feature))!
      const detail = p.features.get(set.id, live.feature)
      expect(f).toMatchObject({ modelId: 'tiny-neox', layer: '1-featuretrace__step1000', frac_nonzero: detail.density })
      expect(f.maxActApprox as number).toBeGreaterThanOrEqual(detail.maxAct!)
      expect(f.topkCosSimIndices).toEqual(detail.neighbours.map((x) => x.feature))
      const acts = lines('activations').filter((a) => a.index === String(live.feature))
      expect(acts).toHaveLength(new Set(detail.examples.map((e) => JSON.stringify([e.tokens, e.acts]))).size)
      expect(acts[0]).toMatchObject({ tokens: detail.examples[0]!.tokens, values: detail.examples[0]!.acts, maxValue: Math.max(...detail.examples[0]!.acts) })
      expect(lines('explanations')).toEqual([
        expect.objectContaining({
          index: String(live.feature),
          description: 'Token-level: fires on tok3',
          authorId: NEURONPEDIA_BOT_USER,
          typeName: 'human',
          notes: 'FeatureTrace label by ana'
        })
      ])
      const examples = readFileSync(join(out, 'feature-examples.jsonl'), 'utf8').trim().split('\n')
      expect(examples).toHaveLength(fx.d_sae)
      expect(JSON.parse(examples.find((l) => (JSON.parse(l) as { feature: number }).feature === live.feature)!)).toMatchObject({
        checkpoint: 1000,
        label: 'Token-level',
        note: 'fires on tok3'
      })
    } finally {
      p.close()
    }
  })

  it("round trip: an SAE trained here, re-imported, gives identical activations, equal to SAELens' rule on the same files", async () => {
    const planted = plantedDictionary(fx.d_in, 24, 1)
    const acts = await writePlantedActivations(t.dir, 'planted', planted, 2000, 3, 2)
    const trained = await trainSae(
      {
        activations: acts,
        out: join(t.dir, 'trained'),
        preset: 'gao2024',
        backend: 'cpu',
        overrides: { n: fx.d_sae, k: 6, batchSize: 128, tokens: 6000, inputScaling: 'none', auxK: 0 }
      },
      never
    )
    const p = project()
    try {
      const [info] = await importSaes(p, { path: trained.dir, step: 1000, layer: 2 })
      const ours = await activationsOf(trained.dir, fx.inputs)
      const back = await activationsOf(info!.path, fx.inputs)
      expect(Array.from(back)).toEqual(Array.from(ours))
      expect(Array.from(ours).some((v) => v > 0)).toBe(true)
      // The folder we write is SAELens' layout: SAELens' encoding rule on it gives the same activations.
      const ref = pythonReference('saelens', trained.dir, fx.inputs, t.dir)
      const diff = maxDiff(ours, ref, fx.d_sae)
      console.log(`round trip: identical; SAELens rule on our folder max diff ${diff.toExponential(2)}`)
      expect(diff).toBeLessThan(1e-5)
      // And our unit-norm SAEs keep their scaling through an import.
      const unit = await trainSae(
        {
          activations: acts,
          out: join(t.dir, 'trained-unit'),
          preset: 'inaba2025',
          backend: 'cpu',
          overrides: { n: fx.d_sae, k: 6, batchSize: 128, tokens: 4000, warmupSteps: 5 }
        },
        never
      )
      const [u] = await importSaes(p, { path: unit.dir, step: 100, layer: 2 })
      expect(Array.from(await activationsOf(u!.path, fx.inputs))).toEqual(Array.from(await activationsOf(unit.dir, fx.inputs)))
      // Its unit norm is folded into SAELens' constant_norm_rescale: SAELens' rule on the folder gives our activations too.
      const unitDiff = maxDiff(await activationsOf(unit.dir, fx.inputs), pythonReference('saelens', unit.dir, fx.inputs, t.dir), fx.d_sae)
      console.log(`unit-norm SAE: SAELens rule on our folder max diff ${unitDiff.toExponential(2)}`)
      expect(unitDiff).toBeLessThan(1e-5)
    } finally {
      p.close()
    }
  }, 120_000)

  const bad: [string, string, RegExp[]][] = [
    [
      'sparsify folder with transposed tensors',
      'bad/sparsify-transposed/layers.1',
      [/encoder\.weight is \[16, 64\] but cfg\.json \(d_in 16, num_latents 64\) implies \[64, 16\]/, /stored transposed/]
    ],
    [
      'cfg whose sizes disagree with the tensors',
      'bad/cfg-mismatch',
      [/cfg-mismatch\/sae_weights\.safetensors: W_enc is \[16, 64\] but cfg\.json \(d_in 16, d_sae 128\) implies \[16, 128\]/]
    ],
    ['.npz missing threshold', 'bad/npz-no-threshold/params.npz', [/params\.npz has no "threshold" array/, /needs its per-latent threshold/]],
    [
      '.pth pickle',
      'bad/pickle/sae.pth',
      [/sae\.pth is a PyTorch pickle/, /torch\.load\("sae\.pth", map_location="cpu"\)/, /from safetensors\.torch import save_file/]
    ]
  ]
  it.each(bad)('refuses a %s with a clear error, importing nothing', async (_what, rel, messages) => {
    const p = project()
    try {
      const path = join(fx.dir, rel)
      const scan = await scanSaeImport(p, { path, step: 100, layer: 2 })
      expect(scan.found).toEqual([])
      expect(scan.problems).toHaveLength(1)
      let error: unknown
      try {
        await importSaes(p, { path, step: 100, layer: 2 })
      } catch (err) {
        error = err
      }
      expect(error).toBeInstanceOf(UserError)
      const message = (error as Error).message
      console.log(message)
      for (const m of messages) expect(message).toMatch(m)
      expect(p.saes.count()).toBe(0)
      expect(existsSync(join(p.artifactsDir, 'saes'))).toBe(false)
    } finally {
      p.close()
    }
  })

  it('refuses a whole series when one step cannot be read, and an SAE whose d_in does not fit the checkpoint', async () => {
    const { cpSync } = await import('node:fs')
    const mixed = join(t.dir, 'mixed')
    cpSync(join(fx.dir, 'sparsify-series', 'step0'), join(mixed, 'step0'), { recursive: true })
    cpSync(join(fx.dir, 'bad', 'sparsify-transposed'), join(mixed, 'step100'), { recursive: true })
    mkdirSync(join(mixed, 'notes'))
    const p = project()
    try {
      const scan = await scanSaeImport(p, { path: mixed })
      expect(scan.found.map((s) => s.step)).toEqual([0])
      expect(scan.problems.map((x) => x.reason)).toEqual([expect.stringMatching(/stored transposed/)])
      await expect(importSaes(p, { path: mixed })).rejects.toThrow(/Nothing was imported: one SAE could not be read or attached/)
      expect(p.saes.count()).toBe(0)
      // An existing SAE is not replaced silently.
      await importSaes(p, { path: join(fx.dir, 'saelens-topk'), step: 0 })
      await expect(importSaes(p, { path: join(fx.dir, 'saelens-topk'), step: 0 })).rejects.toThrow(/already has a layer-2 SAE .* --replace/)
      expect((await importSaes(p, { path: join(fx.dir, 'saelens-topk'), step: 0, replace: true })).length).toBe(1)
      expect(p.saes.count()).toBe(1)
    } finally {
      p.close()
    }
  })

  it('looks at a plain file or a missing path and says what is wrong; lists step folders in step order', async () => {
    const { cpSync, writeFileSync } = await import('node:fs')
    const notes = join(t.dir, 'notes.txt')
    writeFileSync(notes, 'not an SAE')
    const steps = join(t.dir, 'text-order')
    for (const [from, to] of [
      ['step0', 'step0'],
      ['step100', 'step100'],
      ['step1000', 'step1000'],
      ['step0', 'step20']
    ])
      cpSync(join(fx.dir, 'sparsify-series', from!), join(steps, to!), { recursive: true })
    const p = project()
    try {
      expect(await scanSaeImport(p, { path: notes })).toEqual({
        path: notes,
        found: [],
        problems: [{ path: notes, reason: expect.stringMatching(/^is not an SAE FeatureTrace reads: expected SAELens/) }]
      })
      expect((await scanSaeImport(p, { path: join(t.dir, 'gone') })).problems).toEqual([
        { path: join(t.dir, 'gone'), reason: expect.stringMatching(/does not exist/) }
      ])
      expect((await scanSaeImport(p, { path: steps })).found.map((s) => s.step)).toEqual([0, 20, 100, 1000])
    } finally {
      p.close()
    }
  })

  it('CLI: featuretrace import-sae PATH --project DIR [--checkpoint STEP], exit 2 with the reason on bad input', async () => {
    const { spawnSync } = await import('node:child_process')
    const ft = (...a: string[]): { status: number | null; stdout: string; stderr: string } => spawnSync(process.execPath, [CLI, ...a], { encoding: 'utf8' })
    const dir = join(t.dir, 'cli-project')
    expect(ft('checkpoints', 'add', series, '--project', dir).status).toBe(0)
    const r = ft('import-sae', join(fx.dir, 'sparsify-series'), '--project', dir)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/found +sparsify +step 0 +layer 2 +d_in 16 d_sae 64 TopK k=8, BF16/)
    expect(r.stdout).toMatch(/imported step 1000 layer 2 \(hook layers\.1\): 64 latents/)
    const g = ft(
      'import-sae',
      join(fx.dir, 'gemma-scope', 'gemma-scope-2b-pt-res', 'layer_3', 'width_64', 'average_l0_9', 'params.npz'),
      '--project',
      dir,
      '--checkpoint',
      '100'
    )
    expect(g.status, g.stderr).toBe(0)
    expect(g.stdout).toMatch(
      /found +gemma-scope +step 100 +layer 4 +d_in 16 d_sae 64 JumpReLU threshold 0\.\d+…0\.\d+ \(median 0\.\d+\), F32, input none, no b_dec on input, hook blocks\.3\.hook_resid_post /
    )
    const bad = ft('import-sae', join(fx.dir, 'bad', 'pickle', 'sae.pth'), '--project', dir, '--checkpoint', '0')
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/is a PyTorch pickle[\s\S]*torch\.load/)
    const none = ft('export-neuronpedia', '--project', dir, '--out', join(t.dir, 'np-cli'))
    expect(none.status).toBe(2)
    expect(none.stderr).toMatch(/No feature statistics to export/)
  })
})

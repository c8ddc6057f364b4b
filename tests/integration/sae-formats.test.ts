// Every SAE format's rule and stream honoured or refused by name (issue 14): the declared key table is the
// one docs/sae-formats.md shows; each key refused unless default is refused naming file, key and value;
// SAELens' rescale_acts_by_decoder_norm, 5.x configs, BatchTopK checkpoints, log_threshold and finetuning
// scaling give SAELens' latents (numpy reference: make_sae_fixtures.py, SAELens' rule); a JumpReLU SAE
// firing ~500 latents a token gets SAELens' densities (no fixed code width); sparsify run folders and
// llm-jp-sae's output tree are read as their tools write them; SAEs of other streams are refused.
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { discoverCheckpoints } from '../../src/core/checkpoints/discover'
import { computeFeatureStats } from '../../src/core/analysis/feature-stats'
import { ActivationStoreWriter } from '../../src/core/io/activation-store'
import { describeSae } from '../../src/core/io/sae-formats'
import { renderKeyTables, SAE_KEY_TABLES } from '../../src/core/io/sae-formats/keys'
import { Project } from '../../src/core/project'
import { importSaes, scanSaeImport } from '../../src/core/sae/import'
import { Sae } from '../../src/core/sae/sae'
import { initBackend } from '../../src/core/tf/backend'
import { Rng } from '../../src/core/random'
import { UserError } from '../../src/shared/api'
import { makeCheckpointSeries } from '../fixtures/checkpoint-series'
import { pythonReference, saeFixtures, type SaeFixtures } from '../fixtures/sae-fixtures'
import { REPO, tempDir } from '../helpers'
import * as tf from '@tensorflow/tfjs-core'

const never = { signal: new AbortController().signal, progress: () => {} }

function maxDiff(ours: Float32Array, ref: number[][], n: number): number {
  let m = 0
  ref.forEach((row, r) => row.forEach((v, j) => (m = Math.max(m, Math.abs(ours[r * n + j]! - v)))))
  return m
}

/** Rows whose set of active latents differs from the reference's. */
function setMismatches(ours: Float32Array, ref: number[][], n: number): number {
  return ref.filter((row, r) => row.some((v, j) => v > 0 !== ours[r * n + j]! > 0)).length
}

async function activationsOf(dir: string, inputs: number[][]): Promise<Float32Array> {
  const enc = await Sae.load(dir)
  try {
    return await enc.dense(Float32Array.from(inputs.flat()), inputs.length)
  } finally {
    enc.dispose()
  }
}

function setDotted(cfg: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.')
  let at = cfg
  for (const p of parts.slice(0, -1)) at = (at[p] ??= {}) as Record<string, unknown>
  at[parts.at(-1)!] = value
}

describe('SAE formats: keys, rules and streams', () => {
  let t: ReturnType<typeof tempDir>
  let fx: SaeFixtures
  let series: string
  let n = 0
  beforeAll(async () => {
    await initBackend('cpu')
    t = tempDir()
    fx = saeFixtures()
    series = join(t.dir, 'ckpts')
    await makeCheckpointSeries(series, { names: ['step0', 'step100', 'step1000'], dModel: fx.d_in, layers: 4 })
  }, 120_000)
  afterAll(() => t.cleanup())

  function project(): Project {
    const p = Project.open(join(t.dir, `project-${n++}`))
    p.checkpoints.addAll(discoverCheckpoints(series).found, undefined)
    return p
  }

  it('docs/sae-formats.md holds the key tables the readers use', () => {
    const doc = readFileSync(join(REPO, 'docs', 'sae-formats.md'), 'utf8')
    const m = /<!-- key tables: begin[^>]*-->\n([\s\S]*?)<!-- key tables: end -->/.exec(doc)
    expect(m, 'docs/sae-formats.md has no key-table markers').not.toBeNull()
    // Regenerate with: npx tsx scripts/sae-formats-doc.ts
    expect(m![1]).toBe(renderKeyTables())
  })

  const refusals = [
    ...SAE_KEY_TABLES.saelens.keys.flatMap((k) => (k.refused ?? []).map((v) => ['saelens', 'saelens-topk', 'cfg.json', k.key, v] as const)),
    ...SAE_KEY_TABLES.sparsify.keys.flatMap((k) => (k.refused ?? []).map((v) => ['sparsify', 'sparsify-series/step0/layers.1', 'cfg.json', k.key, v] as const))
  ]
  it('has a refusal to check for every format with settable keys', () => {
    expect(refusals.length).toBeGreaterThanOrEqual(12)
  })
  it.each(refusals)('%s: %s with %s %s = %j is refused naming the file, the key and the value', async (_format, fixture, file, key, value) => {
    const dir = join(t.dir, `refuse-${n++}`)
    cpSync(join(fx.dir, fixture), dir, { recursive: true })
    const cfg = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>
    setDotted(cfg, key, value)
    writeFileSync(join(dir, file), JSON.stringify(cfg))
    let error: unknown
    try {
      await describeSae(dir)
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(UserError)
    expect((error as Error).message).toContain(`${join(dir, file)}: ${key} = ${JSON.stringify(value)} `)
  })

  it('refuses a tensor the format does not declare, by name, and notes config keys it does not know', async () => {
    await expect(describeSae(join(fx.dir, 'bad', 'saelens-extra-tensor'))).rejects.toThrow(
      /sae_weights\.safetensors holds tensor b_gate, which a SAELens topk SAE does not have/
    )
    const dir = join(t.dir, 'unknown-key')
    cpSync(join(fx.dir, 'saelens-topk'), dir, { recursive: true })
    const cfg = JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf8')) as Record<string, unknown>
    writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ ...cfg, use_magic_norm: true }))
    expect((await describeSae(dir))!.notes.join('\n')).toMatch(/keys FeatureTrace does not know .*use_magic_norm/)
  })

  // Case 13 and SAELens' other rules: the imported SAE reproduces SAELens' latents (numpy, SAELens' rule).
  const rules: [string, { architecture: string; k: number | null; note?: RegExp }][] = [
    ['saelens-topk-rescale', { architecture: 'topk', k: 4, note: /decoder norms are folded/ }],
    ['saelens-topk-constant_norm_rescale', { architecture: 'topk', k: 8 }],
    [
      'saelens-topk-expected_average_only_in',
      { architecture: 'topk', k: 8, note: /expected_average_only_in.*SAELens applies no scaling when it loads a folder/ }
    ],
    ['saelens5-standard', { architecture: 'standard', k: null }],
    ['saelens5-topk', { architecture: 'topk', k: 6 }],
    ['saelens-batchtopk', { architecture: 'jumprelu', k: null, note: /training form: converted .* topk_threshold/ }],
    ['saelens-jumprelu-log', { architecture: 'jumprelu', k: null }],
    ['saelens5-finetuning-scale', { architecture: 'jumprelu', k: null }]
  ]
  it.each(rules)("%s: imported with SAELens' rule, the same latents as SAELens to 1e-5 and the same active set in every row", async (name, want) => {
    const ref = fx.saes[name]!
    const p = project()
    try {
      const scan = await scanSaeImport(p, { path: join(fx.dir, ref.path), step: 100 })
      expect(scan.problems).toEqual([])
      expect(scan.found[0]).toMatchObject({ architecture: want.architecture, k: want.k, layer: ref.layer, stream: 'residual' })
      if (want.note) expect(scan.found[0]!.notes.join('\n')).toMatch(want.note)
      const [info] = await importSaes(p, { path: join(fx.dir, ref.path), step: 100 })
      const ours = await activationsOf(info!.path, fx.inputs)
      const diff = maxDiff(ours, ref.acts, fx.d_sae)
      const active = ref.acts.flat().filter((v) => v > 0).length
      console.log(
        `${name}: max |ours - SAELens rule| = ${diff.toExponential(2)}; ${active} active latents over ${fx.rows} rows; rows with another active set: ${setMismatches(ours, ref.acts, fx.d_sae)}`
      )
      expect(diff).toBeLessThan(1e-5)
      expect(setMismatches(ours, ref.acts, fx.d_sae)).toBe(0)
      expect(Array.from(ours).filter((v) => v > 0).length).toBe(active)
      if (ref.decoder) {
        const w = (await Sae.load(info!.path)).weights.W_dec
        expect(maxDiff(w, ref.decoder, fx.d_in)).toBeLessThan(1e-5)
      }
    } finally {
      p.close()
    }
  })

  it("case 13: without the rescale rule the active sets would differ; with it the reconstruction is SAELens' too", async () => {
    const ref = fx.saes['saelens-topk-rescale']!
    // The SAE as stored, read as a plain TopK (what dropping the key computed): another active set in most rows.
    const dir = join(t.dir, 'rescale-dropped')
    cpSync(join(fx.dir, ref.path), dir, { recursive: true })
    const cfg = JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf8')) as Record<string, unknown>
    writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ ...cfg, rescale_acts_by_decoder_norm: false }))
    const dropped = await activationsOf(dir, fx.inputs)
    const wrong = setMismatches(dropped, ref.acts, fx.d_sae)
    console.log(`rescale_acts_by_decoder_norm dropped: ${wrong} of ${fx.rows} rows get another active set`)
    expect(wrong).toBeGreaterThan(fx.rows / 2)
    // Our reconstruction (latents @ folded W_dec + b_dec) equals TopKSAE.decode's.
    const enc = await Sae.load(join(fx.dir, ref.path))
    try {
      const x = tf.tensor2d(Float32Array.from(fx.inputs.flat()), [fx.rows, fx.d_in])
      const { values, indices } = enc.encode(x)
      const { decodeSparse } = await import('../../src/core/sae/topk')
      const recon = decodeSparse(enc.params.Wdec, values, indices, enc.params.bdec)
      const r = recon.dataSync() as Float32Array
      tf.dispose([x, values, indices, recon])
      expect(maxDiff(r, ref.recon!, fx.d_in)).toBeLessThan(1e-4)
    } finally {
      enc.dispose()
    }
  })

  it("case 25: a JumpReLU SAE firing ~500 of 1024 latents a token gets SAELens' densities (no fixed code width)", async () => {
    const ref = fx.saes['saelens-jumprelu-dense']!
    const nDense = ref.d_sae!
    const p = project()
    try {
      const [info] = await importSaes(p, { path: join(fx.dir, ref.path), step: 100 })
      // An activation store of random rows, 40 documents of 8 tokens.
      const store = join(t.dir, 'dense-store')
      const w = ActivationStoreWriter.begin(
        store,
        {
          model: 'fixture',
          modelType: 'llama',
          checkpointStep: 100,
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
      const rng = new Rng(25)
      const rows: number[][] = []
      for (let doc = 0; doc < 40; doc++) {
        const block = Float32Array.from({ length: 8 * fx.d_in }, () => rng.gaussian())
        for (let r = 0; r < 8; r++) rows.push(Array.from(block.subarray(r * fx.d_in, (r + 1) * fx.d_in)))
        await w.appendSequence(
          block,
          doc,
          [...Array(8).keys()],
          Array.from({ length: 8 }, () => rng.int(20))
        )
      }
      await w.finish(
        Array.from({ length: 40 }, (_, id) => ({ id, lang: 'en', source: 'synthetic' })),
        (id) => ` tok${id}`
      )
      const stats = await computeFeatureStats({ sae: info!.path, activations: store, paperExamples: 2, topN: 2, rows: 'all' }, never)
      // SAELens' JumpReLU rule on the same rows, in numpy.
      const acts = pythonReference('saelens', join(fx.dir, ref.path), rows, t.dir)
      const density = Array.from({ length: nDense }, (_, f) => acts.filter((row) => row[f]! > 0).length / rows.length)
      const l0 = acts.map((row) => row.filter((v) => v > 0).length)
      const ours = stats.features.map((f) => f.density ?? 0)
      const sum = ours.reduce((a, b) => a + b, 0)
      console.log(
        `case 25: L0 per token ${Math.min(...l0)}–${Math.max(...l0)}; sum of densities FeatureTrace ${sum.toFixed(2)}, SAELens ${density.reduce((a, b) => a + b, 0).toFixed(2)}`
      )
      expect(Math.min(...l0)).toBeGreaterThan(256)
      for (let f = 0; f < nDense; f++) expect(ours[f], `density of latent ${f}`).toBeCloseTo(density[f]!, 12)
    } finally {
      p.close()
    }
  })

  it('case 16: Gemma Scope -mlp, -att and -transcoders releases are refused with their stream, whatever --layer says; -res reads blocks.3.hook_resid_post', async () => {
    const p = project()
    try {
      const res = await scanSaeImport(p, { path: join(fx.dir, 'gemma-scope'), step: 100 })
      expect(res.problems).toEqual([])
      expect(res.found[0]).toMatchObject({ hook: 'blocks.3.hook_resid_post', stream: 'residual', layer: 4 })
      const expected: Record<string, RegExp> = {
        mlp: /reads the MLP output \(blocks\.3\.hook_mlp_out\), not the residual stream/,
        att: /reads the attention heads' outputs \(blocks\.3\.attn\.hook_z\), not the residual stream/,
        transcoders: /reads the input of a transcoder, which predicts another hook's output \(blocks\.3\.ln2\.hook_normalized\), not the residual stream/
      }
      for (const [kind, message] of Object.entries(expected)) {
        for (const layer of [undefined, 4]) {
          const path = join(fx.dir, 'gemma-scope-streams', `gemma-scope-2b-pt-${kind}`)
          const scan = await scanSaeImport(p, { path, step: 100, ...(layer === undefined ? {} : { layer }) })
          expect(scan.found[0]!.stream).not.toBe('residual')
          expect(scan.problems.map((x) => x.reason)).toEqual([expect.stringMatching(message)])
          await expect(importSaes(p, { path, step: 100, ...(layer === undefined ? {} : { layer }) })).rejects.toThrow(message)
        }
      }
      expect(p.saes.count()).toBe(0)
      const [info] = await importSaes(p, { path: join(fx.dir, 'gemma-scope'), step: 100 })
      expect(info).toMatchObject({ layer: 4, hook: 'blocks.3.hook_resid_post' })
    } finally {
      p.close()
    }
  })

  it('case 12: sparsify run folders: training-state .pt files are passed over (said so), --hookpoint is a path (layers.1 is not best/layers.1), the MLP hookpoint is refused', async () => {
    const p = project()
    const run = join(fx.dir, 'sparsify-run')
    try {
      const all = await scanSaeImport(p, { path: run })
      expect(all.problems.map((x) => x.reason)).toEqual(
        [0, 100].map(() =>
          expect.stringMatching(/holds 3 SAEs \(best\/layers\.1, layers\.1, layers\.1\.mlp \[the MLP output\]\); choose one with --hookpoint PATH/)
        )
      )
      const scan = await scanSaeImport(p, { path: run, hookpoint: 'layers.1' })
      expect(scan.problems).toEqual([])
      expect(scan.found.map((s) => [s.step, s.layer, s.hook, s.path.slice(run.length)])).toEqual([
        [0, 2, 'layers.1', '/step0/layers.1'],
        [100, 2, 'layers.1', '/step100/layers.1']
      ])
      expect(scan.found[0]!.notes.join('\n')).toMatch(
        /step0: best\/optimizer_0\.pt, lr_scheduler_0\.pt, optimizer_0\.pt, rank_0_state\.pt, state\.pt are sparsify's training state .* not SAEs: not read/
      )
      const best = await scanSaeImport(p, { path: run, hookpoint: 'best/layers.1' })
      expect(best.found.map((s) => s.path.slice(run.length))).toEqual(['/step0/best/layers.1', '/step100/best/layers.1'])
      const mlp = await scanSaeImport(p, { path: run, hookpoint: 'layers.1.mlp' })
      expect(mlp.problems.map((x) => x.reason)).toEqual([0, 100].map(() => expect.stringMatching(/reads the MLP output \(layers\.1\.mlp\)/)))
      // A hookpoint folder that cannot be read is reported unless --hookpoint chooses another.
      const edited = join(t.dir, 'run-with-transcoder')
      cpSync(run, edited, { recursive: true })
      const mlpCfg = join(edited, 'step0', 'layers.1.mlp', 'cfg.json')
      writeFileSync(mlpCfg, JSON.stringify({ ...(JSON.parse(readFileSync(mlpCfg, 'utf8')) as object), transcode: true }))
      expect((await scanSaeImport(p, { path: edited })).problems.map((x) => x.reason)).toContainEqual(
        expect.stringContaining(`${mlpCfg}: transcode = true makes this a transcoder`)
      )
      expect((await scanSaeImport(p, { path: edited, hookpoint: 'layers.1' })).problems).toEqual([])
      const infos = await importSaes(p, { path: run, hookpoint: 'layers.1' })
      expect(infos.map((s) => [s.step, s.layer, s.hook])).toEqual([
        [0, 2, 'layers.1'],
        [100, 2, 'layers.1']
      ])
      for (const [i, s] of [0, 100].entries()) {
        expect(maxDiff(await activationsOf(infos[i]!.path, fx.inputs), fx.saes[`sparsify-run-step${s}-layers.1`]!.acts, fx.d_sae)).toBeLessThan(1e-5)
      }
    } finally {
      p.close()
    }
  })

  it("case 15: llm-jp-sae's output tree: the whole tree and one model's tree are recognised; layer2 is the output of block 2 (layer 2), the step comes from the model folder", async () => {
    const p = project()
    const tree = join(fx.dir, 'llm-jp-tree')
    try {
      const scan = await scanSaeImport(p, { path: tree })
      expect(scan.problems).toEqual([])
      expect(scan.found.map((s) => [s.step, s.layer, s.hook, s.inputScaling])).toEqual([
        [0, 2, 'model.layers.1', 'unit_norm'],
        [100, 2, 'model.layers.1', 'unit_norm']
      ])
      expect(scan.found[0]!.notes.join('\n')).toMatch(
        /layer2 in llm-jp-sae's output tree is the output of block 2 \(its train\.py hooks model\.layers\[1\] for --layer 2\): FeatureTrace layer 2/
      )
      const one = await scanSaeImport(p, { path: join(tree, '_data_ckpts_llm-jp-tiny_iter_0000100') })
      expect(one.problems).toEqual([])
      expect(one.found.map((s) => [s.step, s.layer])).toEqual([[100, 2]])
      const infos = await importSaes(p, { path: tree })
      for (const [i, s] of [0, 100].entries()) {
        expect(maxDiff(await activationsOf(infos[i]!.path, fx.inputs), fx.saes[`llm-jp-tree-step${s}`]!.acts, fx.d_sae)).toBeLessThan(1e-5)
      }
    } finally {
      p.close()
    }
  })
})

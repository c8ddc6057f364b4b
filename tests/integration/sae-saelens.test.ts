// What FeatureTrace writes for an SAE is what SAELens reads: every input scaling folded into the weights so
// SAELens' own encode of raw activations gives FeatureTrace's latents, every key SAELens 5.x and 6.x need, and
// SAEs written before that layout still loading and encoding as they did. The last block runs SAELens' own
// loading code (SAELENS_SRC) on the folders and skips, saying why, when no SAELens source tree is given.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { modelNameOf } from '../../src/core/checkpoints/model-name'
import { describeSae } from '../../src/core/io/sae-formats'
import { UNNAMED_HOOK } from '../../src/core/io/sae-formats/common'
import { writeSafetensors } from '../../src/core/io/safetensors'
import { Project } from '../../src/core/project'
import { Rng } from '../../src/core/random'
import { importSaes } from '../../src/core/sae/import'
import { Sae, SAELENS_LAYOUT_VERSION } from '../../src/core/sae/sae'
import type { InputScaling } from '../../src/core/sae/config'
import { trainSae } from '../../src/core/sae/train'
import { initBackend } from '../../src/core/tf/backend'
import { compareCodes, SAELENS_SKIP_REASON, saelensEncode, saelensSources } from '../fixtures/saelens'
import { saeFixtures, type SaeFixtures } from '../fixtures/sae-fixtures'
import { CLI, tempDir } from '../helpers'

const never = { signal: new AbortController().signal, progress: () => {} }
const D = 32
const ROWS = 20_000
const CHECK_ROWS = 2000
const SCALINGS: InputScaling[] = ['unit_norm', 'constant', 'layer_norm', 'none']
const NORMALIZE: Record<InputScaling, string> = { unit_norm: 'constant_norm_rescale', constant: 'none', layer_norm: 'layer_norm', none: 'none' }

let t: ReturnType<typeof tempDir>
let acts: Float32Array
let file: string
const trained: Record<string, string> = {}

/** Our latents of raw rows [rows, d] from an SAE folder. */
async function ours(dir: string, x: Float32Array, rows: number): Promise<Float32Array> {
  const sae = await Sae.load(dir)
  try {
    return await sae.dense(x, rows)
  } finally {
    sae.dispose()
  }
}

/** The folder FeatureTrace wrote before format 2 (here for a store's layer 2): training-space weights, featuretrace.input_scaling, no SAELens scaling key. */
async function writeOldLayout(from: string, to: string): Promise<void> {
  const sae = (await Sae.load(from)).trainingForm()
  const cfg = JSON.parse(readFileSync(join(from, 'cfg.json'), 'utf8')) as Record<string, unknown> & { featuretrace: Record<string, unknown> }
  mkdirSync(to, { recursive: true })
  const ft = Object.fromEntries(Object.entries(cfg.featuretrace).filter(([key]) => key !== 'format_version' && key !== 'written_by'))
  const old = {
    architecture: 'topk',
    d_in: sae.d,
    d_sae: sae.n,
    k: sae.rule.k,
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: true,
    normalize_activations: 'none',
    model_name: '/models/tiny/step0',
    hook_name: 'blocks.1.hook_resid_post',
    context_size: 64,
    dataset_path: null,
    metadata: { model_name: '/models/tiny/step0', hook_name: null, context_size: 64 },
    featuretrace: ft
  }
  writeFileSync(join(to, 'cfg.json'), JSON.stringify(old, null, 2))
  const w = sae.weights
  await writeSafetensors(join(to, 'sae_weights.safetensors'), {
    W_enc: { dtype: 'F32', shape: [sae.d, sae.n], data: w.W_enc },
    W_dec: { dtype: 'F32', shape: [sae.n, sae.d], data: w.W_dec },
    b_enc: { dtype: 'F32', shape: [sae.n], data: w.b_enc },
    b_dec: { dtype: 'F32', shape: [sae.d], data: w.b_dec }
  })
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / Math.max(Math.abs(a[i]!), Math.abs(b[i]!), 1e-6))
  return m
}

beforeAll(async () => {
  await initBackend('cpu')
  t = tempDir('ft-saelens-')
  // Offset, unevenly scaled Gaussian rows: unit norm, constant and layer norm all change them.
  const rng = new Rng(1)
  acts = new Float32Array(ROWS * D)
  for (let i = 0; i < acts.length; i++) acts[i] = rng.gaussian() * (1 + (i % D) / 8) + 0.5
  file = join(t.dir, 'acts.safetensors')
  await writeSafetensors(file, { activations: { dtype: 'F32', shape: [ROWS, D], data: acts } })
  for (const scaling of SCALINGS) {
    const out = join(t.dir, `sae-${scaling}`)
    await trainSae(
      {
        activations: file,
        out,
        preset: 'inaba2025',
        backend: 'cpu',
        overrides: { n: 128, k: 8, batchSize: 256, tokens: ROWS, warmupSteps: 10, inputScaling: scaling, evalRows: 1000 }
      },
      never
    )
    trained[scaling] = out
  }
  await writeOldLayout(trained.unit_norm!, join(t.dir, 'old-unit_norm'))
  await writeOldLayout(trained.constant!, join(t.dir, 'old-constant'))
}, 300_000)
afterAll(() => t.cleanup())

describe('SAELens layout as written', () => {
  it.each(SCALINGS)('%s: every key SAELens 5.x and 6.x need, the scaling folded into the weights, the training scaling recorded', async (scaling) => {
    const cfg = JSON.parse(readFileSync(join(trained[scaling]!, 'cfg.json'), 'utf8')) as Record<string, unknown>
    expect(cfg).toMatchObject({
      architecture: 'topk',
      d_in: D,
      d_sae: 128,
      k: 8,
      apply_b_dec_to_input: true,
      normalize_activations: NORMALIZE[scaling],
      reshape_activations: 'none',
      metadata: { sae_lens_version: SAELENS_LAYOUT_VERSION, hook_name: UNNAMED_HOOK, hook_head_index: null, model_name: null },
      hook_name: UNNAMED_HOOK,
      hook_layer: 0,
      hook_head_index: null,
      activation_fn: 'topk',
      activation_fn_kwargs: { k: 8 },
      finetuning_scaling_factor: false,
      featuretrace: { input_scaling: scaling, format_version: 2 }
    })
    const sae = await Sae.load(trained[scaling]!)
    const factor = (cfg.featuretrace as { scaling_factor: number }).scaling_factor
    // Decoder rows are unit norm in training space: folding multiplies them by √d (unit norm) or 1/s (constant).
    const expected = scaling === 'unit_norm' ? Math.sqrt(D) : scaling === 'constant' ? 1 / factor : 1
    const norms = Array.from({ length: sae.n }, (_, i) => Math.hypot(...sae.weights.W_dec.subarray(i * D, (i + 1) * D)))
    for (const norm of norms) expect(norm / expected).toBeCloseTo(1, 4)
    if (scaling === 'constant') expect(factor).not.toBeCloseTo(1, 2)
  })

  it.each(SCALINGS)('%s: the saved SAE encodes raw rows as the training-space SAE does', async (scaling) => {
    const saved = await Sae.load(trained[scaling]!)
    const training = saved.trainingForm()
    expect(training.scaling.kind).toBe(scaling)
    const a = await saved.dense(acts, CHECK_ROWS)
    const b = await training.dense(acts, CHECK_ROWS)
    saved.dispose()
    training.dispose()
    const c = compareCodes(a, b, CHECK_ROWS, 128)
    console.log(`${scaling}: saved vs training space: ${c.otherSet} rows with another active set, max relative difference ${c.maxRelative.toExponential(2)}`)
    expect(c.otherSet).toBe(0)
    expect(c.maxRelative).toBeLessThan(1e-5)
  })

  it.each(['unit_norm', 'constant'])('an SAE written before the SAELens layout (%s, unfolded) loads and encodes as it did', async (scaling) => {
    const old = await Sae.load(join(t.dir, `old-${scaling}`))
    expect(old.scaling.kind).toBe(scaling)
    const now = await Sae.load(trained[scaling]!)
    const c = compareCodes(await old.dense(acts, CHECK_ROWS), await now.dense(acts, CHECK_ROWS), CHECK_ROWS, 128)
    expect(c.otherSet).toBe(0)
    expect(c.maxRelative).toBeLessThan(1e-5)
    // Warm starts read both as the same training-space weights.
    const [a, b] = [old.trainingForm().weights, now.trainingForm().weights]
    for (const name of ['W_enc', 'W_dec', 'b_enc', 'b_dec'] as const) expect(maxRelDiff(a[name], b[name]), name).toBeLessThan(1e-5)
    old.dispose()
    now.dispose()
  })

  it('featuretrace export-sae writes an old-layout SAE again in this layout, encoding the same', async () => {
    const out = join(t.dir, 'exported-old')
    const r = spawnSync(process.execPath, [CLI, 'export-sae', join(t.dir, 'old-unit_norm'), '--out', out], { encoding: 'utf8' })
    expect(r.status, r.stderr).toBe(0)
    console.log(r.stdout.trim())
    expect(JSON.parse(readFileSync(join(out, 'cfg.json'), 'utf8'))).toMatchObject({
      normalize_activations: 'constant_norm_rescale',
      model_name: 'tiny',
      hook_name: 'blocks.1.hook_resid_post',
      hook_layer: 1,
      context_size: 64,
      featuretrace: { input_scaling: 'unit_norm', format_version: 2 }
    })
    const c = compareCodes(await ours(out, acts, CHECK_ROWS), await ours(join(t.dir, 'old-unit_norm'), acts, CHECK_ROWS), CHECK_ROWS, 128)
    expect(c.otherSet).toBe(0)
    expect(c.maxRelative).toBeLessThan(1e-5)
    const again = spawnSync(process.execPath, [CLI, 'export-sae', join(t.dir, 'old-unit_norm'), '--out', out], { encoding: 'utf8' })
    expect(again.status).toBe(2)
    expect(again.stderr).toMatch(/exported-old exists and is not empty; choose an empty or new folder/)
  })

  it('warm-starts from a saved SAE in the space it was trained in', async () => {
    const init = trained.unit_norm!
    const warm = await trainSae(
      {
        activations: file,
        out: join(t.dir, 'warm'),
        preset: 'inaba2025',
        backend: 'cpu',
        init,
        overrides: { n: 128, k: 8, batchSize: 256, tokens: 256, lr: 1e-12, warmupSteps: 0, evalRows: 1000 }
      },
      never
    )
    const [a, b] = [(await Sae.load(init)).weights, (await Sae.load(warm.dir)).weights]
    // One step at lr 1e-12: the same SAE. Unfolding W_enc and b_dec wrongly would change them by √d.
    for (const name of ['W_enc', 'W_dec', 'b_enc', 'b_dec'] as const) expect(maxRelDiff(a[name], b[name]), name).toBeLessThan(1e-4)
    expect(JSON.parse(readFileSync(join(warm.dir, 'cfg.json'), 'utf8'))).toMatchObject({
      normalize_activations: 'constant_norm_rescale',
      featuretrace: { input_scaling: 'unit_norm', warm_started_from: init }
    })
  }, 60_000)

  it('an SAE trained from a plain activation file names the documented placeholder hook, read back as naming none', async () => {
    const found = await describeSae(trained.none!)
    expect(found).toMatchObject({ hook: UNNAMED_HOOK, stream: { stream: 'none', layer: null } })
  })

  it('imported back, each of our SAEs gives identical activations', async () => {
    const p = Project.open(join(t.dir, 'project'))
    try {
      for (const [i, scaling] of SCALINGS.entries()) {
        const [info] = await importSaes(p, { path: trained[scaling]!, step: i, layer: 1, saeOnly: true })
        expect(Array.from(await ours(info!.path, acts, 500)), scaling).toEqual(Array.from(await ours(trained[scaling]!, acts, 500)))
      }
    } finally {
      p.close()
    }
  })

  it("model_name is the model's name, never a local path", () => {
    const at = (rel: string, config: Record<string, unknown>): string => {
      const dir = join(t.dir, 'models', rel)
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
      return dir
    }
    expect(modelNameOf(at('a/step1000', { _name_or_path: 'EleutherAI/pythia-160m' }))).toBe('EleutherAI/pythia-160m')
    expect(modelNameOf(at('pythia-160m/step1000', { _name_or_path: '/home/me/runs/out' }))).toBe('pythia-160m')
    expect(modelNameOf(at('llm-jp-3-1.8b/iter_0001000', {}))).toBe('llm-jp-3-1.8b')
    expect(modelNameOf(at('hub/models--EleutherAI--pythia-70m/snapshots/abc123', {}))).toBe('EleutherAI/pythia-70m')
    expect(modelNameOf(at('my-model', {}))).toBe('my-model')
  })
})

const sources = saelensSources()
describe.skipIf(sources.length === 0)("SAELens' own loader and encode on what FeatureTrace writes", () => {
  let fx: SaeFixtures
  const imported: Record<string, string> = {}
  beforeAll(async () => {
    fx = saeFixtures()
    const p = Project.open(join(t.dir, 'imports'))
    try {
      // Every other format is converted into the same layout: a JumpReLU without b_dec on the input, a unit-norm TopK.
      const picks: [string, string][] = [
        ['gemma-scope', fx.saes['gemma-scope']!.path],
        ['llm-jp-sae', fx.saes['llm-jp-sae']!.path],
        ['saelens-jumprelu', fx.saes['saelens-jumprelu']!.path]
      ]
      for (const [i, [name, rel]] of picks.entries()) {
        const [info] = await importSaes(p, { path: join(fx.dir, rel), step: 10 + i, layer: 1, saeOnly: true })
        imported[name] = info!.path
      }
    } finally {
      p.close()
    }
  }, 120_000)

  for (const src of sources) {
    it.each(SCALINGS)(`${src}: %s SAE trained here — SAELens' encode of raw rows equals ours`, async (scaling) => {
      const run = saelensEncode(src, trained[scaling]!, acts.subarray(0, CHECK_ROWS * D), t.dir)
      const c = compareCodes(await ours(trained[scaling]!, acts, CHECK_ROWS), run.latents, CHECK_ROWS, 128)
      let err = 0
      let total = 0
      const mean = new Float64Array(D)
      for (let r = 0; r < CHECK_ROWS; r++) for (let j = 0; j < D; j++) mean[j]! += acts[r * D + j]! / CHECK_ROWS
      for (let i = 0; i < CHECK_ROWS * D; i++) {
        err += (run.recon[i]! - acts[i]!) ** 2
        total += (acts[i]! - mean[i % D]!) ** 2
      }
      console.log(
        `SAELens ${run.info.version} ${run.info.class}/${run.info.activation} (${run.info.normalize_activations}) on the ${scaling} SAE: ${c.otherSet} of ${c.rows} rows with another active set, max relative difference ${c.maxRelative.toExponential(2)} over ${c.active} latents; FVU of its reconstruction of raw rows ${(err / total).toFixed(4)}`
      )
      expect(run.info).toMatchObject({ architecture: 'topk', k: 8, normalize_activations: NORMALIZE[scaling], hook_name: UNNAMED_HOOK, activation: 'TopK' })
      // SAELens 6 took its current path (its pre-6.0 conversion would have set its own version).
      if (run.info.version.startsWith('6.')) expect(run.info.sae_lens_version).toBe(SAELENS_LAYOUT_VERSION)
      expect(c.otherSet).toBe(0)
      expect(c.maxRelative).toBeLessThan(1e-5)
      expect(err / total).toBeLessThan(1)
    })

    it(`${src}: the layout before this one (unit norm unfolded, no hook_layer): what this layout fixes`, async () => {
      const dir = join(t.dir, 'old-unit_norm')
      let run: ReturnType<typeof saelensEncode>
      try {
        run = saelensEncode(src, dir, acts.subarray(0, CHECK_ROWS * D), t.dir)
      } catch (err) {
        // SAELens 5.x cannot load it at all.
        console.log(`SAELens at ${src} on the old layout: ${(err as Error).message.split('\n').at(-2)}`)
        expect((err as Error).message).toMatch(/missing 2 required positional arguments: 'hook_layer' and 'hook_head_index'/)
        return
      }
      // SAELens 6.x loads it and encodes unscaled inputs.
      const c = compareCodes(await ours(dir, acts, CHECK_ROWS), run.latents, CHECK_ROWS, 128)
      console.log(`SAELens ${run.info.version} on the old unit-norm layout: ${c.otherSet} of ${c.rows} rows with another active set`)
      expect(c.otherSet).toBeGreaterThan(CHECK_ROWS / 2)
    })

    it(`${src}: an old-layout SAE after export-sae — SAELens' encode of raw rows equals ours`, async () => {
      const dir = join(t.dir, 'exported-old')
      const run = saelensEncode(src, dir, acts.subarray(0, CHECK_ROWS * D), t.dir)
      const c = compareCodes(await ours(join(t.dir, 'old-unit_norm'), acts, CHECK_ROWS), run.latents, CHECK_ROWS, 128)
      expect(run.info).toMatchObject({ model_name: 'tiny', hook_name: 'blocks.1.hook_resid_post' })
      expect(c.otherSet).toBe(0)
      expect(c.maxRelative).toBeLessThan(1e-5)
    })

    it.each(['gemma-scope', 'llm-jp-sae', 'saelens-jumprelu'])(`${src}: %s imported — SAELens' encode of raw rows equals ours`, async (name) => {
      const x = Float32Array.from(fx.inputs.flat())
      const run = saelensEncode(src, imported[name]!, x, t.dir)
      const c = compareCodes(await ours(imported[name]!, x, fx.rows), run.latents, fx.rows, run.info.d_sae)
      console.log(
        `SAELens ${run.info.version} on imported ${name} (${run.info.class}, ${run.info.normalize_activations}): ${c.otherSet} of ${c.rows} rows with another active set, max relative difference ${c.maxRelative.toExponential(2)}`
      )
      expect(c.active).toBeGreaterThan(0)
      expect(c.otherSet).toBe(0)
      expect(c.maxRelative).toBeLessThan(1e-5)
    })
  }
})

if (sources.length === 0) {
  describe("SAELens' own loader", () => {
    it.skip(SAELENS_SKIP_REASON, () => {})
  })
}

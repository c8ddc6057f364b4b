// `featuretrace geometry galaxy|lobes|crystals` end to end: planted SAEs and activations in a real project
// with a tiny real checkpoint, results written as JSON and stored in SQLite by the geometry job.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ActivationStoreWriter } from '../../src/core/io/activation-store'
import { writeSafetensors } from '../../src/core/io/safetensors'
import { Project } from '../../src/core/project'
import { Rng } from '../../src/core/random'
import { tinyModels } from '../fixtures/tiny-models'
import { CLI, REPO, tempDir } from '../helpers'

function ft(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' })
}

async function writeSae(dir: string, Wdec: Float32Array, n: number, d: number, k: number): Promise<void> {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ architecture: 'topk', d_in: d, d_sae: n, k, featuretrace: { input_scaling: 'none' } }))
  const Wenc = new Float32Array(d * n)
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) Wenc[j * n + i] = Wdec[i * d + j]!
  await writeSafetensors(join(dir, 'sae_weights.safetensors'), {
    W_enc: { dtype: 'F32', shape: [d, n], data: Wenc },
    W_dec: { dtype: 'F32', shape: [n, d], data: Wdec },
    b_enc: { dtype: 'F32', shape: [n], data: new Float32Array(n) },
    b_dec: { dtype: 'F32', shape: [d], data: new Float32Array(d) }
  })
}

describe('featuretrace geometry', () => {
  let t: ReturnType<typeof tempDir>
  let project: string
  const d = 64 // the tiny gpt_neox's d_model
  const groups = 4
  const perGroup = 12
  const n = groups * perGroup
  beforeAll(async () => {
    t = tempDir()
    project = join(t.dir, 'p')
    const add = ft('checkpoints', 'add', join(tinyModels(), 'models', 'gpt_neox'), '--project', project, '--step', '1000')
    expect(add.status, add.stderr).toBe(0)
    // A planted dictionary: unit directions, each lobe's near a shared centre.
    const rng = new Rng(31)
    const centres = Array.from({ length: groups }, () => Float64Array.from({ length: d }, () => rng.gaussian()))
    const Wdec = new Float32Array(n * d)
    for (let f = 0; f < n; f++) {
      let s = 0
      for (let j = 0; j < d; j++) s += (Wdec[f * d + j] = centres[Math.floor(f / perGroup)]![j]! + 0.8 * rng.gaussian()) ** 2
      for (let j = 0; j < d; j++) Wdec[f * d + j] = Wdec[f * d + j]! / Math.sqrt(s)
    }
    const sae = join(t.dir, 'sae')
    await writeSae(sae, Wdec, n, d, 2)
    // Documents of 512 tokens, each about one lobe: nearly every token is two of its features.
    const store = join(t.dir, 'acts')
    const w = ActivationStoreWriter.begin(store, {
      model: 'planted',
      modelType: 'gpt_neox',
      checkpointStep: 1000,
      layer: 1,
      finalNorm: false,
      d,
      dtype: 'f32',
      context: 64,
      bos: false,
      seed: 0,
      corpus: 'planted',
      maxTokens: null,
      dropShort: false,
      createdBy: 'test'
    })
    if ('complete' in w) throw new Error('unexpected complete store')
    const docs = 24
    for (let doc = 0; doc < docs; doc++) {
      const g = doc % groups
      for (let s = 0; s < 8; s++) {
        const acts = new Float32Array(64 * d)
        for (let r = 0; r < 64; r++) {
          for (let a = 0; a < 2; a++) {
            const f = rng.next() < 0.98 ? g * perGroup + rng.int(perGroup) : rng.int(n)
            for (let j = 0; j < d; j++) acts[r * d + j] = acts[r * d + j]! + (1 + rng.next()) * Wdec[f * d + j]!
          }
        }
        await w.appendSequence(
          acts,
          doc,
          Array.from({ length: 64 }, (_, i) => s * 64 + i),
          Array.from({ length: 64 }, () => 5)
        )
      }
    }
    await w.finish(
      Array.from({ length: docs }, (_, id) => ({ id, lang: id % groups < 2 ? 'en' : 'ja', source: `src${id % groups}` })),
      () => 'x'
    )
    expect(ft('import-activations', store, '--project', project, '--checkpoint', '1000').status).toBe(0)
    const p = Project.open(project)
    const c = p.checkpoints.list()[0]!
    p.saes.upsert({
      checkpointId: c.id,
      layer: 1,
      path: sae,
      preset: 'planted',
      d,
      n,
      k: 2,
      warmStarted: false,
      tokens: 0,
      steps: 0,
      fvu: null,
      explainedVariance: null,
      cosine: null,
      l0: null,
      deadFraction: null,
      backend: null
    })
    p.close()
  }, 120_000)
  afterAll(() => t.cleanup())

  it('galaxy --sae writes alpha, alpha_ci, eigenvalues and the clustering entropy with its interval', async () => {
    const rng = new Rng(2)
    const N = 4096
    const D = 128
    const W = new Float32Array(N * D)
    for (let i = 0; i < N; i++) for (let j = 0; j < D; j++) W[i * D + j] = rng.gaussian() * Math.pow(j + 1, -0.4)
    const sae = join(t.dir, 'powerlaw')
    await writeSae(sae, W, N, D, 8)
    const out = join(t.dir, 'galaxy.json')
    const r = ft('geometry', 'galaxy', '--sae', sae, '--out', out, '--sample', '1000', '--dims', '20', '--bootstraps', '5', '--backend', 'wasm')
    expect(r.status, r.stderr).toBe(0)
    const g = JSON.parse(readFileSync(out, 'utf8')) as {
      alpha: number
      alpha_ci: number[]
      eigenvalues: number[]
      clustering_entropy: number
      clustering_entropy_ci: number[]
      ranks: number[]
    }
    expect(Math.abs(g.alpha - 0.8)).toBeLessThan(0.05)
    expect(g.alpha_ci).toHaveLength(2)
    expect(g.alpha_ci[0]!).toBeLessThan(g.alpha)
    expect(g.eigenvalues).toHaveLength(D)
    expect(g.ranks).toEqual([11, 128])
    expect(Number.isFinite(g.clustering_entropy)).toBe(true)
    expect(g.clustering_entropy_ci).toHaveLength(2)
  })

  it('lobes --project --checkpoint --k --metric runs the job, finds the planted lobes and stores the result', () => {
    const out = join(t.dir, 'lobes.json')
    const r = ft(
      'geometry',
      'lobes',
      '--project',
      project,
      '--checkpoint',
      '1000',
      '--k',
      '2,4',
      '--metric',
      'phi',
      '--out',
      out,
      '--permutations',
      '20',
      '--backend',
      'wasm'
    )
    expect(r.status, r.stderr).toBe(0)
    const l = JSON.parse(readFileSync(out, 'utf8')) as {
      step: number
      metric: string
      blocks: number
      features: number[]
      clusterings: { k: number; labels: number[]; ami: { ami: number; z: number }; winners: { by_lang: { subsets: string[] } } }[]
    }
    expect(l.step).toBe(1000)
    expect(l.metric).toBe('phi')
    expect(l.blocks).toBe(48)
    expect(l.clusterings.map((c) => c.k)).toEqual([2, 4])
    const four = l.clusterings[1]!
    // Each planted lobe lands in one cluster.
    for (let g = 0; g < groups; g++) {
      const labels = new Set(l.features.flatMap((f, i) => (Math.floor(f / perGroup) === g ? [four.labels[i]] : [])))
      expect(labels.size).toBe(1)
    }
    expect(four.ami.ami).toBeGreaterThan(0.9)
    expect(four.winners.by_lang.subsets).toEqual(['en', 'ja'])
    const p = Project.open(project)
    const stored = p.geometry.list('lobes', 1)
    p.close()
    expect(stored).toHaveLength(1)
    expect(stored[0]!.summary).toMatchObject({ metric: 'phi', blocks: 48 })
  })

  it('galaxy --project runs over the series and stores α per checkpoint', () => {
    const r = ft('geometry', 'galaxy', '--project', project, '--layer', '1', '--sample', '40', '--dims', '10', '--bootstraps', '3', '--backend', 'wasm')
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/step 1000: \{"alpha":/)
  })

  it('crystals --project --checkpoint --pairs runs the tiny model on every word and reports quadruplets', () => {
    const out = join(t.dir, 'crystals.json')
    const pairs = join(REPO, 'resources/demo/pairs')
    const r = ft(
      'geometry',
      'crystals',
      '--project',
      project,
      '--checkpoint',
      '1000',
      '--layer',
      '2',
      '--pairs',
      join(pairs, 'country-capital.tsv'),
      '--pairs',
      join(pairs, 'singular-plural.tsv'),
      '--out',
      out,
      '--backend',
      'wasm'
    )
    expect(r.status, r.stderr).toBe(0)
    const c = JSON.parse(readFileSync(out, 'utf8')) as {
      layer: number
      pairs: number
      types: string[]
      d: number
      silhouette: unknown[]
      counts: { candidates: number }
    }
    expect(c.layer).toBe(2)
    expect(c.types).toEqual(['country-capital', 'singular-plural'])
    expect(c.pairs).toBe(24)
    expect(c.d).toBe(64)
    expect(c.silhouette).toHaveLength(1)
    expect(c.counts.candidates).toBe((2 * (12 * 11)) / 2)
  })

  it('says what is wrong when a pair list is malformed', () => {
    const bad = join(t.dir, 'bad.tsv')
    writeFileSync(bad, 'one\ttwo\tthree\tfour\n')
    const r = ft('geometry', 'crystals', '--project', project, '--checkpoint', '1000', '--layer', '2', '--pairs', bad, '--out', join(t.dir, 'x.json'))
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/bad\.tsv, line 1/)
  })
})

// The Geometry view on a planted series: galaxy over training, the rotatable PC cloud, the lobe map and
// heatmap, and a crystal before and after LDA.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ActivationStoreWriter } from '../../src/core/io/activation-store'
import { writeSafetensors } from '../../src/core/io/safetensors'
import { Project } from '../../src/core/project'
import { Rng } from '../../src/core/random'
import { tinyModels } from '../fixtures/tiny-models'
import { CLI, REPO } from '../helpers'
import { openPage, SCREENSHOTS, useWorkstation } from './browser'

// Screenshots go to test-results/e2e; the ones in docs/ are copies chosen by hand.
const DOCS = SCREENSHOTS
const d = 64
const lobes = 4
const perLobe = 64
const n = lobes * perLobe
const steps = [0, 100, 1000, 10000]

function ft(...args: string[]): void {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' })
  expect(r.status, `${args.join(' ')}\n${r.stderr}`).toBe(0)
}

/** The lobe of each feature: a fixed random assignment (feature order says nothing about lobes, as in a trained SAE). */
const lobeOf = new Rng(99).shuffle(Array.from({ length: n }, (_, f) => Math.floor(f / perLobe)))
const lobeMembers = Array.from({ length: lobes }, (_, g) => lobeOf.flatMap((l, f) => (l === g ? [f] : [])))

/** Decoder rows at training stage s: lobe centres grow in, on top of a spectrum that steepens. */
function decoder(s: number, rng: Rng, centres: Float64Array[]): Float32Array {
  const W = new Float32Array(n * d)
  const alpha = [0.05, 0.3, 0.6, 0.9][s]!
  const pull = [0, 0.6, 1.2, 1.8][s]!
  for (let f = 0; f < n; f++) {
    let norm = 0
    for (let j = 0; j < d; j++) norm += (W[f * d + j] = pull * centres[lobeOf[f]!]![j]! + rng.gaussian() * Math.pow(j + 1, -alpha / 2)) ** 2
    for (let j = 0; j < d; j++) W[f * d + j] = W[f * d + j]! / Math.sqrt(norm)
  }
  return W
}

describe('the Geometry view', () => {
  const w = useWorkstation({
    prefix: 'ft-e2e-geo-',
    timeout: 240_000,
    async prepare(dir) {
      const project = join(dir, 'project')
      const tiny = join(tinyModels(), 'models', 'gpt_neox')
      const rng = new Rng(7)
      const centres = Array.from({ length: lobes }, () => Float64Array.from({ length: d }, () => (rng.gaussian() / Math.sqrt(d)) * 3))
      const saeIds: { step: number; path: string }[] = []
      for (const [s, step] of steps.entries()) {
        // A runnable checkpoint per step (the tiny model's files), so crystals can run anywhere.
        const folder = join(dir, 'series', `step${step}`)
        mkdirSync(folder, { recursive: true })
        for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) copyFileSync(join(tiny, f), join(folder, f))
        ft('checkpoints', 'add', folder, '--project', project, '--step', String(step))
        const W = decoder(s, rng, centres)
        const sae = join(dir, `sae-${step}`)
        mkdirSync(sae)
        writeFileSync(join(sae, 'cfg.json'), JSON.stringify({ architecture: 'topk', d_in: d, d_sae: n, k: 2, featuretrace: { input_scaling: 'none' } }))
        const Wenc = new Float32Array(d * n)
        for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) Wenc[j * n + i] = W[i * d + j]!
        await writeSafetensors(join(sae, 'sae_weights.safetensors'), {
          W_enc: { dtype: 'F32', shape: [d, n], data: Wenc },
          W_dec: { dtype: 'F32', shape: [n, d], data: W },
          b_enc: { dtype: 'F32', shape: [n], data: new Float32Array(n) },
          b_dec: { dtype: 'F32', shape: [d], data: new Float32Array(d) }
        })
        saeIds.push({ step, path: sae })
        if (step !== 10000) continue
        // Activations at the last step: documents about one lobe each, tagged by language and source.
        const store = join(dir, 'acts')
        const writer = ActivationStoreWriter.begin(store, {
          model: 'planted',
          modelType: 'gpt_neox',
          checkpointStep: step,
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
          createdBy: 'e2e'
        })
        if ('complete' in writer) throw new Error('unexpected complete store')
        const docs = 32
        for (let doc = 0; doc < docs; doc++) {
          const g = doc % lobes
          for (let q = 0; q < 8; q++) {
            const acts = new Float32Array(64 * d)
            for (let r = 0; r < 64; r++) {
              for (let a = 0; a < 2; a++) {
                const f = rng.next() < 0.95 ? lobeMembers[g]![rng.int(perLobe)]! : rng.int(n)
                for (let j = 0; j < d; j++) acts[r * d + j] = acts[r * d + j]! + (1 + rng.next()) * W[f * d + j]!
              }
            }
            await writer.appendSequence(
              acts,
              doc,
              Array.from({ length: 64 }, (_, i) => q * 64 + i),
              Array.from({ length: 64 }, () => 5)
            )
          }
        }
        const langs = ['en', 'ja', 'de', 'fr']
        await writer.finish(
          Array.from({ length: docs }, (_, id) => ({ id, lang: langs[(id + (id % 7 === 0 ? 1 : 0)) % lobes]!, source: id % 2 ? 'wiki' : 'web' })),
          () => 'x'
        )
        ft('import-activations', store, '--project', project, '--checkpoint', String(step))
      }
      const p = Project.open(project)
      for (const c of p.checkpoints.list()) {
        const sae = saeIds.find((s) => s.step === c.step)!
        p.saes.upsert({
          checkpointId: c.id,
          layer: 1,
          path: sae.path,
          preset: 'planted',
          d,
          n,
          k: 2,
          warmStarted: true,
          tokens: 0,
          steps: 0,
          fvu: null,
          explainedVariance: null,
          cosine: null,
          l0: null,
          deadFraction: null,
          backend: null
        })
      }
      p.close()
      ft('geometry', 'galaxy', '--project', project, '--layer', '1', '--sample', '256', '--dims', '20', '--bootstraps', '10', '--backend', 'wasm')
      ft(
        'geometry',
        'lobes',
        '--project',
        project,
        '--layer',
        '1',
        '--checkpoint',
        '10000',
        '--k',
        '2,4',
        '--metric',
        'phi',
        '--permutations',
        '50',
        '--backend',
        'wasm'
      )
      const pairs = join(REPO, 'resources/demo/pairs')
      ft(
        'geometry',
        'crystals',
        '--project',
        project,
        '--layer',
        '1',
        '--checkpoint',
        '10000',
        '--pairs',
        join(pairs, 'country-capital.tsv'),
        '--pairs',
        join(pairs, 'singular-plural.tsv'),
        '--pairs',
        join(pairs, 'en-ja.tsv'),
        '--backend',
        'wasm'
      )
      return project
    }
  })

  it('charts α and clustering entropy over training, turns the PC cloud, maps lobes and draws a crystal', async () => {
    const { page, errors } = await openPage(w.browser, 1500)
    await page.goto(`${w.served.url}#/geometry?layer=1`)
    await page.getByTestId('galaxy-over-training').locator('canvas').first().waitFor()
    await expect.poll(() => page.getByTestId('pc-cloud').locator('canvas').count()).toBeGreaterThan(0)
    mkdirSync(DOCS, { recursive: true })
    const galaxyPanel = page.locator('section.panel', { has: page.getByTestId('galaxy-over-training') })
    await galaxyPanel.screenshot({ path: join(DOCS, 'screenshot-geometry-galaxy.png') })
    // Dragging the cloud rotates it: the picture changes.
    const cloud = page.getByTestId('pc-cloud')
    const before = await cloud.screenshot()
    const box = (await cloud.boundingBox())!
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2)
    await page.mouse.down()
    await page.mouse.move(box.x + box.width / 2 + 120, box.y + box.height / 2 + 40, { steps: 6 })
    await page.mouse.up()
    expect(Buffer.compare(before, await cloud.screenshot())).not.toBe(0)

    await expect.poll(() => page.getByTestId('lobes-summary').textContent()).toMatch(/AMI with the geometry clustering/)
    await page.getByTestId('lobe-map').locator('canvas').first().waitFor()
    const lobePanel = page.locator('section.panel', { has: page.getByTestId('lobe-map') })
    await lobePanel.screenshot({ path: join(DOCS, 'screenshot-geometry-lobes.png') })

    await page.getByTestId('quad-0').click()
    const crystalPanel = page.locator('section.panel', { has: page.getByTestId('quad-0') })
    await crystalPanel.screenshot({ path: join(DOCS, 'screenshot-geometry-crystal.png') })
    expect(errors).toEqual([])
  })
})

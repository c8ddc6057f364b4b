// Checkpoints as tools write them: weights saved from the base class (no task-model prefix, no head) and
// series kept in the Hugging Face hub cache (snapshots of symlinks into blobs/, step-named links to snapshots).
import * as tf from '@tensorflow/tfjs-core'
import { createHash } from 'node:crypto'
import { cpSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { discoverCheckpoints } from '../../src/core/checkpoints/discover'
import { SafetensorsFile, writeSafetensors, type Dtype } from '../../src/core/io/safetensors'
import { loadModel } from '../../src/core/lm/model'
import { initBackend } from '../../src/core/tf/backend'
import { tinyModels } from '../fixtures/tiny-models'
import { tempDir } from '../helpers'

let root: string
beforeAll(async () => {
  root = tinyModels()
  await initBackend('cpu')
})

/** What `<BaseModel>.save_pretrained` writes: the task model's names without its prefix, and no head. */
async function saveAsBaseClass(from: string, to: string, prefix: string, head: string): Promise<void> {
  cpSync(from, to, { recursive: true })
  const f = await SafetensorsFile.open(join(from, 'model.safetensors'))
  const tensors: Record<string, { dtype: Dtype; shape: number[]; data: Uint8Array }> = {}
  for (const [name, info] of f.header.tensors) {
    if (name.startsWith(head)) continue
    expect(name.startsWith(prefix), name).toBe(true)
    tensors[name.slice(prefix.length)] = { dtype: info.dtype as Dtype, shape: info.shape, data: await f.readBytes(name) }
  }
  await f.close()
  await writeSafetensors(join(to, 'model.safetensors'), tensors)
}

describe('weights saved from the base class', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it.each([
    ['gpt_neox', 'gpt_neox.', 'embed_out.'],
    ['llama-gqa-tied', 'model.', 'lm_head.']
  ])('%s without its "%s" prefix and head gives the PyTorch reference at every layer', async (name, prefix, head) => {
    t = tempDir()
    const dir = join(t.dir, name)
    await saveAsBaseClass(join(root, 'models', name), dir, prefix, head)
    const ref = await SafetensorsFile.open(join(root, 'references', `${name}.safetensors`))
    const model = await loadModel(dir)
    const ids = tf.tensor2d(await ref.readInt32('input_ids'), ref.info('input_ids').shape as [number, number], 'int32')
    const layers = Array.from({ length: model.layers + 1 }, (_, i) => i)
    const states = model.hiddenStates(ids, layers, { finalNorm: true })
    for (const L of layers) {
      const want = await ref.readFloat32(L === model.layers ? 'final_norm' : `hidden.${L}`)
      const got = (await states[L]!.data()) as Float32Array
      let err = 0
      let scale = 0
      for (let i = 0; i < want.length; i++) {
        err = Math.max(err, Math.abs(got[i]! - want[i]!))
        scale = Math.max(scale, Math.abs(want[i]!))
      }
      expect(err / scale, `layer ${L}`).toBeLessThan(1e-4)
    }
    tf.dispose([...states, ids])
    model.dispose()
    await ref.close()
  })

  it('names what the weights really are when they belong to another architecture or fewer layers', async () => {
    t = tempDir()
    const dir = join(t.dir, 'mixed')
    cpSync(join(root, 'models', 'llama-gqa-tied'), dir, { recursive: true })
    cpSync(join(root, 'models', 'gpt_neox', 'model.safetensors'), join(dir, 'model.safetensors'))
    await expect(loadModel(dir)).rejects.toThrow(
      /mixed has no weight "model\.embed_tokens\.weight": its tensor names are those of a gpt_neox model \(e\.g\. "gpt_neox\.embed_in\.weight"\) but .*mixed\/config\.json says llama/
    )
    const deep = join(t.dir, 'deep')
    cpSync(join(root, 'models', 'gpt_neox'), deep, { recursive: true })
    const cfg = JSON.parse(readFileSync(join(deep, 'config.json'), 'utf8')) as Record<string, unknown>
    writeFileSync(join(deep, 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 5 }))
    await expect(loadModel(deep)).rejects.toThrow(
      /deep has no weights for layer 3 \("gpt_neox\.layers\.3\.input_layernorm\.weight"\): the weights hold 3 layers/
    )
  })
})

/** A hub cache as huggingface_hub writes it: blobs named by hash, snapshot files linking to them, refs naming revisions. */
function hubCache(dir: string, revisions: Record<string, string>): string {
  const repo = join(dir, 'hub', 'models--org--tiny')
  mkdirSync(join(repo, 'blobs'), { recursive: true })
  mkdirSync(join(repo, 'refs'), { recursive: true })
  for (const [revision, model] of Object.entries(revisions)) {
    const sha = createHash('sha1').update(revision).digest('hex')
    const snap = join(repo, 'snapshots', sha)
    mkdirSync(snap, { recursive: true })
    for (const file of readdirSync(join(root, 'models', model))) {
      const blob = join(
        repo,
        'blobs',
        createHash('sha256')
          .update(readFileSync(join(root, 'models', model, file)))
          .digest('hex')
      )
      cpSync(join(root, 'models', model, file), blob)
      symlinkSync(relative(snap, blob), join(snap, file))
    }
    if (revision !== '-') writeFileSync(join(repo, 'refs', revision), sha)
  }
  return repo
}

describe('series in the Hugging Face hub cache', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('registers a series folder of stepN links to snapshots whose files link into blobs (case14)', async () => {
    t = tempDir()
    const repo = hubCache(t.dir, { step0: 'llama-gqa-tied', step100: 'llama-untied-bf16-sharded' })
    const links = join(t.dir, 'series-links')
    mkdirSync(links)
    for (const [i, step] of [0, 100].entries())
      symlinkSync(join(repo, 'snapshots', readdirSync(join(repo, 'snapshots')).sort()[i]!), join(links, `step${step}`))
    symlinkSync(join(t.dir, 'gone'), join(links, 'step200'))
    const r = discoverCheckpoints(links)
    expect(r.found.map((c) => [c.step, c.name, c.config.modelType])).toEqual(
      expect.arrayContaining([
        [0, 'step0', 'llama'],
        [100, 'step100', 'llama']
      ])
    )
    expect(r.found.every((c) => (c.weightsBytes ?? 0) > 1000)).toBe(true)
    expect(r.skipped).toEqual([{ path: join(links, 'step200'), reason: `a link to ${join(t.dir, 'gone')}, which does not exist` }])
    // One linked snapshot on its own is one checkpoint; its model loads through the blob links.
    expect(discoverCheckpoints(join(links, 'step100')).found.map((c) => c.step)).toEqual([100])
    const model = await loadModel(join(links, 'step100'))
    model.dispose()
  })

  it('reads the steps of a cache folder from its refs, and asks for a step where none names one', () => {
    t = tempDir()
    const repo = hubCache(t.dir, { step1000: 'gpt_neox', step20: 'gpt_neox', main: 'gpt2', '-': 'llama-gqa-tied' })
    const r = discoverCheckpoints(repo)
    expect(r.found.map((c) => [c.step, c.name])).toEqual([
      [20, 'step20'],
      [1000, 'step1000']
    ])
    expect(r.found[0]!.path).toMatch(/models--org--tiny\/snapshots\/[0-9a-f]{40}$/)
    const reasons = r.skipped.map((s) => s.reason).sort()
    expect(reasons).toEqual([
      expect.stringMatching(/^its revision "main" names no training step: register it with a step \(checkpoints add .*snapshots\/[0-9a-f]+ --step N\)$/),
      expect.stringMatching(/^no ref in .*refs names this snapshot, so its step is unknown/)
    ])
    // The snapshots/ folder itself reads the same refs.
    expect(discoverCheckpoints(join(repo, 'snapshots')).found.map((c) => c.step)).toEqual([20, 1000])
    // The hub root and the blob store are explained, not mistaken for an empty series.
    expect(() => discoverCheckpoints(join(t.dir, 'hub'))).toThrow(/hub is a Hugging Face hub cache: give one model's folder \(models--org--tiny\)/)
    expect(() => discoverCheckpoints(join(repo, 'blobs'))).toThrow(/blobs is the blob store of a Hugging Face cache: give .*models--org--tiny/)
  })

  it('says what a folder holds when it is not a checkpoint: weights without config, pickles, nothing', () => {
    t = tempDir()
    const w = join(t.dir, 'weights-only')
    cpSync(join(root, 'models', 'gpt2'), w, { recursive: true })
    rmSync(join(w, 'config.json'))
    expect(() => discoverCheckpoints(w)).toThrow(/weights-only holds weights but no config\.json/)
    const pt = join(t.dir, 'pickles')
    mkdirSync(pt)
    writeFileSync(join(pt, 'pytorch_model.bin'), 'x')
    expect(() => discoverCheckpoints(pt)).toThrow(
      /pickles holds PyTorch pickle weights \(pytorch_model\.bin\) and no config\.json\. FeatureTrace reads safetensors only/
    )
    const empty = join(t.dir, 'empty')
    mkdirSync(empty)
    expect(() => discoverCheckpoints(empty)).toThrow(/empty holds no checkpoint folders .* and is empty/)
    renameSync(w, join(empty, 'notes'))
    expect(discoverCheckpoints(empty).skipped[0]!.reason).toMatch(/no training step in the folder name/)
  })
})

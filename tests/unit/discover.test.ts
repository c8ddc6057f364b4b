import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { discoverCheckpoints, parseStep, readCheckpointConfig, weightFiles } from '../../src/core/checkpoints/discover'
import { tempDir } from '../helpers'

describe('parseStep', () => {
  it.each([
    ['step1000', 1000],
    ['step0', 0],
    ['iter_0001000', 1000],
    ['checkpoint-1000', 1000],
    ['c1000', 1000],
    ['global_step250', 250],
    ['2048', 2048],
    ['STEP42', 42]
  ])('%s → %i', (name, step) => expect(parseStep(name)).toBe(step))

  it.each(['final', 'step', 'stepX', 'c', 'checkpoint', 'runs-1000-old', 'step1e3'])('%s has no step', (name) => expect(parseStep(name)).toBeNull())
})

describe('checkpoint folders', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  function folder(name: string, config: unknown): string {
    const dir = join(t.dir, name)
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config))
    return dir
  }

  it('reads architecture and sizes from each naming of config keys', () => {
    t = tempDir()
    const neox = readCheckpointConfig(
      folder('a', { model_type: 'gpt_neox', hidden_size: 512, num_hidden_layers: 6, num_attention_heads: 8, vocab_size: 50304 })
    )
    expect(neox).toMatchObject({ modelType: 'gpt_neox', supported: true, dModel: 512, layers: 6, heads: 8, vocabSize: 50304 })
    const gpt2 = readCheckpointConfig(folder('b', { model_type: 'gpt2', n_embd: 768, n_layer: 12, n_head: 12 }))
    expect(gpt2).toMatchObject({ modelType: 'gpt2', dModel: 768, layers: 12, heads: 12, vocabSize: null })
    const other = readCheckpointConfig(folder('c', { model_type: 'mamba', hidden_size: 256, num_hidden_layers: 4 }))
    expect(other.supported).toBe(false)
  })

  it('names the file and the problem for bad configs', () => {
    t = tempDir()
    expect(() => readCheckpointConfig(join(t.dir, 'missing'))).toThrow(/Missing .*missing\/config\.json/)
    expect(() => readCheckpointConfig(folder('bad', '{nope'))).toThrow(/bad\/config\.json is not valid JSON/)
    expect(() => readCheckpointConfig(folder('arr', '[1]'))).toThrow(/does not hold a JSON object/)
    expect(() => readCheckpointConfig(folder('nomt', { hidden_size: 3 }))).toThrow(/no "model_type"/)
    expect(() => readCheckpointConfig(folder('nosize', { model_type: 'llama', hidden_size: -1, num_hidden_layers: 2 }))).toThrow(/lacks a positive hidden size/)
  })

  it('finds sharded weights through the index and refuses shards outside the folder', () => {
    t = tempDir()
    const dir = folder('sharded', { model_type: 'llama', hidden_size: 8, num_hidden_layers: 1 })
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { a: 'model-00002.safetensors', b: 'model-00001.safetensors', c: 'model-00001.safetensors' } })
    )
    expect(weightFiles(dir).map((f) => f.slice(dir.length + 1))).toEqual(['model-00001.safetensors', 'model-00002.safetensors'])
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: '../../etc/passwd' } }))
    expect(() => weightFiles(dir)).toThrow(/names a shard outside its folder/)
  })

  it('discovers a series sorted by step and explains what it skipped', () => {
    t = tempDir()
    const cfg = { model_type: 'gpt_neox', hidden_size: 16, num_hidden_layers: 2 }
    folder('step1000', cfg)
    folder('iter_0000010', cfg)
    folder('c5', cfg)
    folder('final', cfg)
    folder('step20', '{broken')
    mkdirSync(join(t.dir, '.cache'))
    const r = discoverCheckpoints(t.dir)
    expect(r.found.map((f) => f.step)).toEqual([5, 10, 1000])
    expect(r.skipped.map((s) => s.path.split('/').pop())).toEqual(expect.arrayContaining(['final', 'step20']))
    expect(r.skipped.find((s) => s.path.endsWith('step20'))!.reason).toMatch(/not valid JSON/)
  })

  it('treats a folder with config.json as one checkpoint, with an explicit step when its name has none', () => {
    t = tempDir()
    const dir = folder('final', { model_type: 'llama', hidden_size: 16, num_hidden_layers: 2 })
    expect(() => discoverCheckpoints(dir)).toThrow(/Cannot tell the training step/)
    expect(discoverCheckpoints(dir, 988240).found[0]!.step).toBe(988240)
    expect(() => discoverCheckpoints(join(t.dir, 'nope'))).toThrow(/is not a folder/)
  })
})

import * as tf from '@tensorflow/tfjs-core'
import { cpSync, existsSync, openSync, closeSync, ftruncateSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ActivationStore } from '../../src/core/io/activation-store'
import { SafetensorsFile, writeSafetensors } from '../../src/core/io/safetensors'
import { harvest, type HarvestOptions } from '../../src/core/lm/harvest'
import { loadModel } from '../../src/core/lm/model'
import { loadTokenizer } from '../../src/core/lm/tokenizer'
import { initBackend } from '../../src/core/tf/backend'
import { rewriteWeights } from '../fixtures/edit-checkpoint'
import { tinyModels } from '../fixtures/tiny-models'
import { tempDir } from '../helpers'

let root: string
const never = { signal: new AbortController().signal, progress: () => {} }

const DOCS = [
  { text: 'The cat sat on the mat. The dog sat on the log. Language models learn features during training.', lang: 'en' },
  { text: '東京は日本の首都です。猫はマットの上に座った。言語モデルは訓練の間に特徴を学習します。', lang: 'ja' },
  { text: 'Tokyo is the capital of Japan. 日本語と英語の両方を話すモデル。The model speaks English and Japanese.' },
  { text: 'In 2024, researchers trained 154 checkpoints of the same model, and sparse autoencoders found them.', lang: 'en' }
]

function corpus(dir: string): string {
  const file = join(dir, 'corpus.jsonl')
  writeFileSync(file, DOCS.map((d) => JSON.stringify(d)).join('\n') + '\n')
  return file
}

beforeAll(async () => {
  root = tinyModels()
  await initBackend('cpu')
})

describe('harvest', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it.each(['llama-gqa-tied', 'gpt_neox'])('%s: every token of every sequence, BOS dropped, rows traceable', async (name) => {
    t = tempDir()
    const model = join(root, 'models', name)
    const out = join(t.dir, 'store')
    const result = await harvest({ model, corpus: corpus(t.dir), layers: [2], out: () => out, context: 16, dtype: 'f32', seed: 3 }, never)
    const store = await ActivationStore.open(out)
    const tok = loadTokenizer(model)
    const expectedTokens = DOCS.reduce((s, d) => s + tok.encode(d.text).length, 0)
    expect(store.rows).toBe(expectedTokens)
    expect(result.stores[0]!.rows).toBe(expectedTokens)
    expect(store.manifest).toMatchObject({ layer: 2, d: 64, dtype: 'f32', context: 16, bos: name.startsWith('llama'), seed: 3 })
    const { acts, doc, position, token } = await store.readShard(0)
    const docs = store.documents()
    // Row 0 traced back to its document: token ids and texts agree with the tokenizer.
    const d0 = doc[0]!
    const ids = tok.encode(DOCS[d0]!.text)
    expect(token[0]).toBe(ids[position[0]!])
    expect(store.tokenText(token[0]!)).toBe(tok.tokenText(token[0]!))
    expect(docs.find((d) => d.id === d0)!.lang).toBe(DOCS[d0]!.lang ?? null)
    // The stored rows of one sequence equal a direct forward pass (with the BOS in front where the model has one).
    const n = [...position].findIndex((p, i) => i > 0 && (doc[i] !== d0 || p !== position[i - 1]! + 1))
    const seqLen = n < 0 ? position.length : n
    const start = position[0]!
    const seqIds = ids.slice(start, start + seqLen)
    const lm = await loadModel(model, 2)
    const input = tok.bos === null ? seqIds : [tok.bos, ...seqIds]
    const idT = tf.tensor2d(input, [1, input.length], 'int32')
    const [h] = lm.hiddenStates(idT, [2])
    const direct = (await h!.data()) as Float32Array
    const off = tok.bos === null ? 0 : 64
    for (let i = 0; i < seqLen * 64; i++) expect(acts[i]).toBeCloseTo(direct[off + i]!, 5)
    tf.dispose([idT, h!])
    lm.dispose()
  })

  it('stores f16 within half precision of f32, and several layers in one pass', async () => {
    t = tempDir()
    const model = join(root, 'models', 'gpt2')
    const file = corpus(t.dir)
    await harvest({ model, corpus: file, layers: [1], out: () => join(t.dir, 'f32'), dtype: 'f32' }, never)
    await harvest({ model, corpus: file, layers: [1, 3], out: (L) => join(t.dir, `f16-${L}`), dtype: 'f16' }, never)
    const a = await (await ActivationStore.open(join(t.dir, 'f32'))).readShard(0)
    const b = await (await ActivationStore.open(join(t.dir, 'f16-1'))).readShard(0)
    expect(b.acts.length).toBe(a.acts.length)
    for (let i = 0; i < a.acts.length; i += 7) expect(Math.abs(b.acts[i]! - a.acts[i]!)).toBeLessThanOrEqual(Math.abs(a.acts[i]!) * 1e-3 + 1e-4)
    expect((await ActivationStore.open(join(t.dir, 'f16-3'))).manifest.layer).toBe(3)
  })

  it('an interrupted harvest never looks complete, and resuming ends where an uninterrupted run ends', async () => {
    t = tempDir()
    const file = corpus(t.dir)
    const opts = (out: string): HarvestOptions => ({
      model: join(root, 'models', 'gpt_neox'),
      corpus: file,
      layers: [1],
      out: () => out,
      context: 8,
      dtype: 'f32',
      seed: 9,
      shardRows: 20,
      batchSequences: 2
    })
    await harvest(opts(join(t.dir, 'whole')), never)
    const controller = new AbortController()
    let calls = 0
    await expect(harvest(opts(join(t.dir, 'resumed')), { signal: controller.signal, progress: () => ++calls === 4 && controller.abort() })).rejects.toThrow(
      /cancelled/
    )
    expect(existsSync(join(t.dir, 'resumed', 'manifest.json'))).toBe(false)
    await expect(ActivationStore.open(join(t.dir, 'resumed'))).rejects.toThrow(/not a complete activation store.*interrupted: run it again to resume/)
    const progress = JSON.parse(readFileSync(join(t.dir, 'resumed.partial', 'progress.json'), 'utf8')) as { sequencesDone: number }
    expect(progress.sequencesDone).toBeGreaterThan(0)
    await harvest(opts(join(t.dir, 'resumed')), never)
    const whole = await ActivationStore.open(join(t.dir, 'whole'))
    const resumed = await ActivationStore.open(join(t.dir, 'resumed'))
    expect(resumed.rows).toBe(whole.rows)
    // Shard boundaries differ (the interruption closed a shard early); the rows, in order, do not.
    const all = async (s: ActivationStore): Promise<{ acts: number[]; token: number[]; position: number[] }> => {
      const out = { acts: [] as number[], token: [] as number[], position: [] as number[] }
      for (let i = 0; i < s.manifest.shards.length; i++) {
        const sh = await s.readShard(i)
        out.acts.push(...sh.acts)
        out.token.push(...sh.token)
        out.position.push(...sh.position)
      }
      return out
    }
    expect(await all(resumed)).toEqual(await all(whole))
    // Running again is a no-op on a complete store.
    const again = await harvest(opts(join(t.dir, 'resumed')), never)
    expect(again.tokensPerSecond).toBeNull()
  })

  it("refuses values beyond float16's range, saying how many, where, the largest |x| and --dtype f32; leaves no store (case07)", async () => {
    t = tempDir()
    // The embeddings of a copy of the tiny gpt_neox scaled by 1e6: layer 0 is then far beyond ±65504 for most values.
    const model = join(t.dir, 'big', 'step100')
    cpSync(join(root, 'models', 'gpt_neox'), model, { recursive: true })
    const f = await SafetensorsFile.open(join(model, 'model.safetensors'))
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {}
    for (const [name, info] of f.header.tensors) {
      const data = await f.readFloat32(name)
      if (name === 'gpt_neox.embed_in.weight') for (let i = 0; i < data.length; i++) data[i] = data[i]! * 1e6
      tensors[name] = { dtype: 'F32', shape: info.shape, data }
    }
    await f.close()
    await writeSafetensors(join(model, 'model.safetensors'), tensors)
    const file = corpus(t.dir)
    const out = join(t.dir, 'f16')
    const err = await harvest({ model, corpus: file, layers: [0, 1], out: (L) => `${out}-${L}`, context: 8, checkpointStep: 100 }, never).then(
      () => null,
      (e: Error) => e
    )
    expect(err?.message).toMatch(
      /^Harvest stopped at layer 0 of checkpoint step 100 \(.*big\/step100\), tokens 1–(\d+) of \d+: [\d,]+ of the [\d,]+ values there exceed float16's range \(±65,504; the largest \|x\| is [\d.e+]+\) and would be stored as Inf\. Nothing was stored\. Harvest again with --dtype f32/
    )
    for (const L of [0, 1]) {
      expect(existsSync(`${out}-${L}`)).toBe(false)
      expect(existsSync(`${out}-${L}.partial`)).toBe(false)
    }
    // The same rows in float32: the refused batch's count and maximum, recounted from the stored rows.
    await harvest({ model, corpus: file, layers: [0], out: () => join(t.dir, 'f32'), context: 8, dtype: 'f32' }, never)
    const { acts } = await (await ActivationStore.open(join(t.dir, 'f32'))).readShard(0)
    const rows = Number(/tokens 1–(\d+)/.exec(err!.message)![1])
    const first = acts.subarray(0, rows * 64)
    const over = first.filter((x) => Math.abs(x) >= 65520).length
    const maxAbs = first.reduce((m, x) => Math.max(m, Math.abs(x)), 0)
    expect(over).toBeGreaterThan(0)
    expect(err!.message).toContain(`${over.toLocaleString('en')} of the ${first.length.toLocaleString('en')} values there exceed`)
    expect(err!.message).toContain(`the largest |x| is ${maxAbs.toPrecision(4)}`)
  })

  it('streams shuffled batches that cover every row once', async () => {
    t = tempDir()
    await harvest(
      { model: join(root, 'models', 'gpt_neox'), corpus: corpus(t.dir), layers: [0], out: () => join(t.dir, 's'), dtype: 'f32', shardRows: 16, context: 8 },
      never
    )
    const store = await ActivationStore.open(join(t.dir, 's'))
    expect(store.manifest.shards.length).toBeGreaterThan(2)
    const seen: string[] = []
    for await (const batch of store.batches({ batchSize: 10, seed: 1 })) {
      for (let r = 0; r < batch.length / store.d; r++) seen.push(Array.from(batch.subarray(r * store.d, r * store.d + 4)).join(','))
    }
    const inOrder: string[] = []
    for (let i = 0; i < store.manifest.shards.length; i++) {
      const { acts } = await store.readShard(i)
      for (let r = 0; r < acts.length / store.d; r++) inOrder.push(Array.from(acts.subarray(r * store.d, r * store.d + 4)).join(','))
    }
    expect(seen.length).toBe(store.rows)
    expect([...seen].sort()).toEqual([...inOrder].sort())
    expect(seen).not.toEqual(inOrder)
  })
})

describe('harvest: which special tokens go around the text, as transformers decides, said in every run', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('case11, both directions: tokenizer_config.json (LlamaTokenizerFast add_bos_token) decides over tokenizer.json', async () => {
    t = tempDir()
    const shipped = join(root, 'models', 'llama-gqa-tied')
    const variant = (name: string, edit: (tokenizerJson: Record<string, unknown>) => void, add: boolean): string => {
      const dir = join(t.dir, name)
      cpSync(shipped, dir, { recursive: true })
      const tj = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as Record<string, unknown>
      edit(tj)
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj))
      writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'LlamaTokenizerFast', add_bos_token: add }))
      return dir
    }
    const a = variant('a', (tj) => (tj.post_processor = null), true)
    const b = variant('b', () => {}, false)
    const file = corpus(t.dir)
    const logged: string[] = []
    const run = (model: string, out: string): ReturnType<typeof harvest> =>
      harvest({ model, corpus: file, layers: [1], out: () => join(t.dir, out), context: 16, dtype: 'f32', log: (l) => logged.push(l) }, never)
    const [ra, rb, rc] = [await run(a, 'a-store'), await run(b, 'b-store'), await run(shipped, 'control')]
    expect(ra.specialTokens).toMatch(/^BOS <s> \(id 1\).*a\/tokenizer_config\.json names LlamaTokenizerFast.*add_bos_token true/)
    expect(rb.specialTokens).toMatch(/^no BOS.*b\/tokenizer_config\.json names LlamaTokenizerFast.*add_bos_token false/)
    expect(rc.specialTokens).toMatch(/^BOS <s> \(id 1\).*no .*tokenizer_config\.json, so .*model_type "llama" selects LlamaTokenizerFast/)
    expect(logged).toEqual([ra, rb, rc].map((r) => `tokens: ${r.specialTokens}`))
    const [sa, sb, sc] = await Promise.all(['a-store', 'b-store', 'control'].map((d) => ActivationStore.open(join(t.dir, d))))
    expect([sa!.manifest.bos, sb!.manifest.bos, sc!.manifest.bos]).toEqual([true, false, true])
    // Same text, same weights: a equals the control exactly; b differs only by the missing BOS.
    const [xa, xb, xc] = await Promise.all([sa!, sb!, sc!].map((s) => s.readShard(0)))
    expect(Array.from(xa!.acts)).toEqual(Array.from(xc!.acts))
    expect(xb!.acts.length).toBe(xc!.acts.length)
    expect(Array.from(xb!.acts)).not.toEqual(Array.from(xc!.acts))
  })
})

describe('harvest refuses bad input with the file and the problem, leaving no store', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  async function refuses(model: string, message: RegExp, extra: Partial<HarvestOptions> = {}, corpusFile?: string): Promise<void> {
    const out = join(t.dir, 'out')
    await expect(harvest({ model, corpus: corpusFile ?? corpus(t.dir), layers: [1], out: () => out, ...extra }, never)).rejects.toThrow(message)
    expect(existsSync(join(out, 'manifest.json'))).toBe(false)
    expect(existsSync(`${out}.partial`)).toBe(false)
  }

  function copyModel(name: string): string {
    const dir = join(t.dir, name)
    cpSync(join(root, 'models', name), dir, { recursive: true })
    return dir
  }

  function editConfig(dir: string, change: (c: Record<string, unknown>) => void): void {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>
    change(c)
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c))
  }

  it('missing config.json', async () => {
    t = tempDir()
    await refuses(join(t.dir, 'nothing-here'), /Missing .*nothing-here\/config\.json/)
  })

  it('missing weights', async () => {
    t = tempDir()
    const dir = copyModel('gpt_neox')
    writeFileSync(join(dir, 'model.safetensors'), '')
    const { rmSync } = await import('node:fs')
    rmSync(join(dir, 'model.safetensors'))
    await refuses(dir, /No model\.safetensors or model\.safetensors\.index\.json in .*gpt_neox/)
  })

  it('a shard the index names is missing (case18)', async () => {
    t = tempDir()
    const dir = copyModel('llama-untied-bf16-sharded')
    const { rmSync } = await import('node:fs')
    rmSync(join(dir, 'model-00002-of-00002.safetensors'))
    await refuses(dir, /Missing weight shard .*model-00002-of-00002\.safetensors named by .*model\.safetensors\.index\.json \(an interrupted download\?\)/)
  })

  it('truncated safetensors', async () => {
    t = tempDir()
    const dir = copyModel('gpt_neox')
    const fd = openSync(join(dir, 'model.safetensors'), 'r+')
    ftruncateSync(fd, 40_000)
    closeSync(fd)
    await refuses(dir, /gpt_neox\/model\.safetensors is not a valid safetensors file: tensor .* ends at byte \d+ but the file has 40000 bytes \(truncated/)
  })

  it('a header that claims more bytes than the file has', async () => {
    t = tempDir()
    const dir = copyModel('gpt_neox')
    const file = join(dir, 'model.safetensors')
    const buf = readFileSync(file)
    buf.writeBigUInt64LE(BigInt(buf.length * 2), 0)
    writeFileSync(file, buf)
    await refuses(dir, /model\.safetensors is not a valid safetensors file: its header claims \d+ bytes but the file has only/)
  })

  it('wrong dtype for a weight', async () => {
    t = tempDir()
    const dir = copyModel('gpt2')
    await rewriteWeights(dir, (w) => (w['transformer.wte.weight']!.dtype = 'I32'))
    await refuses(dir, /model\.safetensors: tensor "transformer\.wte\.weight" has dtype I32; model weights must be F32, F16 or BF16/)
  })

  it('shape mismatch between config and weights', async () => {
    t = tempDir()
    const dir = copyModel('llama-gqa-tied')
    editConfig(dir, (c) => (c.hidden_size = 96))
    await refuses(dir, /model\.safetensors: tensor "model\.embed_tokens\.weight" has shape \[\d+, 64\] but .*config\.json implies \[\d+, 96\]/)
  })

  it('unsupported model_type', async () => {
    t = tempDir()
    const dir = copyModel('gpt_neox')
    editConfig(dir, (c) => (c.model_type = 'mamba'))
    await refuses(dir, /config\.json: model_type "mamba" is not supported .*harvest_activations\.py/)
  })

  it('a layer index out of range', async () => {
    t = tempDir()
    await refuses(join(root, 'models', 'gpt_neox'), /Layer 7 is out of range for .*gpt_neox: it has 3 layers, so layers 0–3 exist/, { layers: [7] })
  })

  it('case23: added tokens beyond the embedding, used in the corpus: the ids, both files and the fix, before any compute', async () => {
    t = tempDir()
    const dir = copyModel('llama-gqa-tied')
    const rows = (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { vocab_size: number }).vocab_size
    const tj = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as { added_tokens: Record<string, unknown>[] }
    for (const [i, content] of ['<|im_start|>', '<|im_end|>'].entries()) {
      tj.added_tokens.push({ id: rows + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })
    }
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj))
    const chat = join(t.dir, 'chat.jsonl')
    writeFileSync(chat, JSON.stringify({ text: '<|im_start|>user\nWhat rights does everyone have?<|im_end|>' }) + '\n')
    const message = new RegExp(
      `llama-gqa-tied/tokenizer\\.json gives token ids ${rows} "<\\|im_start\\|>", ${rows + 1} "<\\|im_end\\|>", but the embedding "model\\.embed_tokens\\.weight" ` +
        `in .*llama-gqa-tied/model\\.safetensors has ${rows} rows \\(ids 0–${rows - 1}\\); the first is in document 0 \\(.*chat\\.jsonl.*resize_token_embeddings`
    )
    await refuses(dir, message, {}, chat)
    expect(existsSync(join(t.dir, 'out.partial'))).toBe(false)
  })

  it('an empty corpus line and a non-UTF-8 corpus line', async () => {
    t = tempDir()
    const empty = join(t.dir, 'empty-line.jsonl')
    writeFileSync(empty, '{"text": "fine"}\n\n{"text": "also fine"}\n')
    await refuses(join(root, 'models', 'gpt_neox'), /empty-line\.jsonl, line 2: empty line/, {}, empty)
    const latin1 = join(t.dir, 'latin1.en.txt')
    writeFileSync(latin1, Buffer.concat([Buffer.from('good line\n'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a])]))
    await refuses(join(root, 'models', 'gpt_neox'), /latin1\.en\.txt, line 2: not valid UTF-8/, {}, latin1)
    const blank = join(t.dir, 'blank.jsonl')
    writeFileSync(blank, '{"text": ""}\n')
    await refuses(join(root, 'models', 'gpt_neox'), /blank\.jsonl, line 1: "text" is empty/, {}, blank)
  })
})

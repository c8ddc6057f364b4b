import { join } from 'node:path'
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { buildSequences } from '../../src/core/lm/sequences'
import { loadTokenizer } from '../../src/core/lm/tokenizer'
import { tinyModels } from '../fixtures/tiny-models'
import { tempDir } from '../helpers'

let root: string
beforeAll(() => {
  root = tinyModels()
})

describe('tokenisation through @huggingface/tokenizers', () => {
  it.each(['bytelevel', 'sentencepiece'])('%s: English and Japanese match the reference encoder exactly', (name) => {
    const dir = join(root, 'tokenizers', name)
    const tok = loadTokenizer(dir)
    const refs = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as { text: string; ids: number[]; tokens: string[] }[]
    expect(refs.some((r) => /[\u3040-\u30ff\u4e00-\u9fff]/.test(r.text))).toBe(true)
    for (const r of refs) {
      const withoutBos = name === 'sentencepiece' ? r.ids.slice(1) : r.ids
      expect(tok.encode(r.text), r.text).toEqual(withoutBos)
      expect(withoutBos.map((id) => tok.tokenText(id))).toEqual(name === 'sentencepiece' ? r.tokens.slice(1) : r.tokens)
    }
  })

  it('finds the BOS from the post-processor: llama-style has one, byte-level BPE none', () => {
    expect(loadTokenizer(join(root, 'tokenizers', 'sentencepiece')).bos).toBe(1)
    expect(loadTokenizer(join(root, 'tokenizers', 'bytelevel')).bos).toBeNull()
  })

  it('keeps byte-fallback tokens like <0x0A> as their own tokens', () => {
    const tok = loadTokenizer(join(root, 'tokenizers', 'sentencepiece'))
    expect(tok.encode('a\nb').map((id) => tok.tokenText(id))).toContain('<0x0A>')
  })

  describe('bad tokenizer files', () => {
    let t: ReturnType<typeof tempDir>
    afterEach(() => t.cleanup())
    it('names the missing or broken file', () => {
      t = tempDir()
      expect(() => loadTokenizer(t.dir)).toThrow(/Missing .*tokenizer\.json.*save_pretrained/)
      const bad = join(t.dir, 'bad')
      mkdirSync(bad)
      writeFileSync(join(bad, 'tokenizer.json'), '{"model": ')
      expect(() => loadTokenizer(bad)).toThrow(/bad\/tokenizer\.json is not valid JSON/)
    })
  })
})

interface Ref {
  text: string
  ids: number[]
  ids_prefix_space?: number[]
}

describe('legacy tokenizer.json fields read as the Rust tokenizers library reads them', () => {
  // References: make_tiny_models.py's metaspace_variants, written from tokenizers' metaspace.rs.
  it.each(['metaspace-legacy', 'metaspace-legacy-noprefix', 'metaspace-first-nosplit'])('%s: every reference text encodes to the same ids', (name) => {
    const dir = join(root, 'tokenizers', name)
    const tok = loadTokenizer(dir)
    const refs = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as Ref[]
    for (const r of refs) expect(tok.encode(r.text), r.text).toEqual(r.ids)
  })
})

describe("tokenizer_config.json's class rules, as transformers applies them", () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  /** A folder with `base`'s tokenizer.json changed by `edit`, and the given tokenizer_config.json and config.json. */
  function folder(
    base: 'sentencepiece' | 'bytelevel',
    opts: { edit?: (j: Record<string, unknown>) => void; config?: Record<string, unknown>; modelType?: string } = {}
  ): string {
    const dir = join(t.dir, `tok-${Math.random().toString(36).slice(2)}`)
    mkdirSync(dir)
    const json = JSON.parse(readFileSync(join(root, 'tokenizers', base, 'tokenizer.json'), 'utf8')) as Record<string, unknown>
    opts.edit?.(json)
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json))
    if (opts.config) writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(opts.config))
    if (opts.modelType) writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: opts.modelType }))
    return dir
  }
  const noPostProcessor = (j: Record<string, unknown>): void => {
    j.post_processor = null
  }

  // LlamaTokenizerFast.update_post_processor: "<s>" before the text when add_bos_token (default true), whatever tokenizer.json says.
  it('case11 a: no post-processor in tokenizer.json, LlamaTokenizerFast with add_bos_token true → BOS, and the log names the file and key', () => {
    t = tempDir()
    const tok = loadTokenizer(folder('sentencepiece', { edit: noPostProcessor, config: { tokenizer_class: 'LlamaTokenizerFast', add_bos_token: true } }))
    expect(tok.bos).toBe(1)
    expect(tok.specialTokensReason).toMatch(
      /^BOS <s> \(id 1\) in front of every sequence, no EOS: .*tokenizer_config\.json names LlamaTokenizerFast, which builds the post-processor from tokenizer_config.json's add_bos_token true and add_eos_token \(absent: default false\)/
    )
  })

  it('case11 b: tokenizer.json adds <s>, LlamaTokenizerFast with add_bos_token false → no BOS', () => {
    t = tempDir()
    const tok = loadTokenizer(folder('sentencepiece', { config: { tokenizer_class: 'LlamaTokenizerFast', add_bos_token: false } }))
    expect(tok.bos).toBeNull()
    expect(tok.specialTokensReason).toMatch(/^no BOS, no EOS: .*add_bos_token false/)
  })

  it('LlamaTokenizerFast without add_bos_token uses its default (true); with no tokenizer_config.json the model_type picks the class', () => {
    t = tempDir()
    expect(loadTokenizer(folder('sentencepiece', { edit: noPostProcessor, config: { tokenizer_class: 'LlamaTokenizer' } })).bos).toBe(1)
    const byModelType = loadTokenizer(folder('sentencepiece', { edit: noPostProcessor, modelType: 'llama' }))
    expect(byModelType.bos).toBe(1)
    expect(byModelType.specialTokensReason).toMatch(/there is no .*tokenizer_config\.json, so .*config\.json's model_type "llama" selects LlamaTokenizerFast/)
    // Nothing names a class: tokenizer.json alone, as PreTrainedTokenizerFast reads it.
    expect(loadTokenizer(folder('sentencepiece', { edit: noPostProcessor })).bos).toBeNull()
    expect(loadTokenizer(folder('sentencepiece', { config: { tokenizer_class: 'PreTrainedTokenizerFast' } })).bos).toBe(1)
  })

  it('GPTNeoXTokenizerFast: add_bos_token / add_eos_token rebuild the post-processor (default none); the EOS ends each document', () => {
    t = tempDir()
    expect(loadTokenizer(folder('bytelevel', { config: { tokenizer_class: 'GPTNeoXTokenizerFast' } }))).toMatchObject({ bos: null, eos: null })
    const tok = loadTokenizer(folder('bytelevel', { config: { tokenizer_class: 'GPTNeoXTokenizerFast', add_bos_token: true, add_eos_token: true } }))
    expect(tok).toMatchObject({ bos: 0, eos: 0 })
    const llama = loadTokenizer(folder('sentencepiece', { config: { tokenizer_class: 'LlamaTokenizerFast', add_eos_token: true } }))
    expect(llama).toMatchObject({ bos: 1, eos: 2 })
    const seqs = buildSequences({ size: 1, text: () => 'The cat sat on the mat.' }, llama, { context: 1000, dropShort: false, seed: 0 })
    expect(seqs[0]!.ids).toEqual([...llama.encode('The cat sat on the mat.'), 2])
  })

  it("GPT2TokenizerFast and GPTNeoXTokenizerFast apply add_prefix_space to tokenizer.json's pre-tokenizer", () => {
    t = tempDir()
    const refs = JSON.parse(readFileSync(join(root, 'tokenizers', 'bytelevel', 'reference.json'), 'utf8')) as Ref[]
    const spaced = loadTokenizer(folder('bytelevel', { config: { tokenizer_class: 'GPT2TokenizerFast', add_prefix_space: true } }))
    const plain = loadTokenizer(folder('bytelevel', { config: { tokenizer_class: 'GPTNeoXTokenizerFast' } }))
    expect(refs.some((r) => r.ids_prefix_space!.join() !== r.ids.join())).toBe(true)
    for (const r of refs) {
      expect(spaced.encode(r.text), r.text).toEqual(r.ids_prefix_space)
      expect(plain.encode(r.text), r.text).toEqual(r.ids)
    }
    // The class default (false) overrides a pre-tokenizer saved with add_prefix_space true.
    const reset = loadTokenizer(folder('bytelevel', { edit: (j) => ((j.pre_tokenizer as Record<string, unknown>).add_prefix_space = true), modelType: 'gpt2' }))
    expect(reset.encode(refs[0]!.text)).toEqual(refs[0]!.ids)
  })

  it.each([
    [
      'a class whose rules are unknown',
      'bytelevel',
      { config: { tokenizer_class: 'BloomTokenizerFast' } },
      /tokenizer_config\.json: tokenizer_class "BloomTokenizerFast" has rules FeatureTrace does not apply.*"PreTrainedTokenizerFast"/
    ],
    [
      'custom tokenizer code',
      'bytelevel',
      { config: { auto_map: { AutoTokenizer: ['tok.MyTokenizer', null] } } },
      /auto_map\.AutoTokenizer names custom tokenizer code/
    ],
    [
      'GPT2TokenizerFast with add_bos_token',
      'bytelevel',
      { config: { tokenizer_class: 'GPT2TokenizerFast', add_bos_token: true } },
      /add_bos_token is true, which transformers' GPT2TokenizerFast refuses/
    ],
    [
      'LlamaTokenizerFast with add_prefix_space',
      'sentencepiece',
      { config: { tokenizer_class: 'LlamaTokenizerFast', add_prefix_space: false } },
      /add_prefix_space is false; with it LlamaTokenizerFast rebuilds the tokenizer from tokenizer\.model/
    ],
    [
      'a BOS token tokenizer.json lacks',
      'sentencepiece',
      { config: { tokenizer_class: 'LlamaTokenizerFast', bos_token: '<bos>' } },
      /bos_token "<bos>" is not in .*tokenizer\.json; transformers would add it/
    ],
    [
      'added_tokens_decoder that differs',
      'sentencepiece',
      { config: { added_tokens_decoder: { '1': { content: '<s>', lstrip: true, rstrip: false, normalized: false, single_word: false, special: true } } } },
      /added_tokens_decoder\["1"\] \("<s>"\) has lstrip true while .*tokenizer\.json has false/
    ],
    ['split_special_tokens', 'sentencepiece', { config: { split_special_tokens: true } }, /split_special_tokens is true/],
    [
      'single_word added tokens',
      'bytelevel',
      { edit: (j: Record<string, unknown>) => ((j.added_tokens as Record<string, unknown>[])[1]!.single_word = true) },
      /added token "<\|padding\|>" has single_word true/
    ],
    [
      'BPE dropout',
      'bytelevel',
      { edit: (j: Record<string, unknown>) => ((j.model as Record<string, unknown>).dropout = 0.1) },
      /model\.dropout is 0\.1, so Hugging Face's tokenizer skips merges at random/
    ],
    [
      'an inverted Split',
      'bytelevel',
      { edit: (j: Record<string, unknown>) => (j.pre_tokenizer = { type: 'Split', pattern: { Regex: '\\w+' }, behavior: 'Removed', invert: true }) },
      /pre_tokenizer is a Split pre-tokenizer with behavior "Removed" and invert true/
    ]
  ] as [string, 'sentencepiece' | 'bytelevel', Parameters<typeof folder>[1], RegExp][])('refuses %s, naming the file and key', (_, base, opts, message) => {
    t = tempDir()
    expect(() => loadTokenizer(folder(base, opts))).toThrow(message)
  })
})

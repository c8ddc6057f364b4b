import { join } from 'node:path'
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
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

// The first tokens of a long document without tokenising all of it: equal to the whole text's first tokens.
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { prefixEncoder } from '../../src/core/lm/prefix-tokens'
import { buildSequences } from '../../src/core/lm/sequences'
import { loadTokenizer } from '../../src/core/lm/tokenizer'
import { tinyModels } from '../fixtures/tiny-models'
import { REPO, tempDir } from '../helpers'

let root: string
beforeAll(() => {
  root = tinyModels()
})

// A normal document: English and Japanese, punctuation, digits, newlines and a few whitespace runs.
const UNIT =
  'All human beings are born free and equal in dignity and rights. They are endowed with reason and conscience, ' +
  'and in 2024 researchers trained 154 checkpoints.  すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。\n' +
  "Tokyo's   capital; don't stop — naïve café 東京は日本の首都です。\t\n"
const DOC = Array.from({ length: 60 }, (_, i) => UNIT.replace('2024', String(1990 + i))).join('')

const tokenizerDirs = (): [string, string][] => [
  ['sentencepiece (Llama style, no pre-tokenizer)', join(root, 'tokenizers', 'sentencepiece')],
  ['byte-level BPE (Pythia style)', join(root, 'tokenizers', 'bytelevel')],
  ['the demo model', join(REPO, 'resources', 'demo', 'checkpoints', 'step2000')]
]

describe("encodePrefix equals the whole text's first tokens", () => {
  it.each([0, 1, 2])('%#: split at safe cuts and whole agree for every budget', (k) => {
    const [, dir] = tokenizerDirs()[k]!
    const tok = loadTokenizer(dir)
    const whole = tok.encode(DOC)
    let cuts = 0
    for (const n of [1, 37, 500, 1000, 2048, 3000, whole.length - 5, whole.length + 100]) {
      const { ids, complete } = tok.encodePrefix(DOC, n)
      expect(ids.length).toBeGreaterThanOrEqual(Math.min(n, whole.length))
      expect(ids, `n=${n}`).toEqual(whole.slice(0, ids.length))
      expect(complete).toBe(ids.length === whole.length)
      if (!complete) cuts++
    }
    // The budgets below the document's length were served from a prefix, not from the whole text.
    expect(cuts).toBeGreaterThanOrEqual(4)
  })

  it('refuses cuts where the vocabulary joins a letter to the following space, which would change the tokens', () => {
    const json = JSON.parse(readFileSync(join(root, 'tokenizers', 'sentencepiece', 'tokenizer.json'), 'utf8')) as {
      model: { vocab: Record<string, number>; merges: (string | string[])[] }
    }
    const tok = loadTokenizer(join(root, 'tokenizers', 'sentencepiece'))
    // A cut between a letter and a space where the plain tokenizer's tokens of the prefix are the whole text's.
    const plain = tok.encode(DOC)
    let p = 5000
    for (;;) {
      p += 1 + DOC.slice(p + 1).search(/\p{L} /u) + 1
      const head = tok.encode(DOC.slice(0, p))
      if (head.every((x, i) => x === plain[i])) break
    }
    // Every letter of the document, made to merge with "▁" first: no cut between a letter and a space is then safe.
    const letters = [...new Set(DOC.match(/\p{L}(?= )/gu))]
    let id = Math.max(...Object.values(json.model.vocab)) + 1
    const pairs = Array.isArray(json.model.merges[0])
    const key = (m: string | string[]): string => (Array.isArray(m) ? m.join(' ') : m)
    json.model.merges = json.model.merges.filter((m) => !letters.some((l) => key(m) === `${l} ▁`))
    for (const l of letters) {
      if (!(l in json.model.vocab)) json.model.vocab[l] = id++
      if (!(`${l}▁` in json.model.vocab)) json.model.vocab[`${l}▁`] = id++
      json.model.merges.unshift(pairs ? [l, '▁'] : `${l} ▁`)
    }
    const t = tempDir()
    try {
      cpSync(join(root, 'tokenizers', 'sentencepiece'), t.dir, { recursive: true })
      writeFileSync(join(t.dir, 'tokenizer.json'), JSON.stringify(json))
      const joined = loadTokenizer(t.dir)
      const whole = joined.encode(DOC)
      // The cut that was exact for the plain tokenizer gives different tokens here ...
      const naive = joined.encode(DOC.slice(0, p))
      expect(naive).not.toEqual(whole.slice(0, naive.length))
      // ... so none is taken, and the prefix is still exact.
      const r = joined.encodePrefix(DOC, 100)
      expect(r).toEqual({ ids: whole, complete: true })
    } finally {
      t.cleanup()
    }
  })

  it('takes no cut for tokenizers it cannot prove (a Unigram model, a Precompiled normalizer)', () => {
    const encode = (s: string): number[] => Array.from(s, (c) => c.charCodeAt(0))
    const text = 'word '.repeat(10_000)
    expect(prefixEncoder({ model: { type: 'Unigram', vocab: [] } }, encode)(text, 10).complete).toBe(true)
    expect(prefixEncoder({ normalizer: { type: 'Precompiled' }, model: { type: 'BPE', vocab: { '▁': 0 }, merges: [] } }, encode)(text, 10).complete).toBe(true)
    expect(
      prefixEncoder({ normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '▁' }, model: { type: 'BPE', vocab: { '▁': 0 }, merges: [] } }, encode)(
        text,
        10
      ).complete
    ).toBe(false)
  })
})

describe('a long document costs what its tokens cost (case28)', () => {
  it('tokenises only the start of a 2-million-character document when 256 tokens are asked for', () => {
    const tok = loadTokenizer(join(REPO, 'resources', 'demo', 'checkpoints', 'step2000'))
    const longest: number[] = []
    const counting = {
      ...tok,
      encode: (s: string) => (longest.push(s.length), tok.encode(s)),
      encodePrefix: (s: string, n: number) =>
        prefixEncoder(
          JSON.parse(readFileSync(join(REPO, 'resources', 'demo', 'checkpoints', 'step2000', 'tokenizer.json'), 'utf8')),
          (x) => (longest.push(x.length), tok.encode(x))
        )(s, n)
    }
    const text = DOC.repeat(Math.ceil(2e6 / DOC.length)) + ' '.repeat(400_000) + DOC
    const seqs = buildSequences({ size: 1, text: () => text }, counting, { context: 64, dropShort: false, seed: 0, maxTokens: 256 })
    expect(seqs.reduce((a, s) => a + s.ids.length, 0)).toBe(256)
    expect(Math.max(...longest)).toBeLessThan(20_000)
    // The rows are the document's first 256 tokens, in sequences of 64.
    expect(seqs.map((s) => s.start).sort((a, b) => a - b)).toEqual([0, 64, 128, 192])
    const first = tok.encode(text.slice(0, 20_000)).slice(0, 256)
    for (const s of seqs) expect(s.ids).toEqual(first.slice(s.start, s.start + 64))
  })

  it('leaves corpora of documents shorter than the budget as they were: every sequence of every document taken', () => {
    const tok = loadTokenizer(join(root, 'tokenizers', 'bytelevel'))
    const docs = Array.from({ length: 30 }, (_, i) => UNIT.slice(0, 60 + i * 11))
    const source = { size: docs.length, text: (i: number) => docs[i]! }
    const all = buildSequences(source, tok, { context: 16, dropShort: false, seed: 4 })
    const total = all.reduce((a, s) => a + s.ids.length, 0)
    const budget = buildSequences(source, tok, { context: 16, dropShort: false, seed: 4, maxTokens: total })
    expect(budget).toEqual(all)
  })
})

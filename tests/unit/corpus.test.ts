import { closeSync, ftruncateSync, openSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_LINE_BYTES } from '../../src/core/io/lines'
import { Corpus, readCorpus } from '../../src/core/lm/corpus'
import { tempDir } from '../helpers'

describe('corpus files of any size, read line by line', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('indexes JSON Lines across read chunks, with CRLF, a BOM and no final newline, and reads each text back', () => {
    t = tempDir()
    // Documents long enough that lines cross the 4 MiB read chunks at many places, one of them 5 MiB long.
    const texts = Array.from({ length: 40 }, (_, i) => `doc ${i} ` + 'ä漢x'.repeat(i === 17 ? 700_000 : 20_000 + i * 997))
    const lines = texts.map((text, i) => JSON.stringify(i % 3 === 0 ? { text, lang: i % 2 ? 'ja' : 'en' } : { text }))
    const file = join(t.dir, 'big.jsonl')
    writeFileSync(file, '\ufeff' + lines.join('\r\n'))
    const c = Corpus.open(file, { lang: 'xx' })
    expect(c.size).toBe(40)
    for (const i of [0, 1, 16, 17, 18, 39]) {
      expect(c.text(i)).toBe(texts[i])
      expect(c.info(i)).toEqual({ id: i, lang: i % 3 === 0 ? (i % 2 ? 'ja' : 'en') : 'xx', source: `big.jsonl:${i + 1}` })
    }
    c.close()
  })

  it('splits plain text into paragraphs at blank lines, CRLF or LF, and keeps lines joined by \\n', () => {
    t = tempDir()
    const file = join(t.dir, 'wiki.ja.txt')
    writeFileSync(file, '\ufeff一行目\r\n二行目\r\n\r\n   \nthird para\n\n\nlast\r')
    expect(readCorpus(file)).toEqual([
      { id: 0, text: '一行目\n二行目', lang: 'ja', source: 'wiki.ja.txt:1' },
      { id: 1, text: 'third para', lang: 'ja', source: 'wiki.ja.txt:5' },
      { id: 2, text: 'last', lang: 'ja', source: 'wiki.ja.txt:8' }
    ])
  })

  it('says when escaped lone surrogates will be tokenised as U+FFFD (case09)', () => {
    t = tempDir()
    const file = join(t.dir, 's.jsonl')
    writeFileSync(file, '{"text": "fine \\ud83d\\ude00"}\n{"text": "lone \\ud800 here"}\n{"text": "and \\udfff"}\n')
    const c = Corpus.open(file)
    expect(c.text(1)).toBe('lone \ud800 here')
    expect(c.notes).toEqual([expect.stringMatching(/^2 documents of .*s\.jsonl \(the first on line 2\) hold escaped lone surrogates .*U\+FFFD/)])
    c.close()
  })

  it('a 3 GiB corpus is read, not reported missing: a line longer than one document can be is refused by line (sparse file)', () => {
    t = tempDir()
    const file = join(t.dir, 'huge.en.txt')
    const fd = openSync(file, 'w')
    writeSync(fd, 'A first paragraph.\n\nThen a run of NUL bytes from a broken extraction:')
    ftruncateSync(fd, 3 * 2 ** 30)
    closeSync(fd)
    expect(() => Corpus.open(file)).toThrow(
      new RegExp(`huge\\.en\\.txt, line 3: a line of \\d+ MiB or more, longer than FeatureTrace reads as one document \\(${MAX_LINE_BYTES / 2 ** 20} MiB\\)`)
    )
    expect(() => Corpus.open(join(t.dir, 'absent.jsonl'))).toThrow(/Missing corpus file .*absent\.jsonl/)
  })
})

import { describe, expect, it } from 'vitest'
import { classifyFeature, exampleLanguage, scriptRule, tokenText } from '../../src/core/analysis/language'

/** One example whose most active token is at `at`. */
function ex(tokens: string[], at: number): { tokens: string[]; acts: number[] } {
  return { tokens, acts: tokens.map((_, i) => (i === at ? 9 : i % 2)) }
}

describe("the paper's language rule", () => {
  it('Latin text with punctuation is English', () => {
    expect(exampleLanguage(ex([' William', ',', ' Bur', 'ton'], 2))).toBe('en')
    expect(exampleLanguage(ex(['Ġthe', 'Ġ"quoted"', 'Ġword'], 1))).toBe('en')
    expect(exampleLanguage(ex(['▁(', 'well-known', ').'], 1))).toBe('en')
    expect(exampleLanguage(ex(['x', "Ġdon't"], 1))).toBe('en')
  })

  it('kana and kanji are Japanese', () => {
    expect(exampleLanguage(ex(['東京', 'は', '日本'], 1))).toBe('ja')
    expect(exampleLanguage(ex(['カタカナ'], 0))).toBe('ja')
    expect(exampleLanguage(ex(['▁', '首都'], 1))).toBe('ja')
    // Accented Latin is outside the paper's ASCII pattern: "otherwise Japanese", as its code does.
    expect(exampleLanguage(ex(['café'], 0))).toBe('ja')
  })

  it('digits defer to the previous token, repeatedly', () => {
    expect(exampleLanguage(ex([' in', ' 2024'], 1))).toBe('en')
    expect(exampleLanguage(ex(['平成', '3', '1'], 2))).toBe('ja')
    expect(exampleLanguage(ex([' page', ' 1', '2', '3'], 3))).toBe('en')
    expect(exampleLanguage(ex(['42'], 0))).toBe('ja')
  })

  it('byte tokens: ASCII bytes are their character, UTF-8 fragments are not Latin', () => {
    expect(tokenText('<0x0A>')).toBe('\n')
    expect(exampleLanguage(ex(['word', '<0x0A>'], 1))).toBe('en')
    expect(exampleLanguage(ex(['<0xE6>', '<0x9D>'], 0))).toBe('ja')
    expect(tokenText('Ġhello')).toBe(' hello')
    expect(tokenText('Ċ')).toBe('\n')
  })

  it('classifies features by the 0.9 share, else bilingual', () => {
    const en = Array.from({ length: 10 }, () => ex([' the', ' cat'], 1))
    const ja = Array.from({ length: 10 }, () => ex(['猫', 'は'], 0))
    expect(classifyFeature(en)).toEqual({ counts: { en: 10, ja: 0 }, class: 'en' })
    expect(classifyFeature(ja)).toEqual({ counts: { en: 0, ja: 10 }, class: 'ja' })
    expect(classifyFeature([...en.slice(0, 9), ja[0]!])).toEqual({ counts: { en: 9, ja: 1 }, class: 'mix' })
    expect(classifyFeature([...en, ...en.slice(0, 9), ja[0]!])).toEqual({ counts: { en: 19, ja: 1 }, class: 'en' })
    expect(classifyFeature([{ tokens: ['a'], acts: [0] }])).toEqual({ counts: { en: 0, ja: 0 }, class: 'mix' })
  })
})

describe('the script rule for any pair of languages', () => {
  const rule = scriptRule({ en: ['Latin'], ja: ['Hiragana', 'Katakana', 'Han'], ko: ['Hangul'] }, 'other')
  it('reads the script of the most active token', () => {
    expect(exampleLanguage(ex(['café'], 0), rule)).toBe('en')
    expect(exampleLanguage(ex(['한국어'], 0), rule)).toBe('ko')
    expect(exampleLanguage(ex(['漢字', '12'], 1), rule)).toBe('ja')
    expect(exampleLanguage(ex(['...'], 0), rule)).toBe('other')
  })
})

describe('display cells', () => {
  it('joins byte-fallback runs that spell whole characters, keeping the largest activation', async () => {
    const { tokenCells } = await import('../../src/shared/tokens')
    const cells = tokenCells(['▁', '<0xE6>', '<0x9D>', '<0xB1>', 'は', '<0xE4>', '<0x0A>'], [0, 1, 3, 2, 0, 5, 0])
    expect(cells.map((c) => c.text)).toEqual([' ', '東', 'は', '<0xE4>', '\n'])
    expect(cells[1]).toMatchObject({ act: 3, tokens: ['<0xE6>', '<0x9D>', '<0xB1>'] })
  })
})

// The language of a feature from its examples (Inaba et al. 2025, METHODS §1), generalised by script.
//
// Paper rule, per example: take the token with the highest activation; if its text matches
// ^[a-zA-Z\s"'(),.\-]+$ it is English; if it is only digits, look at the previous token instead
// (repeatedly); otherwise Japanese. A feature is English-specific when en/total > 0.9, Japanese-specific
// when ja/total > 0.9, otherwise bilingual ("mix").

import { tokenText } from '../../shared/tokens'

export { tokenText }

export interface FeatureExample {
  tokens: string[]
  acts: number[]
}

export type LanguageCounts = Record<string, number>

export interface LanguageRule {
  /** Decide one token's language; null means "look at the previous token" (digits). */
  tokenLanguage(text: string): string | null
  /** Languages counted, in output order; the first is what an all-digit example falls back to. */
  languages: string[]
  /** Fallback when a digit run reaches the start of the context. */
  atStart: string
}

const ENGLISH = /^[a-zA-Z\s"'(),.-]+$/
const DIGITS = /^\s*\d+\s*$/

/** The paper's English/Japanese rule, exactly. */
export const PAPER_RULE: LanguageRule = {
  tokenLanguage(text) {
    if (DIGITS.test(text)) return null
    return ENGLISH.test(text) ? 'en' : 'ja'
  },
  languages: ['en', 'ja'],
  // The paper's code keeps walking back; at the start a digit token fails the English pattern.
  atStart: 'ja'
}

/**
 * The rule for any set of languages, by Unicode script: each language lists the scripts that mark it
 * (e.g. {en: ['Latin'], ja: ['Hiragana', 'Katakana', 'Han']}). A token belongs to the first language with
 * a letter of its scripts; tokens with no letters (punctuation, spaces) go to `neutral`; digits defer.
 */
export function scriptRule(scripts: Record<string, string[]>, neutral: string): LanguageRule {
  const tests = Object.entries(scripts).map(([lang, names]) => [lang, new RegExp(`[${names.map((s) => `\\p{Script=${s}}`).join('')}]`, 'u')] as const)
  return {
    tokenLanguage(text) {
      if (DIGITS.test(text)) return null
      for (const [lang, re] of tests) if (re.test(text)) return lang
      return neutral
    },
    languages: Object.keys(scripts),
    atStart: neutral
  }
}

/** The language of one example: its most active token's, digits deferring to the token before. */
export function exampleLanguage(ex: FeatureExample, rule: LanguageRule = PAPER_RULE): string | null {
  let best = -1
  let at = -1
  ex.acts.forEach((a, i) => {
    if (a > best) {
      best = a
      at = i
    }
  })
  if (at < 0 || best <= 0) return null
  for (let i = at; i >= 0; i--) {
    const lang = rule.tokenLanguage(tokenText(ex.tokens[i] ?? ''))
    if (lang !== null) return lang
  }
  return rule.atStart
}

export interface LanguageClassification {
  counts: LanguageCounts
  /** A language when its share exceeds the threshold, else "mix". */
  class: string
}

export function classifyFeature(examples: FeatureExample[], rule: LanguageRule = PAPER_RULE, threshold = 0.9): LanguageClassification {
  const counts: LanguageCounts = Object.fromEntries(rule.languages.map((l) => [l, 0]))
  for (const ex of examples) {
    const lang = exampleLanguage(ex, rule)
    if (lang !== null) counts[lang] = (counts[lang] ?? 0) + 1
  }
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  for (const lang of rule.languages) if (total > 0 && counts[lang]! / total > threshold) return { counts, class: lang }
  return { counts, class: 'mix' }
}

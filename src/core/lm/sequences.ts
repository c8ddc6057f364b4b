// From documents to fixed-length token sequences, deterministic for a seed.
import type { ModelTokenizer } from './tokenizer'
import { Rng } from '../random'

export interface TokenSequence {
  doc: number
  /** Position of the first token within its document's tokens. */
  start: number
  ids: number[]
}

export interface SequenceOptions {
  /** Tokens per sequence, not counting a BOS (METHODS §1: 64). */
  context: number
  /** Drop a document's last sequence when it is shorter than the context. */
  dropShort: boolean
  seed: number
  /**
   * Stop once this many tokens are in sequences (whole sequences; the last one may be cut). A document then
   * gives at most ⌈maxTokens / context⌉ sequences, from its start: a document longer than the whole budget
   * costs what the budget costs.
   */
  maxTokens?: number
}

/** Documents by id (0 … size − 1), their texts on demand: a Corpus, or texts in memory. */
export interface DocumentSource {
  size: number
  text(id: number): string
}

export function buildSequences(docs: DocumentSource, tokenizer: ModelTokenizer, opts: SequenceOptions): TokenSequence[] {
  const rng = new Rng(opts.seed)
  const order = rng.shuffle(Array.from({ length: docs.size }, (_, i) => i))
  const limit = opts.maxTokens ?? Infinity
  const cap = limit === Infinity ? Infinity : Math.ceil(limit / opts.context) * opts.context
  const seqs: TokenSequence[] = []
  let total = 0
  // Tokenise documents in shuffled order only until enough tokens are in hand, and of each document only
  // what it can contribute: a large corpus, or one huge document, with a small budget costs little.
  for (const i of order) {
    if (total >= limit) break
    const text = docs.text(i)
    const encoded = cap === Infinity ? { ids: tokenizer.encode(text), complete: true } : tokenizer.encodePrefix(text, cap)
    // transformers' add_eos_token puts the EOS after the whole text, so it ends the document's last sequence.
    if (tokenizer.eos !== null && encoded.complete) encoded.ids.push(tokenizer.eos)
    const ids = cap === Infinity ? encoded.ids : encoded.ids.slice(0, cap)
    for (let start = 0; start < ids.length; start += opts.context) {
      const chunk = ids.slice(start, start + opts.context)
      if (chunk.length < opts.context && opts.dropShort) continue
      seqs.push({ doc: i, start, ids: chunk })
      total += chunk.length
    }
  }
  rng.shuffle(seqs)
  if (limit === Infinity) return seqs
  const out: TokenSequence[] = []
  let taken = 0
  for (const s of seqs) {
    if (taken >= limit) break
    const ids = s.ids.slice(0, limit - taken)
    out.push({ ...s, ids })
    taken += ids.length
  }
  return out
}

// From documents to fixed-length token sequences, deterministic for a seed.
import type { CorpusDocument } from './corpus'
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
  /** Stop once this many tokens are in sequences (whole sequences; the last one may be cut). */
  maxTokens?: number
}

export function buildSequences(docs: CorpusDocument[], tokenizer: ModelTokenizer, opts: SequenceOptions): TokenSequence[] {
  const rng = new Rng(opts.seed)
  const order = rng.shuffle(docs.map((_, i) => i))
  const limit = opts.maxTokens ?? Infinity
  const seqs: TokenSequence[] = []
  let total = 0
  // Tokenise documents in shuffled order only until enough tokens are in hand: a large corpus with a
  // small budget costs little.
  for (const i of order) {
    if (total >= limit) break
    const doc = docs[i]!
    const ids = tokenizer.encode(doc.text)
    // transformers' add_eos_token puts the EOS after the whole text, so it ends the document's last sequence.
    if (tokenizer.eos !== null) ids.push(tokenizer.eos)
    for (let start = 0; start < ids.length; start += opts.context) {
      const chunk = ids.slice(start, start + opts.context)
      if (chunk.length < opts.context && opts.dropShort) continue
      seqs.push({ doc: doc.id, start, ids: chunk })
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

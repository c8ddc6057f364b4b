// Token strings as people read them; shared by the engine's language rule and the renderer.

/**
 * A model's token string as text: byte-level BPE marks spaces with Ġ and newlines with Ċ, SentencePiece
 * marks spaces with ▁, and byte-fallback tokens like <0x0A> stand for one byte (ASCII bytes become their
 * character; bytes of a longer UTF-8 character stay as written, since no script can be read from them).
 */
export function tokenText(token: string): string {
  const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(token)
  if (byte) {
    const code = parseInt(byte[1]!, 16)
    return code < 0x80 ? String.fromCharCode(code) : token
  }
  return token.replace(/Ġ/g, ' ').replace(/Ċ/g, '\n').replace(/ĉ/g, '\t').replace(/▁/g, ' ')
}

export interface TokenCell {
  text: string
  /** The largest activation among the tokens the cell shows. */
  act: number
  /** How many model tokens the cell stands for (byte-fallback runs become one character). */
  tokens: string[]
  acts: number[]
}

const BYTE = /^<0x([0-9A-Fa-f]{2})>$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Tokens and activations as display cells: a run of byte-fallback tokens that spells complete UTF-8
 * characters (<0xE6><0x9D><0xB1> → 東) becomes one cell with the run's largest activation.
 */
export function tokenCells(tokens: string[], acts: number[]): TokenCell[] {
  const cells: TokenCell[] = []
  let i = 0
  while (i < tokens.length) {
    const lead = BYTE.exec(tokens[i]!)
    const first = lead ? parseInt(lead[1]!, 16) : 0
    const need = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 0
    if (need > 0 && i + need <= tokens.length && tokens.slice(i, i + need).every((t) => BYTE.test(t))) {
      const bytes = Uint8Array.from(tokens.slice(i, i + need), (t) => parseInt(BYTE.exec(t)![1]!, 16))
      try {
        const text = utf8.decode(bytes)
        const run = acts.slice(i, i + need)
        cells.push({ text, act: Math.max(...run), tokens: tokens.slice(i, i + need), acts: run })
        i += need
        continue
      } catch {
        // Not a whole character: show the bytes as they are.
      }
    }
    cells.push({ text: tokenText(tokens[i]!), act: acts[i] ?? 0, tokens: [tokens[i]!], acts: [acts[i] ?? 0] })
    i++
  }
  return cells
}

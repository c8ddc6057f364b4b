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

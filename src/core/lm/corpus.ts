// Corpus input: JSON Lines ({"text": ..., "lang": "en"}) or plain text files tagged with a language.
import { readFileSync, statSync } from 'node:fs'
import { basename } from 'node:path'
import { UserError } from '../../shared/api'

export interface CorpusDocument {
  id: number
  text: string
  lang: string | null
  /** The file the document came from, and its line in JSON Lines. */
  source: string
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function decodeLine(bytes: Uint8Array, file: string, line: number): string {
  try {
    return utf8.decode(bytes)
  } catch {
    throw new UserError(`${file}, line ${line}: not valid UTF-8. Re-encode the corpus as UTF-8 (e.g. iconv -t UTF-8).`)
  }
}

/** Splits a buffer into lines (LF or CRLF), keeping byte exactness for UTF-8 checks. */
function lines(buf: Buffer): Uint8Array[] {
  const out: Uint8Array[] = []
  let start = 0
  for (let i = 0; i <= buf.length; i++) {
    if (i === buf.length || buf[i] === 0x0a) {
      const end = i > start && buf[i - 1] === 0x0d ? i - 1 : i
      out.push(buf.subarray(start, end))
      start = i + 1
    }
  }
  if (out.length && out.at(-1)!.length === 0) out.pop() // the file's final newline
  return out
}

/** The language tag of a plain text file: given, or from a name like wiki.ja.txt. */
export function languageFromName(file: string): string | null {
  return /\.([a-z]{2,3}(?:-[A-Za-z]+)?)\.(?:txt|text)$/.exec(basename(file))?.[1] ?? null
}

export function readCorpus(file: string, opts: { lang?: string } = {}): CorpusDocument[] {
  let buf: Buffer
  try {
    if (!statSync(file).isFile()) throw new Error('not a file')
    buf = readFileSync(file)
  } catch {
    throw new UserError(`Missing corpus file ${file}.`)
  }
  const docs: CorpusDocument[] = []
  if (/\.jsonl?$/i.test(file)) {
    lines(buf).forEach((bytes, i) => {
      const n = i + 1
      const text = decodeLine(bytes, file, n)
      if (text.trim() === '') throw new UserError(`${file}, line ${n}: empty line. Each line must be one JSON object with a "text".`)
      let obj: unknown
      try {
        obj = JSON.parse(text)
      } catch (err) {
        throw new UserError(`${file}, line ${n}: not valid JSON (${(err as Error).message}).`)
      }
      const o = obj as { text?: unknown; lang?: unknown }
      if (typeof o !== 'object' || o === null || typeof o.text !== 'string') {
        throw new UserError(`${file}, line ${n}: needs a "text" string, like {"text": "...", "lang": "en"}.`)
      }
      if (o.text.trim() === '') throw new UserError(`${file}, line ${n}: "text" is empty.`)
      if (o.lang !== undefined && typeof o.lang !== 'string') throw new UserError(`${file}, line ${n}: "lang" must be a string.`)
      docs.push({ id: docs.length, text: o.text, lang: (o.lang as string | undefined) ?? opts.lang ?? null, source: `${basename(file)}:${n}` })
    })
  } else {
    // Plain text: documents are separated by blank lines.
    const lang = opts.lang ?? languageFromName(file)
    let para: string[] = []
    let startLine = 1
    const flush = (): void => {
      if (para.length) docs.push({ id: docs.length, text: para.join('\n'), lang, source: `${basename(file)}:${startLine}` })
      para = []
    }
    lines(buf).forEach((bytes, i) => {
      const text = decodeLine(bytes, file, i + 1)
      if (text.trim() === '') flush()
      else {
        if (!para.length) startLine = i + 1
        para.push(text)
      }
    })
    flush()
  }
  if (docs.length === 0) throw new UserError(`${file} holds no text.`)
  return docs
}

// Corpus input: JSON Lines ({"text": ..., "lang": "en"}) or plain text files tagged with a language.
// A corpus of any size is read line by line in bounded chunks and indexed (each document's byte range,
// language and line); a document's text is read again only when it is tokenised. Memory holds the index,
// never the corpus: a 3 GB corpus costs what its document count costs.
import { closeSync, openSync, statSync } from 'node:fs'
import { basename } from 'node:path'
import { UserError } from '../../shared/api'
import { forEachLine, MAX_LINE_BYTES, readRange } from '../io/lines'
import { unreadable } from '../io/json-file'

export interface CorpusDocument {
  id: number
  text: string
  lang: string | null
  /** The file the document came from, and its line in JSON Lines. */
  source: string
}

export type CorpusDocumentInfo = Omit<CorpusDocument, 'text'>

const utf8 = new TextDecoder('utf-8', { fatal: true })

function decodeLine(bytes: Uint8Array, file: string, line: number): string {
  try {
    return utf8.decode(bytes)
  } catch (err) {
    if (err instanceof RangeError && /length/i.test(err.message)) throw tooLong(file, line, bytes.length)
    throw new UserError(`${file}, line ${line}: not valid UTF-8. Re-encode the corpus as UTF-8 (e.g. iconv -t UTF-8).`)
  }
}

function tooLong(file: string, line: number, bytes: number): UserError {
  return new UserError(
    `${file}, line ${line}: a line of ${(bytes / 2 ** 20).toFixed(0)} MiB or more, longer than FeatureTrace reads as one document ` +
      `(${MAX_LINE_BYTES / 2 ** 20} MiB). Split the document into several lines (records).`
  )
}

/** A UTF-16 surrogate without its partner: JSON's \ud800 escapes can make them, UTF-8 cannot. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** The language tag of a plain text file: given, or from a name like wiki.ja.txt. */
export function languageFromName(file: string): string | null {
  return /\.([a-z]{2,3}(?:-[A-Za-z]+)?)\.(?:txt|text)$/.exec(basename(file))?.[1] ?? null
}

/**
 * An indexed corpus file: documents in file order (id = index), their texts read back on demand with
 * positioned reads. JSON Lines: one document per line; plain text: documents separated by blank lines.
 */
export class Corpus {
  /** Things worth saying about the input that do not stop a harvest (e.g. replaced lone surrogates). */
  readonly notes: string[] = []
  private readonly begins: number[] = []
  private readonly ends: number[] = []
  private readonly lines: number[] = []
  private readonly langs: (string | null)[] = []
  private readonly jsonl: boolean
  private readonly name: string

  private constructor(
    readonly file: string,
    private readonly fd: number,
    opts: { lang?: string }
  ) {
    this.jsonl = /\.jsonl?$/i.test(file)
    this.name = basename(file)
    const size = statSync(file).size
    if (this.jsonl) this.indexJsonl(size, opts.lang ?? null)
    else this.indexText(size, opts.lang ?? languageFromName(file))
    if (this.size === 0) throw new UserError(`${file} holds no text.`)
  }

  /** Indexes a corpus file, checking every line; throws a UserError naming the file and line. */
  static open(file: string, opts: { lang?: string } = {}): Corpus {
    let fd: number
    try {
      if (!statSync(file).isFile()) throw new UserError(`The corpus ${file} is a folder, not a file: give a JSON Lines or text file.`)
      fd = openSync(file, 'r')
    } catch (err) {
      if (err instanceof UserError) throw err
      throw unreadable(file, 'corpus file', err)
    }
    try {
      return new Corpus(file, fd, opts)
    } catch (err) {
      closeSync(fd)
      throw err
    }
  }

  get size(): number {
    return this.begins.length
  }

  info(id: number): CorpusDocumentInfo {
    return { id, lang: this.langs[id] ?? null, source: `${this.name}:${this.lines[id]}` }
  }

  /** The document's text, read back from the file. */
  text(id: number): string {
    const bytes = this.read(this.begins[id]!, this.ends[id]!)
    if (this.jsonl) return (JSON.parse(decodeLine(bytes, this.file, this.lines[id]!)) as { text: string }).text
    const lines: string[] = []
    let start = 0
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x0a) {
        lines.push(decodeLine(bytes.subarray(start, i > start && bytes[i - 1] === 0x0d ? i - 1 : i), this.file, this.lines[id]! + lines.length))
        start = i + 1
      }
    }
    return lines.join('\n')
  }

  close(): void {
    closeSync(this.fd)
  }

  private read(start: number, end: number): Buffer {
    try {
      return readRange(this.fd, start, end)
    } catch {
      throw new UserError(`${this.file} changed while it was read (it is shorter now).`)
    }
  }

  private indexJsonl(size: number, lang: string | null): void {
    const file = this.file
    let surrogates = 0
    let firstSurrogate = 0
    forEachLine(
      this.fd,
      size,
      (line, length) => tooLong(this.file, line, length),
      (start, end, n, bytes) => {
        const text = decodeLine(bytes ?? this.read(start, end), file, n)
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
        if (LONE_SURROGATE.test(o.text)) {
          if (surrogates++ === 0) firstSurrogate = n
        }
        this.add(start, end, n, (o.lang as string | undefined) ?? lang)
      }
    )
    if (surrogates) {
      this.notes.push(
        `${surrogates.toLocaleString('en')} document${surrogates === 1 ? '' : 's'} of ${file} (the first on line ${firstSurrogate}) hold escaped lone surrogates ` +
          '(e.g. "\\ud800"), which are not Unicode text: each is tokenised as U+FFFD, the replacement character (as tiktoken does; ' +
          "Hugging Face's Python tokenizers refuse such text)."
      )
    }
  }

  private indexText(size: number, lang: string | null): void {
    let begin = -1
    let end = 0
    let first = 0
    const flush = (): void => {
      if (begin >= 0) this.add(begin, end, first, lang)
      begin = -1
    }
    forEachLine(
      this.fd,
      size,
      (line, length) => tooLong(this.file, line, length),
      (start, stop, n, bytes) => {
        const text = decodeLine(bytes ?? this.read(start, stop), this.file, n)
        if (text.trim() === '') return flush()
        if (begin < 0) {
          begin = start
          first = n
        }
        end = stop
      }
    )
    flush()
  }

  private add(begin: number, end: number, line: number, lang: string | null): void {
    this.begins.push(begin)
    this.ends.push(end)
    this.lines.push(line)
    this.langs.push(lang)
  }
}

/** Reads a whole (small) corpus into memory: the documents with their texts. */
export function readCorpus(file: string, opts: { lang?: string } = {}): CorpusDocument[] {
  const corpus = Corpus.open(file, opts)
  try {
    return Array.from({ length: corpus.size }, (_, id) => ({ ...corpus.info(id), text: corpus.text(id) }))
  } finally {
    corpus.close()
  }
}

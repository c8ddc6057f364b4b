// Word-pair lists for the crystal scale (resources/demo/pairs/*.tsv are examples).
import { existsSync, readFileSync } from 'node:fs'
import { basename, extname } from 'node:path'
import { UserError } from '../../../shared/api'

export interface WordPair {
  type: string
  a: string
  b: string
}

/**
 * Reads a pair list: UTF-8 text, one pair per line, tab-separated, either `a<TAB>b` (the type is the file
 * name without extension, e.g. country-capital.tsv) or `type<TAB>a<TAB>b`. Blank lines and lines starting
 * with # are skipped.
 */
export function readPairs(file: string): WordPair[] {
  if (!existsSync(file)) throw new UserError(`Pair list ${file} does not exist.`)
  const stem = basename(file, extname(file))
  const pairs: WordPair[] = []
  readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .forEach((line, i) => {
      if (!line.trim() || line.startsWith('#')) return
      const cols = line.split('\t').map((c) => c.trim())
      if (cols.length === 2 && cols[0] && cols[1]) pairs.push({ type: stem, a: cols[0], b: cols[1] })
      else if (cols.length === 3 && cols[0] && cols[1] && cols[2]) pairs.push({ type: cols[0], a: cols[1], b: cols[2] })
      else throw new UserError(`${file}, line ${i + 1}: expected "word<TAB>word" or "type<TAB>word<TAB>word", got ${JSON.stringify(line)}.`)
    })
  if (pairs.length === 0) throw new UserError(`${file} holds no word pairs; write one "word<TAB>word" per line.`)
  return pairs
}

// Rewrites the key tables of docs/sae-formats.md from src/core/io/sae-formats/keys.ts (the readers' own
// table); tests/integration/sae-formats.test.ts fails while the two differ. Run: npx tsx scripts/sae-formats-doc.ts
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderKeyTables } from '../src/core/io/sae-formats/keys'

const file = join(import.meta.dirname, '..', 'docs', 'sae-formats.md')
const doc = readFileSync(file, 'utf8')
const re = /(<!-- key tables: begin[^>]*-->\n)[\s\S]*?(<!-- key tables: end -->)/
if (!re.test(doc)) throw new Error(`${file} has no key-table markers`)
writeFileSync(
  file,
  doc.replace(re, (_m, begin: string, end: string) => `${begin}${renderKeyTables()}${end}`)
)
console.log(`wrote the key tables into ${file}`)

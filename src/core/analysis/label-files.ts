// Labels in and out of a project as files: CSV or JSON (by the extension), every annotator's label of every
// set; merging one back reports what conflicted and what could not be read, row by row.
import { parse } from 'csv-parse/sync'
import { stringify } from 'csv-stringify/sync'
import { readFileSync } from 'node:fs'
import { extname } from 'node:path'
import { z } from 'zod'
import type { LabelImportReport } from '../../shared/api'
import { UserError } from '../../shared/api'
import { readProblem, writeFileAtomic } from '../io/json-file'
import type { Project } from '../project'

const LabelRowSchema = z.object({
  set: z.string().min(1),
  feature: z.coerce.number().int().nonnegative(),
  annotator: z.string().min(1),
  category: z.string().min(1),
  note: z.string().default(''),
  updated_at: z.string().optional()
})
type LabelRow = z.infer<typeof LabelRowSchema>

export function exportLabels(project: Project, out: string): number {
  const rows: LabelRow[] = []
  for (const set of project.features.sets()) {
    for (const l of project.labels.allLabels(set.id)) {
      const full = project.labels.labels(set.id, l.feature).find((x) => x.annotator === l.annotator)!
      rows.push({ set: set.name, feature: l.feature, annotator: l.annotator, category: full.category!, note: full.note, updated_at: full.updatedAt })
    }
  }
  const text =
    extname(out).toLowerCase() === '.csv'
      ? stringify(rows, { header: true, columns: ['set', 'feature', 'annotator', 'category', 'note', 'updated_at'] })
      : JSON.stringify(rows, null, 2)
  writeFileAtomic(out, text)
  return rows.length
}

/** Merges labels from CSV or JSON: new labels are added, equal ones skipped, differing ones reported (or overwritten). */
export function importLabels(project: Project, file: string, opts: { overwrite?: boolean } = {}): LabelImportReport {
  const csv = extname(file).toLowerCase() === '.csv'
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new UserError(`${file} ${readProblem(err)}; give a label file written by \`labels export\` (.csv or .json).`)
  }
  let raw: unknown
  try {
    raw = csv ? parse(text, { columns: true, skip_empty_lines: true }) : JSON.parse(text)
  } catch (err) {
    throw new UserError(`${file} is not valid ${csv ? 'CSV' : 'JSON'} (${(err as Error).message}).`)
  }
  if (!Array.isArray(raw)) throw new UserError(`${file} must hold a list of labels.`)
  const rows: unknown[] = raw
  const sets = new Map(project.features.sets().map((s) => [s.name, s.id]))
  const taxonomy = project.taxonomy.names()
  const report: LabelImportReport = { added: 0, unchanged: 0, overwritten: 0, conflicts: [], skipped: [] }
  project.db.transaction(() => {
    rows.forEach((r, i) => {
      const parsed = LabelRowSchema.safeParse(r)
      if (!parsed.success)
        return void report.skipped.push({ row: i + 1, reason: parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ') })
      const row = parsed.data
      const setId = sets.get(row.set)
      if (setId === undefined) return void report.skipped.push({ row: i + 1, reason: `no feature set named "${row.set}"` })
      if (!taxonomy.includes(row.category)) return void report.skipped.push({ row: i + 1, reason: `"${row.category}" is not in the taxonomy` })
      const existing = project.labels.labels(setId, row.feature).find((l) => l.annotator === row.annotator)
      if (existing && existing.category === row.category && existing.note === row.note) return void report.unchanged++
      if (existing && !opts.overwrite) {
        return void report.conflicts.push({ set: row.set, feature: row.feature, annotator: row.annotator, ours: existing.category ?? '', theirs: row.category })
      }
      try {
        project.labels.setLabel(setId, row.feature, row.annotator, row.category, row.note)
      } catch (err) {
        // A row the project refuses (a feature the set lacks) is reported; anything else is a bug and stops the merge.
        if (!(err instanceof UserError)) throw err
        return void report.skipped.push({ row: i + 1, reason: err.message })
      }
      if (existing) report.overwritten++
      else report.added++
    })
  })()
  return report
}

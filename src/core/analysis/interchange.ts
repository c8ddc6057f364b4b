// Moving features and labels in and out of a project: the feature-example JSONL of FORMATS.md, and labels
// as CSV or JSON that merge back with a report of what conflicted.
import { parse } from 'csv-parse/sync'
import { stringify } from 'csv-stringify/sync'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { extname } from 'node:path'
import { z } from 'zod'
import { UserError } from '../../shared/api'
import type { Project } from '../project'
import { majorityLabels } from '../store/labels'

function atomicWrite(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text)
  renameSync(`${file}.tmp`, file)
}

/** The label each feature carries out: the annotator's, else the majority over annotators (ties: alphabetical). */
function chosenLabels(project: Project, setId: number, annotator?: string): Map<number, { category: string; note: string }> {
  const majority = majorityLabels(project.labels.allLabels(setId), annotator || undefined)
  return new Map(
    [...majority].map(([f, category]) => [f, { category, note: project.labels.labels(setId, f).find((l) => l.category === category && l.note)?.note ?? '' }])
  )
}

/** Writes feature-example JSONL: one line per feature with its examples (paper sampler first) and label. */
export function exportFeatures(project: Project, out: string, opts: { checkpoint?: string; annotator?: string; examples?: number } = {}): number {
  const sets = project.features.currentSets().filter((s) => opts.checkpoint === undefined || String(s.step ?? s.checkpointLabel) === opts.checkpoint)
  if (sets.length === 0) throw new UserError(`No feature set${opts.checkpoint === undefined ? '' : ` for checkpoint ${opts.checkpoint}`} in this project.`)
  const lines: string[] = []
  for (const set of sets) {
    const labels = chosenLabels(project, set.id, opts.annotator)
    for (let offset = 0; offset < set.nFeatures; offset += 5000) {
      for (const r of project.features.list({ setId: set.id, limit: 5000, offset }).rows) {
        const d = project.features.get(set.id, r.feature)
        const order = ['paper', 'imported', 'top', 'interval']
        const examples = [...d.examples].sort((a, b) => order.indexOf(a.sampler) - order.indexOf(b.sampler)).slice(0, opts.examples ?? 50)
        const label = labels.get(r.feature)
        lines.push(
          JSON.stringify({
            checkpoint: set.step ?? set.checkpointLabel ?? set.name,
            feature: r.feature,
            examples: examples.map((e) => ({ tokens: e.tokens, acts: e.acts.map((a) => Math.round(a * 1e4) / 1e4) })),
            ...(label ? { label: label.category, ...(label.note ? { note: label.note } : {}) } : {})
          })
        )
      }
    }
  }
  atomicWrite(out, lines.join('\n') + '\n')
  return lines.length
}

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
  const text = extname(out).toLowerCase() === '.csv' ? stringify(rows, { header: true, columns: ['set', 'feature', 'annotator', 'category', 'note', 'updated_at'] }) : JSON.stringify(rows, null, 2)
  atomicWrite(out, text)
  return rows.length
}

export interface LabelMergeReport {
  added: number
  unchanged: number
  overwritten: number
  conflicts: { set: string; feature: number; annotator: string; ours: string; theirs: string }[]
  skipped: { row: number; reason: string }[]
}

/** Merges labels from CSV or JSON: new labels are added, equal ones skipped, differing ones reported (or overwritten). */
export function importLabels(project: Project, file: string, opts: { overwrite?: boolean } = {}): LabelMergeReport {
  let raw: unknown[]
  try {
    const text = readFileSync(file, 'utf8')
    raw = extname(file).toLowerCase() === '.csv' ? (parse(text, { columns: true, skip_empty_lines: true }) as unknown[]) : (JSON.parse(text) as unknown[])
  } catch (err) {
    throw new UserError(`${file} could not be read as ${extname(file).toLowerCase() === '.csv' ? 'CSV' : 'JSON'} labels: ${(err as Error).message}`)
  }
  if (!Array.isArray(raw)) throw new UserError(`${file} must hold a list of labels.`)
  const sets = new Map(project.features.sets().map((s) => [s.name, s.id]))
  const taxonomy = project.taxonomy.names()
  const report: LabelMergeReport = { added: 0, unchanged: 0, overwritten: 0, conflicts: [], skipped: [] }
  project.db.transaction(() => {
    raw.forEach((r, i) => {
      const parsed = LabelRowSchema.safeParse(r)
      if (!parsed.success) return void report.skipped.push({ row: i + 1, reason: parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ') })
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
        return void report.skipped.push({ row: i + 1, reason: (err as Error).message })
      }
      if (existing) report.overwritten++
      else report.added++
    })
  })()
  return report
}

// Features out of a project as the feature-example JSONL of FORMATS.md: each feature's examples (the paper's
// sampler first) with its label, the annotator's or the majority's.
import { UserError } from '../../shared/api'
import { writeFileAtomic } from '../io/json-file'
import type { Project } from '../project'
import { majorityLabels } from '../store/labels'

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
  writeFileAtomic(out, lines.join('\n') + '\n')
  return lines.length
}

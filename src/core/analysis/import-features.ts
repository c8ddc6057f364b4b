// Importing a feature-example set made elsewhere: one feature set per checkpoint named in the file,
// attached to a registered checkpoint with that step when there is one; labels and notes kept.
import { basename } from 'node:path'
import type { FeatureSetInfo } from '../../shared/api'
import { UserError } from '../../shared/api'
import { readFeatureExamples, type FeatureExampleLine } from '../io/feature-examples'
import type { Project } from '../project'
import type { FeatureRecord } from '../store/feature-blobs'
import { classifyFeature, tokenText } from './language'

export const IMPORT_ANNOTATOR = 'imported'

export function importFeatureSet(project: Project, path: string, name?: string): FeatureSetInfo[] {
  const lines = readFeatureExamples(path)
  const taxonomy = project.taxonomy.names()
  const unknown = [...new Set(lines.map((l) => l.label).filter((l): l is string => l !== undefined && !taxonomy.includes(l)))]
  if (unknown.length) {
    throw new UserError(
      `${path} uses labels that are not in this project's taxonomy: ${unknown.join(', ')}. Add them to the taxonomy first, or rename them in the file.`
    )
  }
  const byCheckpoint = new Map<string, FeatureExampleLine[]>()
  for (const l of lines) {
    const key = l.checkpoint === undefined ? '' : String(l.checkpoint)
    byCheckpoint.set(key, [...(byCheckpoint.get(key) ?? []), l])
  }
  const base = name ?? basename(path).replace(/\.jsonl?$/i, '')
  const checkpoints = project.checkpoints.list()
  const created: FeatureSetInfo[] = []
  // One transaction for the whole file: nothing is half-imported.
  project.db.transaction(() => {
    for (const [ck, group] of byCheckpoint) {
      const dup = group.find((l, i) => group.findIndex((m) => m.feature === l.feature) !== i)
      if (dup) throw new UserError(`${path}: feature ${dup.feature} appears twice for checkpoint "${ck}".`)
      const tokenIndex = new Map<string, number>()
      const idx = (t: string): number => {
        if (!tokenIndex.has(t)) tokenIndex.set(t, tokenIndex.size)
        return tokenIndex.get(t)!
      }
      const features: FeatureRecord[] = group.map((l) => {
        const max = Math.max(0, ...l.examples.flatMap((e) => e.acts))
        const positive = l.examples.flatMap((e) => e.acts.filter((a) => a > 0))
        const lang = classifyFeature(l.examples)
        const top = [...new Set(l.examples.map((e) => tokenText(e.tokens[e.acts.indexOf(Math.max(...e.acts))] ?? '').trim()).filter(Boolean))]
        return {
          feature: l.feature,
          density: null,
          maxAct: max,
          meanAct: positive.length ? positive.reduce((a, b) => a + b, 0) / positive.length : null,
          dead: max === 0,
          langClass: lang.class,
          langCounts: lang.counts,
          topTokens: top.slice(0, 20).join(' '),
          histogram: null,
          neighbours: [],
          examples: l.examples.map((e) => ({ sampler: 'imported' as const, tokens: e.tokens.map(idx), acts: Float32Array.from(e.acts) }))
        }
      })
      const step = /^\d+$/.test(ck) ? Number(ck) : null
      const checkpoint = step === null ? undefined : checkpoints.find((c) => c.step === step)
      const set = project.features.createSet(
        { name: ck === '' ? base : `${base} @ ${ck}`, source: 'import', checkpointId: checkpoint?.id ?? null, checkpointLabel: ck === '' ? null : ck },
        [...tokenIndex.keys()],
        features
      )
      for (const l of group) {
        if (l.label !== undefined || l.note !== undefined) project.labels.setLabel(set.id, l.feature, IMPORT_ANNOTATOR, l.label ?? null, l.note ?? '')
      }
      created.push(set)
    }
  })()
  return created
}

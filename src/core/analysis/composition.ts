// The paper's figures for every feature set: label and language composition, bilingual features split by
// interpretability, and agreement between annotators.
import type { Composition } from '../../shared/api'
import type { Project } from '../project'
import { majorityLabels } from '../store/labels'
import { agreementOf } from './agreement'

/** Per set: labels by category (the annotator's, else each feature's majority), languages, Mix by interpretability, κ. */
export function composition(project: Project, annotator?: string): Composition[] {
  const taxonomy = project.taxonomy.names()
  const uninterpretable = taxonomy.find((c) => /uninterpret/i.test(c)) ?? null
  return project.features.sets().map((set) => {
    const labels = project.labels.allLabels(set.id)
    const chosen = majorityLabels(labels, annotator || undefined)
    const byLabel: Record<string, number> = Object.fromEntries(taxonomy.map((c) => [c, 0]))
    for (const c of chosen.values()) byLabel[c] = (byLabel[c] ?? 0) + 1
    const languages: Record<string, number> = {}
    const mix = { interpretable: 0, uninterpretable: 0, unlabelled: 0 }
    for (const f of project.features.languageClasses(set.id)) {
      const cls = f.langClass ?? 'none'
      languages[cls] = (languages[cls] ?? 0) + 1
      if (cls !== 'mix') continue
      const c = chosen.get(f.feature)
      if (!c) mix.unlabelled++
      else if (c === uninterpretable) mix.uninterpretable++
      else mix.interpretable++
    }
    return {
      setId: set.id,
      name: set.name,
      step: set.step,
      checkpointLabel: set.checkpointLabel,
      features: set.nFeatures,
      labels: byLabel,
      unlabelled: set.nFeatures - chosen.size,
      languages,
      mix,
      agreement: agreementOf(labels)
    }
  })
}

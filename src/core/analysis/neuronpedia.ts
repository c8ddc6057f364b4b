// Features, their example activations and their labels in Neuronpedia's batch export layout, so a series
// studied here can be uploaded to (or read by tools built around) Neuronpedia:
//   OUT/<model>/<layer>-<source set>__step<S>/features/batch-<i>.jsonl.gz      one Feature per line
//                                             activations/batch-<i>.jsonl.gz   one Activation (example) per line
//                                             explanations/batch-<i>.jsonl.gz  one Explanation (label) per line
//                                             source.jsonl, sourceset.jsonl, model.jsonl
// Field names follow Neuronpedia's export models (Feature, Activation, Explanation). Labels become
// explanations: the category, with the note after it, authored by the annotator.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import type { FeatureDetail, FeatureSetInfo } from '../../shared/api'
import { UserError } from '../../shared/api'
import type { Project } from '../project'
import { exportFeatures } from './feature-export'

export interface NeuronpediaExportOptions {
  /** Neuronpedia model id (default: the project's name). */
  modelId?: string
  /** Source-set name; the source id is "<layer>-<set>__step<S>". */
  sourceSet?: string
  /** Only this checkpoint step. */
  step?: number
  /** Features per batch file (Neuronpedia's exports use 128). */
  batchSize?: number
  /** Also write the feature-example JSONL of FORMATS.md as OUT/feature-examples.jsonl. */
  featureExamples?: boolean
}

export interface NeuronpediaExportResult {
  sources: { id: string; step: number | null; layer: number | null; features: number; activations: number; explanations: number }[]
  dir: string
}

function jsonl(rows: unknown[]): Buffer {
  return gzipSync(Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : ''), 'utf8'), { level: 5 })
}

function safeId(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'featuretrace'
}

function featureRow(modelId: string, layer: string, d: FeatureDetail, createdAt: string): Record<string, unknown> {
  const h = d.histogram
  const edge = (i: number, n: number): number => h!.lo * (h!.hi / h!.lo) ** (i / n)
  return {
    modelId,
    layer,
    index: String(d.feature),
    creatorId: null,
    createdAt,
    maxActApprox: d.maxAct ?? 0,
    hasVector: false,
    vector: [],
    vectorLabel: null,
    hookName: null,
    topkCosSimIndices: d.neighbours.map((x) => x.feature),
    topkCosSimValues: d.neighbours.map((x) => x.cosine),
    neuron_alignment_indices: [],
    neuron_alignment_values: [],
    neuron_alignment_l1: [],
    correlated_neurons_indices: [],
    correlated_neurons_pearson: [],
    correlated_neurons_l1: [],
    correlated_features_indices: [],
    correlated_features_pearson: [],
    correlated_features_l1: [],
    neg_str: [],
    neg_values: [],
    pos_str: [],
    pos_values: [],
    frac_nonzero: d.density ?? 0,
    // Bar heights and the centre of each (log-spaced) activation bin.
    freq_hist_data_bar_heights: h ? h.counts : [],
    freq_hist_data_bar_values: h ? h.counts.map((_, i) => Math.sqrt(edge(i, h.counts.length) * edge(i + 1, h.counts.length))) : [],
    logits_hist_data_bar_heights: [],
    logits_hist_data_bar_values: [],
    decoder_weights_dist: []
  }
}

/** Writes every feature set made from an SAE (one Neuronpedia source per checkpoint and layer). */
export function exportNeuronpedia(project: Project, out: string, opts: NeuronpediaExportOptions = {}): NeuronpediaExportResult {
  const sets = project.features.currentSets().filter((s): s is FeatureSetInfo & { layer: number } => s.layer !== null && (opts.step === undefined || s.step === opts.step))
  if (sets.length === 0) {
    throw new UserError(`No feature statistics${opts.step === undefined ? '' : ` at step ${opts.step}`} to export: run "Feature statistics" (the feature-stats job) on the SAEs first.`)
  }
  const modelId = safeId(opts.modelId ?? project.info().name)
  const sourceSet = safeId(opts.sourceSet ?? 'featuretrace')
  const batchSize = opts.batchSize ?? 128
  const createdAt = new Date().toISOString()
  if (existsSync(out) && readdirSync(out).length > 0) throw new UserError(`${out} already exists and is not empty; export into a new folder.`)
  const tmp = `${out}.partial-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  const result: NeuronpediaExportResult = { sources: [], dir: out }
  try {
    for (const set of sets) {
      const id = `${set.layer}-${sourceSet}${set.step !== null ? `__step${set.step}` : `__set${set.id}`}`
      const dir = join(tmp, modelId, id)
      for (const sub of ['features', 'activations', 'explanations']) mkdirSync(join(dir, sub), { recursive: true })
      writeFileSync(join(dir, 'model.jsonl'), JSON.stringify({ id: modelId, displayName: modelId, displayNameShort: modelId, creatorId: null, createdAt, updatedAt: createdAt }) + '\n')
      writeFileSync(join(dir, 'sourceset.jsonl'), JSON.stringify({ modelId, name: sourceSet, description: `FeatureTrace features, ${set.name}`, creatorId: null, creatorName: 'FeatureTrace', visibility: 'PRIVATE', createdAt }) + '\n')
      writeFileSync(join(dir, 'source.jsonl'), JSON.stringify({ id, modelId, setName: sourceSet, visibility: 'PRIVATE', creatorId: null, hasDashboards: true, createdAt }) + '\n')
      const counts = { id, step: set.step, layer: set.layer, features: 0, activations: 0, explanations: 0 }
      for (let b = 0, start = 0; start < set.nFeatures; b++, start += batchSize) {
        const features: unknown[] = []
        const activations: unknown[] = []
        const explanations: unknown[] = []
        for (const r of project.features.list({ setId: set.id, offset: start, limit: batchSize, sort: 'feature' }).rows) {
          const d = project.features.get(set.id, r.feature)
          features.push(featureRow(modelId, id, d, createdAt))
          d.examples.forEach((e, i) => {
            const max = Math.max(...e.acts)
            activations.push({
              id: `ft-${set.id}-${d.feature}-${i}`,
              tokens: e.tokens,
              index: String(d.feature),
              layer: id,
              modelId,
              maxValue: max,
              maxValueTokenIndex: e.acts.indexOf(max),
              minValue: Math.min(...e.acts),
              values: e.acts,
              creatorId: null,
              dataSource: `featuretrace:${e.sampler}`,
              dataIndex: null,
              createdAt
            })
          })
          for (const l of d.labels) {
            if (!l.category) continue
            explanations.push({
              id: `ft-${set.id}-${d.feature}-${safeId(l.annotator)}`,
              modelId,
              layer: id,
              index: String(d.feature),
              description: l.note ? `${l.category}: ${l.note}` : l.category,
              authorId: l.annotator,
              typeName: 'featuretrace-label',
              explanationModelName: null,
              notes: l.note || null,
              createdAt: l.updatedAt
            })
          }
        }
        writeFileSync(join(dir, 'features', `batch-${b}.jsonl.gz`), jsonl(features))
        writeFileSync(join(dir, 'activations', `batch-${b}.jsonl.gz`), jsonl(activations))
        writeFileSync(join(dir, 'explanations', `batch-${b}.jsonl.gz`), jsonl(explanations))
        counts.features += features.length
        counts.activations += activations.length
        counts.explanations += explanations.length
      }
      result.sources.push(counts)
    }
    if (opts.featureExamples !== false) exportFeatures(project, join(tmp, 'feature-examples.jsonl'), opts.step === undefined ? {} : { checkpoint: String(opts.step) })
    rmSync(out, { recursive: true, force: true })
    renameSync(tmp, out)
    return result
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true })
    throw err
  }
}

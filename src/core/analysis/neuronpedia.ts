// Features, their example activations and their labels in Neuronpedia's batch export layout, so a series
// studied here can be uploaded to (or read by tools built around) Neuronpedia:
//   OUT/<model>/<layer>-<source set>__step<S>/features/batch-<i>.jsonl.gz      one Neuron (feature) per line
//                                             activations/batch-<i>.jsonl.gz   one Activation (example) per line
//                                             explanations/batch-<i>.jsonl.gz  one Explanation (label) per line
//                                             source.jsonl, sourceset.jsonl, model.jsonl
// Records follow Neuronpedia's Prisma schema (apps/webapp/prisma/schema.prisma) as its importer
// (app/api/admin/import, lib/db/import.ts) inserts them: prisma.create for model, source set and source (every
// required field, no unknown one), jsonb_to_recordset with the first line's columns and "on conflict do nothing"
// for the batches. So every line of a file has the same fields, ids are global (never reused by another project,
// model or source), creators are a user id, and labels are explanations of the type "human".
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import type { FeatureDetail, FeatureSetInfo } from '../../shared/api'
import { UserError } from '../../shared/api'
import type { Project } from '../project'
import { residualHook } from '../sae/sae'
import { exportFeatures } from './feature-export'

/** The user Neuronpedia's seed (prisma/seed.ts) creates as the default creator of uploaded models, sources and activations. */
export const NEURONPEDIA_BOT_USER = 'clkht01d40000jv08hvalcvly'
/** Neuronpedia's explanation type of explanations written by people (lib/utils/autointerp.ts EXPLANATIONTYPE_HUMAN). */
export const HUMAN_EXPLANATION_TYPE = 'human'
/** Neuronpedia's source-id delimiter before additional info (lib/utils/source.ts): "3-res-jb__blah". */
const SOURCE_INFO_DELIMITER = '__'

export interface NeuronpediaExportOptions {
  /** Neuronpedia model id: lower-case letters, digits, "-" and "_" (default: the project's name, made so). */
  modelId?: string
  /** Source-set name, the same characters without "__" (default "featuretrace"); the source id is "<layer>-<set>__step<S>". */
  sourceSet?: string
  /** Id of the Neuronpedia user recorded as creator of every record and author of every label (default: Neuronpedia's bot user). */
  creatorId?: string
  /** Model.owner, the organisation that made the model (required by Neuronpedia; default "unknown"). */
  owner?: string
  /** Only this checkpoint step. */
  step?: number
  /** Features per batch file (Neuronpedia's exports use 128). */
  batchSize?: number
  /** Also write the feature-example JSONL of FORMATS.md as OUT/feature-examples.jsonl. */
  featureExamples?: boolean
}

export interface NeuronpediaExportResult {
  modelId: string
  sources: { id: string; step: number | null; layer: number | null; features: number; activations: number; explanations: number }[]
  dir: string
}

/** Neuronpedia's model id rule (schema.prisma: [a-zA-Z0-9-_], 1–128, lower-cased on entry): lower case only, so what we write is what it stores. */
const MODEL_ID = /^[a-z0-9_-]{1,128}$/
const SOURCE_SET = /^[a-z0-9][a-z0-9_-]{0,99}$/
const USER_ID = /^[A-Za-z0-9_-]{1,64}$/

function jsonl(rows: unknown[]): Buffer {
  return gzipSync(Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : ''), 'utf8'), { level: 5 })
}

/** A name made into a Neuronpedia id: lower case, runs of other characters as "-". */
function asId(s: string, max: number): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/_{2,}/g, '_')
    .replace(/^[-_]+|[-_]+$/g, '')
    .slice(0, max)
}

/** Checks the names Neuronpedia derives ids from, before anything is written; messages say what to give instead. */
export function neuronpediaNames(
  project: Project,
  opts: Pick<NeuronpediaExportOptions, 'modelId' | 'sourceSet' | 'creatorId' | 'owner'>
): { modelId: string; sourceSet: string; creatorId: string; owner: string } {
  const modelId = opts.modelId ?? (asId(project.info().name, 128) || 'featuretrace')
  if (!MODEL_ID.test(modelId)) {
    const hint = asId(modelId, 128)
    throw new UserError(
      `--model "${modelId}" is not a Neuronpedia model id: use lower-case letters, digits, "-" and "_" (at most 128)${hint ? `, e.g. "${hint}"` : ''}.`
    )
  }
  const sourceSet = opts.sourceSet ?? 'featuretrace'
  if (!SOURCE_SET.test(sourceSet) || sourceSet.includes(SOURCE_INFO_DELIMITER)) {
    const hint = asId(sourceSet, 100)
    throw new UserError(
      `--source-set "${sourceSet}" is not a Neuronpedia source-set name: use lower-case letters, digits, "-" and "_", starting with a letter or digit, ` +
        `without "${SOURCE_INFO_DELIMITER}" (Neuronpedia reads what follows "${SOURCE_INFO_DELIMITER}" in a source id as extra information)${hint ? `, e.g. "${hint}"` : ''}.`
    )
  }
  const creatorId = opts.creatorId ?? NEURONPEDIA_BOT_USER
  if (!USER_ID.test(creatorId))
    throw new UserError(
      `--creator-id "${creatorId}" is not a Neuronpedia user id (letters, digits, "-" and "_"): give the id of a user on the Neuronpedia instance you import into.`
    )
  const owner = (opts.owner ?? 'unknown').trim()
  if (!owner) throw new UserError("--owner is empty: Neuronpedia needs the model's owner (the organisation that made it).")
  return { modelId, sourceSet, creatorId, owner }
}

/**
 * The source id of an SAE at FeatureTrace layer L (the residual stream after block L): Neuronpedia's layer is the
 * block of the blocks.B.hook_resid_post it reads (B = L − 1), "e" for the embeddings (L = 0).
 */
export function neuronpediaSourceId(layer: number, sourceSet: string, info: string): string {
  return `${layer === 0 ? 'e' : layer - 1}-${sourceSet}${SOURCE_INFO_DELIMITER}${info}`
}

/** A record id no other project, model, source or feature shares: a hash of all of them. */
function recordId(kind: string, parts: (string | number)[]): string {
  return `ft${kind}${createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 30)}`
}

/** The MLP width of a checkpoint's config.json (Neuronpedia's neuronsPerLayer), or 0 when it does not say. */
function mlpWidth(config: Record<string, unknown>, dModel: number): number {
  const v = config.intermediate_size ?? config.n_inner ?? (config.model_type === 'gpt2' ? 4 * dModel : null)
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : 0
}

function featureRow(
  ids: { modelId: string; source: string; sourceSet: string; creatorId: string; hook: string },
  d: FeatureDetail,
  maxAct: number,
  createdAt: string
): Record<string, unknown> {
  const h = d.histogram
  const lh = d.logitEffects?.histogram
  const edge = (i: number, n: number): number => h!.lo * (h!.hi / h!.lo) ** (i / n)
  return {
    modelId: ids.modelId,
    layer: ids.source,
    index: String(d.feature),
    sourceSetName: ids.sourceSet,
    creatorId: ids.creatorId,
    createdAt,
    maxActApprox: maxAct,
    hasVector: false,
    vector: [],
    vectorLabel: null,
    hookName: ids.hook,
    topkCosSimIndices: d.neighbours.map((x) => x.feature),
    topkCosSimValues: d.neighbours.map((x) => x.cosine),
    neuron_alignment_indices: [],
    neuron_alignment_values: [],
    neuron_alignment_l1: [],
    correlated_neurons_indices: [],
    correlated_neurons_pearson: [],
    correlated_neurons_l1: [],
    correlated_features_indices: d.correlations?.map((x) => x.feature) ?? [],
    correlated_features_pearson: d.correlations?.map((x) => x.r) ?? [],
    correlated_features_l1: [],
    neg_str: d.logitEffects?.negative.map((t) => t.text) ?? [],
    neg_values: d.logitEffects?.negative.map((t) => t.value) ?? [],
    pos_str: d.logitEffects?.positive.map((t) => t.text) ?? [],
    pos_values: d.logitEffects?.positive.map((t) => t.value) ?? [],
    frac_nonzero: d.density ?? 0,
    // Bar heights and the centre of each (log-spaced) activation bin.
    freq_hist_data_bar_heights: h ? h.counts : [],
    freq_hist_data_bar_values: h ? h.counts.map((_, i) => Math.sqrt(edge(i, h.counts.length) * edge(i + 1, h.counts.length))) : [],
    // The logit effects over the vocabulary: bar heights and the centre of each (equal-width) bin.
    logits_hist_data_bar_heights: lh ? lh.counts : [],
    logits_hist_data_bar_values: lh ? lh.counts.map((_, i) => lh.lo + ((i + 0.5) * (lh.hi - lh.lo)) / lh.counts.length) : [],
    decoder_weights_dist: []
  }
}

/** A feature's example contexts, each once (the samplers pick the same context more than once), with the samplers that picked it. */
function distinctExamples(d: FeatureDetail): { tokens: string[]; acts: number[]; samplers: string[] }[] {
  const seen = new Map<string, { tokens: string[]; acts: number[]; samplers: string[] }>()
  for (const e of d.examples) {
    const key = JSON.stringify([e.tokens, e.acts])
    const known = seen.get(key)
    if (known) {
      if (!known.samplers.includes(e.sampler)) known.samplers.push(e.sampler)
    } else seen.set(key, { tokens: e.tokens, acts: e.acts, samplers: [e.sampler] })
  }
  return [...seen.values()]
}

/** Writes every feature set made from an SAE (one Neuronpedia source per checkpoint and layer). */
export function exportNeuronpedia(project: Project, out: string, opts: NeuronpediaExportOptions = {}): NeuronpediaExportResult {
  const { modelId, sourceSet, creatorId, owner } = neuronpediaNames(project, opts)
  const sets = project.features
    .currentSets()
    .filter((s): s is FeatureSetInfo & { layer: number } => s.layer !== null && (opts.step === undefined || s.step === opts.step))
  if (sets.length === 0) {
    throw new UserError(
      `No feature statistics${opts.step === undefined ? '' : ` at step ${opts.step}`} to export: run "Feature statistics" (the feature-stats job) on the SAEs first.`
    )
  }
  const batchSize = opts.batchSize ?? 128
  const createdAt = new Date().toISOString()
  if (existsSync(out) && readdirSync(out).length > 0) throw new UserError(`${out} already exists and is not empty; export into a new folder.`)
  const info = project.info()
  // Another project (or a copy made later) never makes the same ids, even under the same model and source names.
  const projectKey = `${info.name}@${info.createdAt}`
  const checkpoints = project.checkpoints.list()
  const layers = Math.max(...sets.map((s) => s.layer), ...checkpoints.map((c) => c.layers ?? 0))
  const withConfig = checkpoints.find((c) => c.path !== null)
  const model = {
    id: modelId,
    displayName: modelId,
    displayNameShort: modelId,
    creatorId,
    owner,
    layers,
    neuronsPerLayer: withConfig ? mlpWidth(project.checkpoints.detail(withConfig.id).config, withConfig.dModel) : 0,
    dimension: checkpoints[0]?.dModel ?? null,
    visibility: 'PRIVATE',
    createdAt,
    updatedAt: createdAt
  }
  const sourceSetRow = {
    modelId,
    name: sourceSet,
    description: `FeatureTrace SAE features of ${info.name}`,
    creatorName: 'FeatureTrace',
    creatorId,
    visibility: 'PRIVATE',
    hasDashboards: true,
    urls: [],
    createdAt
  }
  const tmp = `${out}.partial-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  const result: NeuronpediaExportResult = { modelId, sources: [], dir: out }
  try {
    for (const set of sets) {
      const id = neuronpediaSourceId(set.layer, sourceSet, set.step !== null ? `step${set.step}` : `set${set.id}`)
      const hook = residualHook(set.layer).hook
      const dir = join(tmp, modelId, id)
      for (const sub of ['features', 'activations', 'explanations']) mkdirSync(join(dir, sub), { recursive: true })
      writeFileSync(join(dir, 'model.jsonl'), JSON.stringify(model) + '\n')
      writeFileSync(join(dir, 'sourceset.jsonl'), JSON.stringify(sourceSetRow) + '\n')
      const source = {
        id,
        modelId,
        setName: sourceSet,
        creatorId,
        visibility: 'PRIVATE',
        hasDashboards: true,
        notes: `${set.name} (FeatureTrace layer ${set.layer}: ${hook})`,
        createdAt
      }
      writeFileSync(join(dir, 'source.jsonl'), JSON.stringify(source) + '\n')
      const counts = { id, step: set.step, layer: set.layer, features: 0, activations: 0, explanations: 0 }
      const ids = { modelId, source: id, sourceSet, creatorId, hook }
      for (let b = 0, start = 0; start < set.nFeatures; b++, start += batchSize) {
        const features: unknown[] = []
        const activations: unknown[] = []
        const explanations: unknown[] = []
        for (const r of project.features.list({ setId: set.id, offset: start, limit: batchSize, sort: 'feature' }).rows) {
          const d = project.features.get(set.id, r.feature)
          const examples = distinctExamples(d)
          // Example values are stored as float16: one may round above the feature's float32 maximum.
          const maxAct = Math.max(d.maxAct ?? 0, ...examples.flatMap((e) => e.acts))
          features.push(featureRow(ids, d, maxAct, createdAt))
          examples.forEach((e, i) => {
            const max = Math.max(...e.acts)
            activations.push({
              id: recordId('a', [projectKey, modelId, id, d.feature, i]),
              tokens: e.tokens,
              index: String(d.feature),
              layer: id,
              modelId,
              maxValue: max,
              maxValueTokenIndex: e.acts.indexOf(max),
              minValue: Math.min(...e.acts),
              values: e.acts,
              creatorId,
              dataSource: `featuretrace:${e.samplers.join('+')}`,
              dataIndex: null,
              createdAt
            })
          })
          for (const l of d.labels) {
            if (!l.category) continue
            explanations.push({
              id: recordId('e', [projectKey, modelId, id, d.feature, l.annotator]),
              modelId,
              layer: id,
              index: String(d.feature),
              description: l.note ? `${l.category}: ${l.note}` : l.category,
              authorId: creatorId,
              typeName: HUMAN_EXPLANATION_TYPE,
              explanationModelName: null,
              notes: `FeatureTrace label by ${l.annotator}`,
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
    if (opts.featureExamples !== false)
      exportFeatures(project, join(tmp, 'feature-examples.jsonl'), opts.step === undefined ? {} : { checkpoint: String(opts.step) })
    rmSync(out, { recursive: true, force: true })
    renameSync(tmp, out)
    return result
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true })
    throw err
  }
}

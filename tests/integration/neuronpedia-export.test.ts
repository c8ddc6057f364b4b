// The Neuronpedia export against Neuronpedia's own rules, encoded here as facts read from its source
// (github.com/hijohnnylin/neuronpedia): the columns of each table and which are required (schema.prisma: not
// null, no default), how its importer inserts them (app/api/admin/import/route.ts: prisma.create for model,
// source set and source, which refuses unknown fields; lib/db/import.ts: jsonb_to_recordset with the first
// line's columns and "ON CONFLICT DO NOTHING" for the batches), its id rules (Model.id; a source id's layer and
// set as lib/utils/source.ts reads them) and the explanation type it gives people's explanations ("human").
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportNeuronpedia, NEURONPEDIA_BOT_USER } from '../../src/core/analysis/neuronpedia'
import { Project } from '../../src/core/project'
import type { FeatureRecord } from '../../src/core/store/feature-blobs'
import { tempDir } from '../helpers'

type Row = Record<string, unknown>

/** schema.prisma: required = not null without a default (what an import must give); optional = every other column. */
const TABLES: Record<string, { required: string[]; optional: string[] }> = {
  Model: {
    required: ['id', 'creatorId', 'layers', 'neuronsPerLayer', 'owner'],
    optional: [
      'displayNameShort',
      'displayName',
      'tlensId',
      'openRouterId',
      'dimension',
      'thinking',
      'visibility',
      'defaultSourceSetName',
      'defaultSourceId',
      'defaultGraphSourceSetName',
      'inferenceEnabled',
      'instruct',
      'createdAt',
      'updatedAt',
      'website'
    ]
  },
  SourceSet: {
    required: ['modelId', 'name', 'description', 'creatorName', 'creatorId'],
    optional: [
      'hasDashboards',
      'allowInferenceSearch',
      'visibility',
      'type',
      'urls',
      'creatorEmail',
      'releaseName',
      'hasGraphs',
      'graphEnabled',
      'similarityMatrixEnabled',
      'defaultOfModelId',
      'defaultGraphModelId',
      'defaultRange',
      'defaultShowBreaks',
      'showDfa',
      'showCorrelated',
      'showHeadAttribution',
      'showUmap',
      'createdAt'
    ]
  },
  Source: {
    required: ['id', 'modelId', 'setName', 'creatorId'],
    optional: [
      'hasDashboards',
      'inferenceEnabled',
      'saelensConfig',
      'saelensRelease',
      'saelensSaeId',
      'hfRepoId',
      'hfFolderId',
      'visibility',
      'defaultOfModelId',
      'hasUmap',
      'hasUmapLogSparsity',
      'hasUmapClusters',
      'num_prompts',
      'num_tokens_in_prompt',
      'dataset',
      'notes',
      'cosSimMatchModelId',
      'cosSimMatchSourceId',
      'createdAt'
    ]
  },
  Neuron: {
    required: ['modelId', 'layer', 'index'],
    optional: [
      'sourceSetName',
      'creatorId',
      'createdAt',
      'maxActApprox',
      'hasVector',
      'vector',
      'vectorLabel',
      'vectorDefaultSteerStrength',
      'hookName',
      'topkCosSimIndices',
      'topkCosSimValues',
      'neuron_alignment_indices',
      'neuron_alignment_values',
      'neuron_alignment_l1',
      'correlated_neurons_indices',
      'correlated_neurons_pearson',
      'correlated_neurons_l1',
      'correlated_features_indices',
      'correlated_features_pearson',
      'correlated_features_l1',
      'neg_str',
      'neg_values',
      'pos_str',
      'pos_values',
      'frac_nonzero',
      'freq_hist_data_bar_heights',
      'freq_hist_data_bar_values',
      'logits_hist_data_bar_heights',
      'logits_hist_data_bar_values',
      'decoder_weights_dist',
      'umap_cluster',
      'umap_log_feature_sparsity',
      'umap_x',
      'umap_y'
    ]
  },
  Activation: {
    // id has a default (cuid) but an export's ids are the keys "on conflict do nothing" compares, so it is given.
    required: ['id', 'tokens', 'index', 'layer', 'modelId', 'maxValue', 'maxValueTokenIndex', 'minValue', 'values', 'creatorId'],
    optional: [
      'dataIndex',
      'dataSource',
      'dfaValues',
      'dfaTargetIndex',
      'dfaMaxValue',
      'zQIndices',
      'zKIndices',
      'zValues',
      'createdAt',
      'lossValues',
      'logitContributions',
      'binMin',
      'binMax',
      'binContains',
      'qualifyingTokenIndex'
    ]
  },
  Explanation: {
    required: ['id', 'modelId', 'layer', 'index', 'description', 'authorId'],
    optional: [
      'triggeredByUserId',
      'notes',
      'scoreV1',
      'scoreV2',
      'umap_x',
      'umap_y',
      'umap_cluster',
      'umap_log_feature_sparsity',
      'typeName',
      'explanationModelName',
      'createdAt',
      'updatedAt'
    ]
  }
}
/** Explanation types the Neuronpedia code base names (ExplanationType rows are loaded from its config; "human" is the type of people's explanations). */
const HUMAN = 'human'
/** schema.prisma's rule for Model.id (zod: /^[a-zA-Z0-9-_]+$/, 1–128, lower-cased on entry). */
const MODEL_ID = /^[a-zA-Z0-9-_]{1,128}$/

/** lib/utils/source.ts: getLayerNumFromSource and getSourceSetNameFromSource. */
function sourceLayer(source: string): number {
  const first = source.split('-')[0]!
  return first === 'e' ? 0 : parseInt(first, 10)
}
function sourceSetOf(source: string): string {
  return source.substring(source.indexOf('-') + 1).split('__')[0]!
}

interface Export {
  model: Row[]
  sourceset: Row[]
  source: Row[]
  features: Row[][]
  activations: Row[][]
  explanations: Row[][]
  sourceDirs: string[]
}

function readExport(out: string): Export {
  const e: Export = { model: [], sourceset: [], source: [], features: [], activations: [], explanations: [], sourceDirs: [] }
  for (const model of readdirSync(out).filter((f) => f !== 'feature-examples.jsonl')) {
    for (const src of readdirSync(join(out, model))) {
      const dir = join(out, model, src)
      e.sourceDirs.push(`${model}/${src}`)
      for (const f of ['model', 'sourceset', 'source'] as const)
        e[f].push(
          ...readFileSync(join(dir, `${f}.jsonl`), 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Row)
        )
      for (const sub of ['features', 'activations', 'explanations'] as const) {
        for (const file of readdirSync(join(dir, sub)).sort())
          e[sub].push(
            gunzipSync(readFileSync(join(dir, sub, file)))
              .toString('utf8')
              .split('\n')
              .filter(Boolean)
              .map((l) => JSON.parse(l) as Row)
          )
      }
    }
  }
  return e
}

/** Checks every record against its table; returns the problems (empty when Neuronpedia's import would take them all). */
function problems(e: Export, creatorId: string): string[] {
  const out: string[] = []
  const check = (table: string, rows: Row[], where: string): void => {
    const t = TABLES[table]!
    for (const r of rows) {
      for (const k of t.required) if (r[k] === undefined || r[k] === null) out.push(`${where}: ${table}.${k} missing in ${JSON.stringify(r).slice(0, 120)}`)
      for (const k of Object.keys(r)) if (!t.required.includes(k) && !t.optional.includes(k)) out.push(`${where}: ${table} has no column ${k}`)
    }
  }
  check('Model', e.model, 'model.jsonl')
  check('SourceSet', e.sourceset, 'sourceset.jsonl')
  check('Source', e.source, 'source.jsonl')
  const batch = (table: string, files: Row[][]): void => {
    for (const rows of files) {
      check(table, rows, `${table} batch`)
      // jsonb_to_recordset takes the first line's columns: a field absent there is dropped from every line.
      const first = JSON.stringify(Object.keys(rows[0] ?? {}).sort())
      for (const r of rows) if (JSON.stringify(Object.keys(r).sort()) !== first) out.push(`${table} batch: a line's fields differ from the first line's`)
    }
  }
  batch('Neuron', e.features)
  batch('Activation', e.activations)
  batch('Explanation', e.explanations)
  for (const m of e.model)
    if (!MODEL_ID.test(String(m.id)) || String(m.id) !== String(m.id).toLowerCase()) out.push(`model id ${String(m.id)} is not what Neuronpedia stores`)
  for (const m of e.model) if (typeof m.owner !== 'string' || !m.owner.trim()) out.push('Model.owner empty')
  for (const r of [...e.model, ...e.sourceset, ...e.source, ...e.features.flat(), ...e.activations.flat()])
    if (r.creatorId !== creatorId) out.push(`creatorId ${String(r.creatorId)}`)
  const neurons = new Set(e.features.flat().map((f) => `${String(f.modelId)}|${String(f.layer)}|${String(f.index)}`))
  const sources = new Set(e.source.map((s) => `${String(s.modelId)}|${String(s.id)}`))
  for (const f of e.features.flat()) if (!sources.has(`${String(f.modelId)}|${String(f.layer)}`)) out.push(`feature of unknown source ${String(f.layer)}`)
  for (const a of [...e.activations.flat(), ...e.explanations.flat()])
    if (!neurons.has(`${String(a.modelId)}|${String(a.layer)}|${String(a.index)}`)) out.push(`record of unknown feature ${String(a.layer)}/${String(a.index)}`)
  for (const x of e.explanations.flat()) {
    if (x.typeName !== HUMAN) out.push(`explanation type ${String(x.typeName)}`)
    if (x.authorId !== creatorId) out.push(`explanation author ${String(x.authorId)} is not the user id`)
  }
  const ids = [...e.activations.flat(), ...e.explanations.flat()].map((r) => String(r.id))
  if (new Set(ids).size !== ids.length) out.push('ids repeat within the export')
  return out
}

const ROUNDS_UP = 2.0015 // float16 stores it as 2.001953125

function features(tokens: number): FeatureRecord[] {
  return Array.from({ length: 5 }, (_, f) => {
    const ctx = Array.from({ length: 6 }, (_, i) => (f + i) % tokens)
    const acts = Float32Array.from([0, 0.5, f === 1 ? ROUNDS_UP : 1.5, 0, 0.25, 0])
    return {
      feature: f,
      density: 0.01 * (f + 1),
      maxAct: f === 1 ? ROUNDS_UP : 1.5,
      meanAct: 0.5,
      dead: false,
      langClass: null,
      langCounts: null,
      topTokens: '',
      histogram: null,
      neighbours: [{ feature: (f + 1) % 5, cosine: 0.5 }],
      // The same context found by two samplers, and one more.
      examples: [
        { sampler: 'paper', tokens: ctx, acts },
        { sampler: 'top', tokens: ctx, acts },
        { sampler: 'interval', tokens: ctx.slice(0, 4), acts: acts.slice(0, 4) }
      ]
    }
  })
}

/** A project with SAE-only checkpoints at steps 0 and 1000 and a layer-2 feature set on each, two features labelled. */
function makeProject(dir: string): Project {
  const p = Project.open(dir)
  const tokens = ['a', 'b', 'c', 'd', 'e', 'f', 'g']
  for (const step of [0, 1000]) {
    const c = p.checkpoints.addWeightless(step, 16, { test: true })
    const set = p.features.createSet({ name: `step ${step} · layer 2`, source: 'import', checkpointId: c.id, layer: 2 }, tokens, features(tokens.length))
    p.labels.setLabel(set.id, 1, 'Ana Smith', 'Token-level', 'fires on c')
    p.labels.setLabel(set.id, 1, 'bo', 'Uninterpretable', '')
    p.labels.setLabel(set.id, 3, 'bo', 'Token-level', 'fires on d')
  }
  return p
}

let t: ReturnType<typeof tempDir>
let a: Project
let b: Project
beforeAll(() => {
  t = tempDir('ft-np-')
  // Two projects of the same name: only their ids can tell their records apart.
  a = makeProject(join(t.dir, 'one', 'tiny'))
  b = makeProject(join(t.dir, 'two', 'tiny'))
})
afterAll(() => {
  a.close()
  b.close()
  t.cleanup()
})

describe('Neuronpedia export', () => {
  it('every record has every field Neuronpedia requires, only columns it has, and relations that resolve', () => {
    const out = join(t.dir, 'np-a')
    const r = exportNeuronpedia(a, out, { modelId: 'tiny-llama', sourceSet: 'res_ft-16' })
    expect(r.sources.map((s) => s.id)).toEqual(['1-res_ft-16__step0', '1-res_ft-16__step1000'])
    const e = readExport(out)
    expect(e.sourceDirs).toEqual(['tiny-llama/1-res_ft-16__step0', 'tiny-llama/1-res_ft-16__step1000'])
    expect(problems(e, NEURONPEDIA_BOT_USER)).toEqual([])
    expect(e.model[0]).toMatchObject({ id: 'tiny-llama', layers: 2, owner: 'unknown', creatorId: NEURONPEDIA_BOT_USER })
    // The layer in the source id is the block of blocks.B.hook_resid_post Neuronpedia derives from it.
    for (const s of e.source) {
      expect(sourceLayer(String(s.id))).toBe(1)
      expect(sourceSetOf(String(s.id))).toBe('res_ft-16')
    }
    expect(e.features.flat().map((f) => f.hookName)).toEqual(Array(10).fill('blocks.1.hook_resid_post'))
  })

  it("each context once, values never above the feature's max activation, labels as human explanations by the creator user", () => {
    const out = join(t.dir, 'np-a2')
    exportNeuronpedia(a, out, { modelId: 'tiny-llama', creatorId: 'cuser123', owner: 'FeatureTrace demo' })
    const e = readExport(out)
    expect(problems(e, 'cuser123')).toEqual([])
    const acts = e.activations.flat()
    // 5 features × 2 distinct contexts per set, 2 sets.
    expect(acts).toHaveLength(20)
    expect(acts.filter((x) => x.index === '1' && x.layer === '1-featuretrace__step0').map((x) => x.dataSource)).toEqual([
      'featuretrace:paper+top',
      'featuretrace:interval'
    ])
    for (const f of e.features.flat()) {
      const mine = acts.filter((x) => x.layer === f.layer && x.index === f.index)
      for (const x of mine) {
        expect(x.maxValue as number).toBeLessThanOrEqual(f.maxActApprox as number)
        expect((x.values as number[])[x.maxValueTokenIndex as number]).toBe(x.maxValue)
      }
    }
    expect(e.features.flat().find((f) => f.index === '1')!.maxActApprox).toBeGreaterThan(ROUNDS_UP)
    const ex = e.explanations.flat().filter((x) => x.layer === '1-featuretrace__step1000')
    expect(ex.map((x) => [x.index, x.description, x.notes])).toEqual([
      ['1', 'Token-level: fires on c', 'FeatureTrace label by Ana Smith'],
      ['1', 'Uninterpretable', 'FeatureTrace label by bo'],
      ['3', 'Token-level: fires on d', 'FeatureTrace label by bo']
    ])
    expect(e.model[0]).toMatchObject({ owner: 'FeatureTrace demo', creatorId: 'cuser123' })
  })

  it('two projects, or one under two model names, share no activation or explanation id', () => {
    const ids = (out: string): string[] => {
      const e = readExport(out)
      return [...e.activations.flat(), ...e.explanations.flat()].map((r) => String(r.id))
    }
    exportNeuronpedia(a, join(t.dir, 'x1'), { modelId: 'm' })
    exportNeuronpedia(b, join(t.dir, 'x2'), { modelId: 'm' })
    exportNeuronpedia(a, join(t.dir, 'x3'), { modelId: 'm2' })
    const [one, two, three] = [ids(join(t.dir, 'x1')), ids(join(t.dir, 'x2')), ids(join(t.dir, 'x3'))]
    expect(one.length).toBe(26)
    expect(one.filter((id) => two.includes(id) || three.includes(id))).toEqual([])
    expect(two.filter((id) => three.includes(id))).toEqual([])
    // The same export again makes the same ids: a re-import adds nothing twice.
    exportNeuronpedia(a, join(t.dir, 'x4'), { modelId: 'm' })
    expect(ids(join(t.dir, 'x4'))).toEqual(one)
  })

  it.each([
    [
      { modelId: 'Pythia.160M' },
      /--model "Pythia\.160M" is not a Neuronpedia model id: use lower-case letters, digits, "-" and "_" \(at most 128\), e\.g\. "pythia-160m"/
    ],
    [{ sourceSet: 'res__ft' }, /--source-set "res__ft" is not a Neuronpedia source-set name: .*without "__"/],
    [{ sourceSet: 'Res-FT' }, /--source-set "Res-FT" is not a Neuronpedia source-set name.*e\.g\. "res-ft"/],
    [{ creatorId: 'Ana Smith' }, /--creator-id "Ana Smith" is not a Neuronpedia user id/],
    [{ owner: '  ' }, /--owner is empty/]
  ])('refuses names Neuronpedia would change or misread, before writing anything: %o', (opts, message) => {
    const out = join(t.dir, `bad-${Math.random().toString(36).slice(2)}`)
    expect(() => exportNeuronpedia(a, out, opts)).toThrow(message)
    expect(readdirSync(t.dir).filter((f) => f.startsWith(out.split('/').at(-1)!))).toEqual([])
  })

  it("the project's name becomes the model id when none is given", () => {
    const out = join(t.dir, 'np-default')
    expect(exportNeuronpedia(a, out, {}).modelId).toBe('tiny')
  })
})

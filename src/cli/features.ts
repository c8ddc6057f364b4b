// `featuretrace` feature and label commands: feature-example sets in and out, their language, the taxonomy,
// labels in and out and carried to a retrained SAE.
import { classifyFeature, PAPER_RULE } from '../core/analysis/language'
import { readFeatureExamples } from '../core/io/feature-examples'
import { call, CliError, intOption, parse, PROJECT, rangeOption, requireOptions, withProject } from './options'

export const FEATURES_USAGE = `  classify-language FILE.jsonl [--threshold 0.9]
        The language of each feature of a feature-example set by Inaba et al.'s rule, as JSON:
        {"features": [{"checkpoint", "feature", "counts": {"en", "ja"}, "class"}], "totals": {...}}.
  import-features FILE.jsonl --project DIR [--name NAME]
        Import a feature-example set made elsewhere (labels and notes included), one set per checkpoint.
  export-features --project DIR [--checkpoint C] [--annotator A] [--examples N] --out FILE.jsonl
        Write features (examples, label, note) as a feature-example set.
  taxonomy --project DIR [--set "Token-level,Concept-level,…"]   Show or replace the label categories.
  labels export --project DIR --out FILE.csv|FILE.json
  labels import FILE.csv|FILE.json --project DIR [--overwrite]
        Merge labels, reporting conflicts (kept as they are unless --overwrite).
  labels carry --project DIR --from SET_ID [--to SET_ID] [--min-cosine 0.7] [--dry-run]
        Copy the labels of a superseded SAE's feature set to the SAE that replaced it, each labelled
        feature matched one-to-one by decoder cosine; prints every match with its cosine.`

export async function cmdClassifyLanguage(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { threshold: { type: 'string' } })
  if (positionals.length !== 1) throw new CliError('classify-language needs one FILE.jsonl (a feature-example set).')
  const threshold = values.threshold === undefined ? 0.9 : Number(values.threshold)
  if (!(threshold > 0 && threshold < 1)) throw new CliError('--threshold must be between 0 and 1.')
  const features = readFeatureExamples(positionals[0]!).map((f) => {
    const c = classifyFeature(f.examples, PAPER_RULE, threshold)
    return { checkpoint: f.checkpoint ?? null, feature: f.feature, counts: { en: c.counts.en ?? 0, ja: c.counts.ja ?? 0 }, class: c.class }
  })
  const totals: Record<string, { en: number; ja: number; mix: number }> = {}
  for (const f of features) {
    const t = (totals[String(f.checkpoint)] ??= { en: 0, ja: 0, mix: 0 })
    if (f.class === 'en' || f.class === 'ja' || f.class === 'mix') t[f.class]++
  }
  console.log(JSON.stringify({ features, totals }))
}

export async function cmdImportFeatures(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...PROJECT, name: { type: 'string' } })
  if (positionals.length !== 1) throw new CliError('import-features needs one FILE.jsonl.')
  await withProject(values, async (ws) => {
    const sets = await call(ws, 'features.import', { path: positionals[0]!, name: values.name })
    for (const s of sets)
      console.log(
        `imported "${s.name}": ${s.nFeatures} features${s.step !== null ? ` (checkpoint step ${s.step})` : s.checkpointLabel ? ` (checkpoint "${s.checkpointLabel}", not registered)` : ''}`
      )
  })
}

export async function cmdExportFeatures(args: string[]): Promise<void> {
  const { values } = parse(args, {
    ...PROJECT,
    checkpoint: { type: 'string' },
    out: { type: 'string' },
    annotator: { type: 'string' },
    examples: { type: 'string' }
  })
  requireOptions('export-features', values, ['out'])
  await withProject(values, async (ws) => {
    const r = await call(ws, 'features.export', {
      path: values.out!,
      checkpoint: values.checkpoint,
      annotator: values.annotator,
      examples: intOption(values.examples, 'examples')
    })
    console.log(`wrote ${r.features} features to ${values.out!}`)
  })
}

export async function cmdTaxonomy(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, set: { type: 'string' } })
  await withProject(values, async (ws) => {
    const names =
      values.set === undefined ? await call(ws, 'taxonomy.get') : await call(ws, 'taxonomy.set', { names: values.set.split(',').map((x) => x.trim()) })
    names.forEach((n, i) => console.log(`${i + 1}\t${n}`))
  })
}

async function exportLabels(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, out: { type: 'string' } })
  requireOptions('labels export', values, ['out'])
  await withProject(values, async (ws) => console.log(`wrote ${(await call(ws, 'labels.export', { path: values.out! })).labels} labels to ${values.out!}`))
}

async function importLabels(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...PROJECT, overwrite: { type: 'boolean' } })
  if (positionals.length !== 1) throw new CliError('labels import needs one FILE (.csv or .json).')
  await withProject(values, async (ws) => {
    const r = await call(ws, 'labels.import', { path: positionals[0]!, overwrite: Boolean(values.overwrite) })
    console.log(`${r.added} added, ${r.overwritten} overwritten, ${r.unchanged} unchanged, ${r.conflicts.length} conflicts, ${r.skipped.length} skipped`)
    for (const c of r.conflicts)
      console.log(`conflict  ${c.set} #${c.feature} ${c.annotator}: kept "${c.ours}", file has "${c.theirs}" (--overwrite to take the file's)`)
    for (const s of r.skipped) console.log(`skipped   row ${s.row}: ${s.reason}`)
  })
}

async function carryLabels(args: string[]): Promise<void> {
  const { values } = parse(args, {
    ...PROJECT,
    from: { type: 'string' },
    to: { type: 'string' },
    'min-cosine': { type: 'string' },
    'dry-run': { type: 'boolean' }
  })
  requireOptions('labels carry', values, ['from'])
  const minCosine = rangeOption(values['min-cosine'], 'min-cosine', -1, 1, 0.7)
  const fromSetId = intOption(values.from, 'from')!
  const toSetId = intOption(values.to, 'to')
  await withProject(values, async (ws) => {
    const preview = await call(ws, 'labels.carryPreview', { fromSetId, toSetId })
    console.log(
      `from "${preview.from.name}" (set ${preview.from.id}) to "${preview.to.name}" (set ${preview.to.id}), matched by decoder cosine (${preview.method})`
    )
    console.log(['from', 'to', 'cosine', 'labels', 'carried'].join('\t'))
    for (const p of preview.pairs) {
      const carried = p.cosine !== null && p.cosine >= minCosine ? p.labels - p.targetLabels : 0
      console.log([p.fromFeature, p.toFeature ?? '—', p.cosine?.toFixed(4) ?? '—', p.labels, carried].join('\t'))
    }
    if (values['dry-run']) return
    const r = await call(ws, 'labels.carry', { fromSetId, toSetId, minCosine })
    console.log(`${r.carried} labels carried, ${r.keptExisting} kept where the target already had one, ${r.belowThreshold} below cosine ${minCosine}`)
  })
}

export async function cmdLabels(args: string[]): Promise<void> {
  const [sub, ...rest] = args
  if (sub === 'export') return exportLabels(rest)
  if (sub === 'import') return importLabels(rest)
  if (sub === 'carry') return carryLabels(rest)
  throw new CliError('Use `labels export --out FILE.csv|json`, `labels import FILE` or `labels carry --from SET`.')
}

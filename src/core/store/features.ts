// Feature sets and their features: statistics, examples (compact blobs, feature-blobs.ts), neighbours, the
// paged and filtered list a browser scrolls, one feature's dashboard. Labels live in labels.ts.
import { z } from 'zod'
import type { FeatureDetail, FeatureExampleView, FeatureListQuery, FeatureSetInfo, FeatureSummary, SaeQuality } from '../../shared/api'
import { DENSE_DENSITY, EXAMPLE_INTERVALS, UserError } from '../../shared/api'
import { Rng } from '../random'
import type { Db } from './database'
import { decodeExamples, decodeLogitEffects, featureColumns, floats, type FeatureRecord } from './feature-blobs'
import type { LabelRepository } from './labels'
import { storedJson } from './stored-json'

interface SetRow {
  id: number
  name: string
  source: 'sae' | 'import'
  sae_id: number | null
  checkpoint_id: number | null
  checkpoint_label: string | null
  layer: number | null
  n_features: number
  created_at: string
  updated_at: string | null
  step: number | null
  superseded: number
  label_count: number
}

function toSet(r: SetRow): FeatureSetInfo {
  return {
    id: r.id,
    name: r.name,
    source: r.source,
    saeId: r.sae_id,
    checkpointId: r.checkpoint_id,
    checkpointLabel: r.checkpoint_label,
    step: r.step,
    layer: r.layer,
    nFeatures: r.n_features,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    superseded: r.superseded === 1,
    labelCount: r.label_count
  }
}

interface FeatureRow {
  set_id: number
  feature: number
  density: number | null
  max_act: number | null
  mean_act: number | null
  dead: number
  lang_class: string | null
  lang_counts: string | null
  top_tokens: string
  histogram: Buffer | null
  neighbours: Buffer | null
  examples: Buffer | null
  logit_effects: Buffer | null
  correlations: Buffer | null
}

/** What the statistics job records about a set beside its features (migration 12). */
export interface SetStatsNotes {
  /** How the logit effects were computed, or why there are none. */
  logitNote: string | null
  rows: number
  heldOut: boolean
}

const SET_SELECT = `SELECT s.*, c.step, (sae.superseded_at IS NOT NULL) AS superseded,
    (SELECT count(*) FROM label l WHERE l.set_id = s.id AND l.category IS NOT NULL) AS label_count
  FROM feature_set s LEFT JOIN checkpoint c ON c.id = s.checkpoint_id LEFT JOIN sae ON sae.id = s.sae_id`

/** The activation interval an interval-sampler example was kept for, as feature-stats.ts buckets its peak. */
function intervalOf(acts: ArrayLike<number>, max: number): { index: number; lo: number; hi: number } {
  let peak = 0
  for (let i = 0; i < acts.length; i++) peak = Math.max(peak, acts[i]!)
  const index = Math.min(EXAMPLE_INTERVALS - 1, Math.floor((EXAMPLE_INTERVALS * peak) / max))
  return { index, lo: (index * max) / EXAMPLE_INTERVALS, hi: ((index + 1) * max) / EXAMPLE_INTERVALS }
}

export class FeatureRepository {
  /** Token tables by set: read once per set, not on every dashboard. */
  private readonly tokenCache = new Map<number, string[]>()

  constructor(
    private readonly db: Db,
    private readonly labels: LabelRepository
  ) {}

  sets(): FeatureSetInfo[] {
    return (this.db.prepare(`${SET_SELECT} ORDER BY coalesce(c.step, 0), superseded, s.id`).all() as SetRow[]).map(toSet)
  }

  /** The sets of current SAEs and imported sets: what series-wide analyses and exports walk (superseded sets are left out). */
  currentSets(): FeatureSetInfo[] {
    return this.sets().filter((s) => !s.superseded)
  }

  set(id: number): FeatureSetInfo {
    const r = this.db.prepare(`${SET_SELECT} WHERE s.id = ?`).get(id) as SetRow | undefined
    if (!r) throw new UserError(`No feature set with id ${id} in this project.`, 'not-found')
    return toSet(r)
  }

  /** Creates a set and its features in one transaction: a set is never half-written, and never replaces another. */
  createSet(
    info: {
      name: string
      source: 'sae' | 'import'
      saeId?: number | null
      checkpointId?: number | null
      checkpointLabel?: string | null
      layer?: number | null
    },
    tokens: string[],
    features: Iterable<FeatureRecord>
  ): FeatureSetInfo {
    return this.db.transaction(() => {
      const existing = this.db.prepare('SELECT id FROM feature_set WHERE name = ?').get(info.name) as { id: number } | undefined
      if (existing) throw new UserError(`A feature set named "${info.name}" already exists; choose another --name.`)
      const id = Number(
        this.db
          .prepare(
            `INSERT INTO feature_set (name, source, sae_id, checkpoint_id, checkpoint_label, layer, n_features, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
          )
          .run(
            info.name,
            info.source,
            info.saeId ?? null,
            info.checkpointId ?? null,
            info.checkpointLabel ?? null,
            info.layer ?? null,
            0,
            new Date().toISOString()
          ).lastInsertRowid
      )
      const tok = this.db.prepare('INSERT INTO set_token (set_id, idx, text) VALUES (?, ?, ?)')
      tokens.forEach((t, i) => tok.run(id, i, t))
      const ins = this.db.prepare(
        `INSERT INTO feature (set_id, feature, density, max_act, mean_act, dead, lang_class, lang_counts, top_tokens, histogram, neighbours, examples,
           logit_effects, correlations)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
      )
      let count = 0
      for (const f of features) {
        count++
        ins.run(id, ...featureColumns(f))
      }
      this.db.prepare('UPDATE feature_set SET n_features = ? WHERE id = ?').run(count, id)
      return this.set(id)
    })()
  }

  /** The feature set of an SAE (its statistics), if one was computed. */
  setOfSae(saeId: number): FeatureSetInfo | null {
    const r = this.db.prepare(`${SET_SELECT} WHERE s.sae_id = ? AND s.source = 'sae' ORDER BY s.id DESC LIMIT 1`).get(saeId) as SetRow | undefined
    return r ? toSet(r) : null
  }

  /**
   * Writes an SAE's feature statistics. A set is the SAE's features, so when the SAE already has one it is updated in
   * place, in one transaction: statistics, examples and the token table are replaced, the set id, every label and every
   * label event stay. Features the new statistics lack (never, for the same SAE) are kept, not deleted.
   */
  writeSaeSet(
    info: { name: string; saeId: number; checkpointId: number; layer: number },
    tokens: string[],
    features: Iterable<FeatureRecord>,
    notes?: SetStatsNotes
  ): FeatureSetInfo {
    const existing = this.setOfSae(info.saeId)
    return this.db.transaction(() => {
      const set = existing ? this.updateSaeSet(existing.id, info, tokens, features) : this.createSet({ ...info, source: 'sae' }, tokens, features)
      if (notes) {
        this.db
          .prepare('UPDATE feature_set SET logit_note = ?, stats_rows = ?, stats_held_out = ? WHERE id = ?')
          .run(notes.logitNote, notes.rows, notes.heldOut ? 1 : 0, set.id)
      }
      return set
    })()
  }

  private updateSaeSet(id: number, info: { checkpointId: number; layer: number }, tokens: string[], features: Iterable<FeatureRecord>): FeatureSetInfo {
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM set_token WHERE set_id = ?').run(id)
      const tok = this.db.prepare('INSERT INTO set_token (set_id, idx, text) VALUES (?, ?, ?)')
      tokens.forEach((t, i) => tok.run(id, i, t))
      this.tokenCache.delete(id)
      const upsert = this.db.prepare(
        `INSERT INTO feature (set_id, feature, density, max_act, mean_act, dead, lang_class, lang_counts, top_tokens, histogram, neighbours, examples,
           logit_effects, correlations)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (set_id, feature) DO UPDATE SET density = excluded.density, max_act = excluded.max_act, mean_act = excluded.mean_act,
           dead = excluded.dead, lang_class = excluded.lang_class, lang_counts = excluded.lang_counts, top_tokens = excluded.top_tokens,
           histogram = excluded.histogram, neighbours = excluded.neighbours, examples = excluded.examples,
           logit_effects = excluded.logit_effects, correlations = excluded.correlations`
      )
      for (const f of features) upsert.run(id, ...featureColumns(f))
      const count = (this.db.prepare('SELECT count(*) AS n FROM feature WHERE set_id = ?').get(id) as { n: number }).n
      this.db
        .prepare('UPDATE feature_set SET n_features = ?, updated_at = ?, checkpoint_id = ?, layer = ? WHERE id = ?')
        .run(count, new Date().toISOString(), info.checkpointId, info.layer, id)
      return this.set(id)
    })()
  }

  private tokenTexts(setId: number): string[] {
    let texts = this.tokenCache.get(setId)
    if (!texts) {
      texts = (this.db.prepare('SELECT text FROM set_token WHERE set_id = ? ORDER BY idx').all(setId) as { text: string }[]).map((r) => r.text)
      this.tokenCache.set(setId, texts)
    }
    return texts
  }

  /** The FROM … WHERE of a list query, its parameters and its ORDER BY (ties broken by feature id). */
  private listQuery(q: Omit<FeatureListQuery, 'offset' | 'limit'>): { from: string; params: Record<string, unknown>; orderBy: string } {
    const where = ['f.set_id = @setId']
    const params: Record<string, unknown> = { setId: q.setId, annotator: q.annotator ?? '' }
    const filter = (clause: string, name: string, value: unknown): void => {
      where.push(clause)
      params[name] = value
    }
    if (q.lang) filter('f.lang_class = @lang', 'lang', q.lang)
    if (q.dead !== undefined) filter('f.dead = @dead', 'dead', q.dead ? 1 : 0)
    if (q.minDensity !== undefined) filter('f.density >= @minDensity', 'minDensity', q.minDensity)
    if (q.maxDensity !== undefined) filter('f.density <= @maxDensity', 'maxDensity', q.maxDensity)
    if (q.search) filter("f.top_tokens LIKE @search ESCAPE '\\'", 'search', `%${q.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`)
    if (q.text) {
      filter(
        `EXISTS (SELECT 1 FROM label lt WHERE lt.set_id = f.set_id AND lt.feature = f.feature
           AND (lt.category LIKE @text ESCAPE '\\' OR lt.note LIKE @text ESCAPE '\\'))`,
        'text',
        `%${q.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
      )
    }
    if (q.label === 'unlabelled') where.push('l.category IS NULL')
    else if (q.label) filter('l.category = @label', 'label', q.label)
    const order = {
      feature: 'f.feature',
      density: 'f.density',
      maxAct: 'f.max_act',
      meanAct: 'f.mean_act',
      lang: 'f.lang_class',
      formation: 'd.formation_step',
      drift: 'd.total_drift'
    }[q.sort ?? 'feature']
    // Dynamics belong to the project's own SAE series at the set's layer, where feature i is latent i.
    const from = `FROM feature f JOIN feature_set s ON s.id = f.set_id
      LEFT JOIN feature_dynamics d ON s.source = 'sae' AND d.layer = s.layer AND d.feature = f.feature
        AND s.sae_id IN (SELECT id FROM sae WHERE superseded_at IS NULL)
      LEFT JOIN label l ON l.set_id = f.set_id AND l.feature = f.feature AND l.annotator = @annotator WHERE ${where.join(' AND ')}`
    return { from, params, orderBy: `${order} ${q.descending ? 'DESC' : 'ASC'} NULLS LAST, f.feature` }
  }

  /** Where a feature stands in a list query (0-based), or null when the filters leave it out: a deep link scrolls there. */
  indexOf(q: Omit<FeatureListQuery, 'offset' | 'limit'>, feature: number): number | null {
    const { from, params, orderBy } = this.listQuery(q)
    const r = this.db
      .prepare(`SELECT i FROM (SELECT f.feature AS feature, ROW_NUMBER() OVER (ORDER BY ${orderBy}) - 1 AS i ${from}) WHERE feature = @feature`)
      .get({ ...params, feature }) as { i: number } | undefined
    return r ? r.i : null
  }

  list(q: FeatureListQuery): { total: number; rows: FeatureSummary[] } {
    const { from, params, orderBy } = this.listQuery(q)
    const total = (this.db.prepare(`SELECT count(*) AS n ${from}`).get(params) as { n: number }).n
    const rows = this.db
      .prepare(
        `SELECT f.feature, f.density, f.max_act, f.mean_act, f.dead, f.lang_class, f.top_tokens, l.category,
                d.formation_step, d.total_drift
         ${from} ORDER BY ${orderBy} LIMIT @limit OFFSET @offset`
      )
      .all({ ...params, limit: q.limit ?? 200, offset: q.offset ?? 0 }) as (Pick<
      FeatureRow,
      'feature' | 'density' | 'max_act' | 'mean_act' | 'dead' | 'lang_class' | 'top_tokens'
    > & {
      category: string | null
      formation_step: number | null
      total_drift: number | null
    })[]
    return {
      total,
      rows: rows.map((r) => ({
        feature: r.feature,
        density: r.density,
        maxAct: r.max_act,
        meanAct: r.mean_act,
        dead: r.dead === 1,
        langClass: r.lang_class,
        topTokens: r.top_tokens,
        label: r.category,
        formationStep: r.formation_step,
        totalDrift: r.total_drift
      }))
    }
  }

  /** One feature's dashboard: a single indexed read plus its token texts and labels. */
  get(setId: number, feature: number): FeatureDetail {
    const r = this.db.prepare('SELECT * FROM feature WHERE set_id = ? AND feature = ?').get(setId, feature) as FeatureRow | undefined
    if (!r) throw new UserError(`Feature ${feature} is not in set ${setId}.`, 'not-found')
    const texts = this.tokenTexts(setId)
    const nb = floats(r.neighbours)
    const hist = floats(r.histogram)
    const corr = r.correlations ? floats(r.correlations) : null
    const logit = r.logit_effects ? decodeLogitEffects(r.logit_effects) : null
    const notes = this.db.prepare('SELECT source, logit_note, stats_rows, stats_held_out FROM feature_set WHERE id = ?').get(setId) as {
      source: 'sae' | 'import'
      logit_note: string | null
      stats_rows: number | null
      stats_held_out: number | null
    }
    const logitToken = (t: { token: number; text: number; value: number }): { token: number; text: string; value: number } => ({
      token: t.token,
      text: texts[t.text] ?? `<${t.token}>`,
      value: t.value
    })
    const examples: FeatureExampleView[] = (r.examples ? decodeExamples(r.examples) : []).map((e) => ({
      sampler: e.sampler,
      tokens: e.tokens.map((i) => texts[i] ?? '?'),
      acts: Array.from(e.acts),
      ...(e.sampler === 'interval' && r.max_act ? { interval: intervalOf(e.acts, r.max_act) } : {})
    }))
    return {
      setId,
      feature,
      density: r.density,
      maxAct: r.max_act,
      meanAct: r.mean_act,
      dead: r.dead === 1,
      langClass: r.lang_class,
      langCounts: r.lang_counts
        ? storedJson(z.record(z.string(), z.number()), r.lang_counts, `the language counts of feature ${feature} of set ${setId}`)
        : null,
      histogram: hist.length ? { lo: hist[0]!, hi: hist[1]!, counts: hist.slice(2) } : null,
      neighbours: Array.from({ length: nb.length / 2 }, (_, i) => ({ feature: nb[2 * i]!, cosine: nb[2 * i + 1]! })),
      examples,
      labels: this.labels.labels(setId, feature),
      logitEffects: logit
        ? {
            positive: logit.positive.map(logitToken),
            negative: logit.negative.map(logitToken),
            histogram: { lo: logit.histogram.lo, hi: logit.histogram.hi, counts: Array.from(logit.histogram.counts) }
          }
        : null,
      logitEffectsNote:
        notes.logit_note ??
        (r.logit_effects
          ? null
          : notes.source === 'import'
            ? 'An imported feature-example set has no decoder rows, so no logit effects.'
            : 'These statistics were computed before FeatureTrace stored logit effects: recompute the feature statistics.'),
      correlations: corr ? Array.from({ length: corr.length / 2 }, (_, i) => ({ feature: corr[2 * i]!, r: corr[2 * i + 1]! })) : null,
      statsRows: notes.stats_rows === null ? null : { rows: notes.stats_rows, heldOut: notes.stats_held_out === 1 }
    }
  }

  /**
   * Dead and dense latents and the log10 density histogram of every current SAE at a layer with statistics, by step.
   * Density = the fraction of statistic rows on which a latent is active (feature-stats.ts). Bins are `width` wide in
   * log10 units (0.2, as SAELens' and Neuronpedia's density plots are read), from the lowest density of any SAE
   * in the answer to 0; dead latents (density 0) are counted apart, not binned.
   */
  quality(layer: number, width = 0.2): SaeQuality[] {
    const sets = this.db
      .prepare(
        `SELECT s.id AS set_id, s.sae_id, s.checkpoint_id, c.step, s.stats_rows, s.stats_held_out FROM feature_set s
         JOIN sae ON sae.id = s.sae_id AND sae.superseded_at IS NULL JOIN checkpoint c ON c.id = s.checkpoint_id
         WHERE s.source = 'sae' AND s.layer = ? ORDER BY c.step`
      )
      .all(layer) as { set_id: number; sae_id: number; checkpoint_id: number; step: number; stats_rows: number | null; stats_held_out: number | null }[]
    const densities = this.db.prepare('SELECT density, dead FROM feature WHERE set_id = ?')
    const read = sets.map((s) => ({ s, rows: densities.all(s.set_id) as { density: number | null; dead: number }[] }))
    const logs = read.map(({ rows }) => rows.filter((r) => r.dead === 0 && (r.density ?? 0) > 0).map((r) => Math.log10(r.density!)))
    const lowest = Math.min(0, ...logs.map((l) => l.reduce((a, b) => Math.min(a, b), 0)))
    const lo = Math.floor(lowest / width - 1e-9) * width
    const bins = Math.max(1, Math.round(-lo / width))
    return read.map(({ s, rows }, i) => {
      const counts = new Array<number>(bins).fill(0)
      for (const v of logs[i]!) counts[Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / width)))]!++
      return {
        saeId: s.sae_id,
        checkpointId: s.checkpoint_id,
        step: s.step,
        layer,
        setId: s.set_id,
        latents: rows.length,
        dead: rows.filter((r) => r.dead === 1).length,
        dense: rows.filter((r) => (r.density ?? 0) > DENSE_DENSITY).length,
        denseThreshold: DENSE_DENSITY,
        rows: s.stats_rows,
        heldOutOnly: s.stats_held_out === null ? null : s.stats_held_out === 1,
        histogram: { lo, width, counts }
      }
    })
  }

  /** Each feature's language class (null where none was computed), for composition. */
  languageClasses(setId: number): { feature: number; langClass: string | null }[] {
    return this.db.prepare('SELECT feature, lang_class AS langClass FROM feature WHERE set_id = ? ORDER BY feature').all(setId) as {
      feature: number
      langClass: string | null
    }[]
  }

  /** N features drawn without replacement, the same for a seed; dead features left out when asked. */
  sample(setId: number, n: number, seed: number, skipDead: boolean): number[] {
    const ids = (
      this.db.prepare(`SELECT feature FROM feature WHERE set_id = ? ${skipDead ? 'AND dead = 0' : ''} ORDER BY feature`).all(setId) as { feature: number }[]
    ).map((r) => r.feature)
    return new Rng(seed).shuffle(ids).slice(0, n)
  }
}

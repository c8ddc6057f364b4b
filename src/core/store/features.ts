// Feature sets, their features (statistics and examples as compact blobs), the taxonomy and labels.
// Every label change is an event: the label table is the current state, label_event the history that
// undo walks back.
import type { Composition, FeatureDetail, FeatureExampleView, FeatureListQuery, FeatureSetInfo, FeatureSummary, Label, LabelEvent, LabelOrigin } from '../../shared/api'
import { agreementOf } from '../analysis/agreement'
import { UserError } from '../../shared/api'
import { toFloat16Bits, toFloat32 } from '../io/safetensors'
import { Rng } from '../random'
import type { Db } from './database'

export const SAMPLERS = ['paper', 'top', 'interval', 'imported'] as const
export type Sampler = (typeof SAMPLERS)[number]

export interface StoredExample {
  sampler: Sampler
  /** Indices into the set's token table. */
  tokens: number[]
  acts: Float32Array
}

/** Examples as one blob: [count] then per example [sampler, length, token indices…] (u32) and f16 activations. */
export function encodeExamples(examples: StoredExample[]): Buffer {
  const parts: Buffer[] = []
  const head = Buffer.alloc(4)
  head.writeUInt32LE(examples.length)
  parts.push(head)
  for (const ex of examples) {
    const meta = new Uint32Array([SAMPLERS.indexOf(ex.sampler), ex.tokens.length, ...ex.tokens])
    parts.push(Buffer.from(meta.buffer), Buffer.from(toFloat16Bits(ex.acts).buffer))
  }
  return Buffer.concat(parts)
}

export function decodeExamples(blob: Buffer): StoredExample[] {
  const out: StoredExample[] = []
  let o = 4
  const count = blob.readUInt32LE(0)
  for (let e = 0; e < count; e++) {
    const sampler = SAMPLERS[blob.readUInt32LE(o)] ?? 'imported'
    const len = blob.readUInt32LE(o + 4)
    const tokens: number[] = []
    for (let i = 0; i < len; i++) tokens.push(blob.readUInt32LE(o + 8 + 4 * i))
    o += 8 + 4 * len
    const acts = toFloat32(blob.subarray(o, o + 2 * len), 'F16')
    o += 2 * len
    out.push({ sampler, tokens, acts })
  }
  return out
}

function parseOrigin(text: string | null): LabelOrigin | null {
  return text ? (JSON.parse(text) as LabelOrigin) : null
}

function floats(blob: Buffer | null): number[] {
  if (!blob) return []
  return Array.from(new Float32Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength)))
}

export interface FeatureRecord {
  feature: number
  density: number | null
  maxAct: number | null
  meanAct: number | null
  dead: boolean
  langClass: string | null
  langCounts: Record<string, number> | null
  topTokens: string
  /** [lo, hi, then 50 counts]: bins are log-spaced between lo and hi. */
  histogram: Float32Array | null
  /** Pairs of (feature, cosine). */
  neighbours: { feature: number; cosine: number }[]
  examples: StoredExample[]
}

/** A feature record as the feature table's columns after set_id, in order. */
function featureColumns(f: FeatureRecord): unknown[] {
  const nb = new Float32Array(f.neighbours.length * 2)
  f.neighbours.forEach((x, i) => ((nb[2 * i] = x.feature), (nb[2 * i + 1] = x.cosine)))
  return [
    f.feature, f.density, f.maxAct, f.meanAct, f.dead ? 1 : 0, f.langClass, f.langCounts ? JSON.stringify(f.langCounts) : null, f.topTokens,
    f.histogram ? Buffer.from(f.histogram.buffer, f.histogram.byteOffset, f.histogram.byteLength) : null,
    Buffer.from(nb.buffer), encodeExamples(f.examples)
  ]
}

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
    id: r.id, name: r.name, source: r.source, saeId: r.sae_id, checkpointId: r.checkpoint_id, checkpointLabel: r.checkpoint_label,
    step: r.step, layer: r.layer, nFeatures: r.n_features, createdAt: r.created_at, updatedAt: r.updated_at, superseded: r.superseded === 1,
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
}

const SET_SELECT = `SELECT s.*, c.step, (sae.superseded_at IS NOT NULL) AS superseded,
    (SELECT count(*) FROM label l WHERE l.set_id = s.id AND l.category IS NOT NULL) AS label_count
  FROM feature_set s LEFT JOIN checkpoint c ON c.id = s.checkpoint_id LEFT JOIN sae ON sae.id = s.sae_id`

export class FeatureRepository {
  /** Token tables by set: read once per set, not on every dashboard. */
  private readonly tokenCache = new Map<number, string[]>()

  constructor(private readonly db: Db) {}

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
    info: { name: string; source: 'sae' | 'import'; saeId?: number | null; checkpointId?: number | null; checkpointLabel?: string | null; layer?: number | null },
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
          .run(info.name, info.source, info.saeId ?? null, info.checkpointId ?? null, info.checkpointLabel ?? null, info.layer ?? null, 0, new Date().toISOString())
          .lastInsertRowid
      )
      const tok = this.db.prepare('INSERT INTO set_token (set_id, idx, text) VALUES (?, ?, ?)')
      tokens.forEach((t, i) => tok.run(id, i, t))
      const ins = this.db.prepare(
        `INSERT INTO feature (set_id, feature, density, max_act, mean_act, dead, lang_class, lang_counts, top_tokens, histogram, neighbours, examples)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
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
    features: Iterable<FeatureRecord>
  ): FeatureSetInfo {
    const existing = this.setOfSae(info.saeId)
    if (!existing) return this.createSet({ ...info, source: 'sae' }, tokens, features)
    return this.db.transaction(() => {
      const id = existing.id
      this.db.prepare('DELETE FROM set_token WHERE set_id = ?').run(id)
      const tok = this.db.prepare('INSERT INTO set_token (set_id, idx, text) VALUES (?, ?, ?)')
      tokens.forEach((t, i) => tok.run(id, i, t))
      this.tokenCache.delete(id)
      const upsert = this.db.prepare(
        `INSERT INTO feature (set_id, feature, density, max_act, mean_act, dead, lang_class, lang_counts, top_tokens, histogram, neighbours, examples)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (set_id, feature) DO UPDATE SET density = excluded.density, max_act = excluded.max_act, mean_act = excluded.mean_act,
           dead = excluded.dead, lang_class = excluded.lang_class, lang_counts = excluded.lang_counts, top_tokens = excluded.top_tokens,
           histogram = excluded.histogram, neighbours = excluded.neighbours, examples = excluded.examples`
      )
      for (const f of features) upsert.run(id, ...featureColumns(f))
      const count = (this.db.prepare('SELECT count(*) AS n FROM feature WHERE set_id = ?').get(id) as { n: number }).n
      this.db.prepare('UPDATE feature_set SET n_features = ?, updated_at = ?, checkpoint_id = ?, layer = ? WHERE id = ?').run(count, new Date().toISOString(), info.checkpointId, info.layer, id)
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
    if (q.label === 'unlabelled') where.push('l.category IS NULL')
    else if (q.label) filter('l.category = @label', 'label', q.label)
    const order = {
      feature: 'f.feature', density: 'f.density', maxAct: 'f.max_act', meanAct: 'f.mean_act', lang: 'f.lang_class',
      formation: 'd.formation_step', drift: 'd.total_drift'
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
      .all({ ...params, limit: q.limit ?? 200, offset: q.offset ?? 0 }) as (Pick<FeatureRow, 'feature' | 'density' | 'max_act' | 'mean_act' | 'dead' | 'lang_class' | 'top_tokens'> & {
      category: string | null
      formation_step: number | null
      total_drift: number | null
    })[]
    return {
      total,
      rows: rows.map((r) => ({
        feature: r.feature, density: r.density, maxAct: r.max_act, meanAct: r.mean_act, dead: r.dead === 1, langClass: r.lang_class,
        topTokens: r.top_tokens, label: r.category, formationStep: r.formation_step, totalDrift: r.total_drift
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
    const examples: FeatureExampleView[] = (r.examples ? decodeExamples(r.examples) : []).map((e) => ({
      sampler: e.sampler,
      tokens: e.tokens.map((i) => texts[i] ?? '?'),
      acts: Array.from(e.acts)
    }))
    return {
      setId, feature, density: r.density, maxAct: r.max_act, meanAct: r.mean_act, dead: r.dead === 1, langClass: r.lang_class,
      langCounts: r.lang_counts ? (JSON.parse(r.lang_counts) as Record<string, number>) : null,
      histogram: hist.length ? { lo: hist[0]!, hi: hist[1]!, counts: hist.slice(2) } : null,
      neighbours: Array.from({ length: nb.length / 2 }, (_, i) => ({ feature: nb[2 * i]!, cosine: nb[2 * i + 1]! })),
      examples,
      labels: this.labels(setId, feature)
    }
  }

  /** N features drawn without replacement, the same for a seed; dead features left out when asked. */
  sample(setId: number, n: number, seed: number, skipDead: boolean): number[] {
    const ids = (this.db.prepare(`SELECT feature FROM feature WHERE set_id = ? ${skipDead ? 'AND dead = 0' : ''} ORDER BY feature`).all(setId) as { feature: number }[]).map((r) => r.feature)
    return new Rng(seed).shuffle(ids).slice(0, n)
  }

  /** Every label of a set (all annotators), for agreement and composition. */
  allLabels(setId: number): { feature: number; annotator: string; category: string | null; blind: boolean | null }[] {
    return (
      this.db.prepare('SELECT feature, annotator, category, blind FROM label WHERE set_id = ? AND category IS NOT NULL').all(setId) as {
        feature: number
        annotator: string
        category: string | null
        blind: number | null
      }[]
    ).map((l) => ({ ...l, blind: l.blind === null ? null : l.blind === 1 }))
  }

  /** The paper's figures for every set: label and language composition, Mix split by interpretability, agreement. */
  composition(annotator?: string): Composition[] {
    const uninterpretable = this.taxonomy().find((c) => /uninterpret/i.test(c)) ?? null
    return this.sets().map((set) => {
      const labels = this.allLabels(set.id)
      const chosen = new Map<number, string>()
      if (annotator) {
        for (const l of labels) if (l.annotator === annotator && l.category) chosen.set(l.feature, l.category)
      } else {
        const votes = new Map<number, Map<string, number>>()
        for (const l of labels) {
          if (!l.category) continue
          const v = votes.get(l.feature) ?? new Map<string, number>()
          v.set(l.category, (v.get(l.category) ?? 0) + 1)
          votes.set(l.feature, v)
        }
        for (const [f, v] of votes) chosen.set(f, [...v.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0])
      }
      const langs = this.db.prepare('SELECT feature, lang_class FROM feature WHERE set_id = ?').all(set.id) as { feature: number; lang_class: string | null }[]
      const byLabel: Record<string, number> = Object.fromEntries(this.taxonomy().map((c) => [c, 0]))
      for (const c of chosen.values()) byLabel[c] = (byLabel[c] ?? 0) + 1
      const languages: Record<string, number> = {}
      const mix = { interpretable: 0, uninterpretable: 0, unlabelled: 0 }
      for (const f of langs) {
        const cls = f.lang_class ?? 'none'
        languages[cls] = (languages[cls] ?? 0) + 1
        if (cls !== 'mix') continue
        const c = chosen.get(f.feature)
        if (!c) mix.unlabelled++
        else if (c === uninterpretable) mix.uninterpretable++
        else mix.interpretable++
      }
      return {
        setId: set.id, name: set.name, step: set.step, checkpointLabel: set.checkpointLabel, features: set.nFeatures, labels: byLabel,
        unlabelled: set.nFeatures - chosen.size, languages, mix, agreement: agreementOf(labels)
      }
    })
  }

  taxonomy(): string[] {
    return (this.db.prepare('SELECT name FROM taxonomy ORDER BY position').all() as { name: string }[]).map((r) => r.name)
  }

  setTaxonomy(names: string[]): string[] {
    if (new Set(names).size !== names.length || names.some((n) => !n.trim())) throw new UserError('Category names must be distinct and not empty.')
    if (names.length > 9) throw new UserError('At most 9 categories: keys 1–9 pick them.')
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM taxonomy').run()
      const ins = this.db.prepare('INSERT INTO taxonomy (position, name) VALUES (?, ?)')
      names.forEach((n, i) => ins.run(i + 1, n.trim()))
    })()
    return this.taxonomy()
  }

  labels(setId: number, feature: number): Label[] {
    const rows = this.db
      .prepare('SELECT set_id AS setId, feature, annotator, category, note, updated_at AS updatedAt, origin FROM label WHERE set_id = ? AND feature = ? ORDER BY annotator')
      .all(setId, feature) as (Omit<Label, 'origin'> & { origin: string | null })[]
    return rows.map((r) => ({ ...r, origin: parseOrigin(r.origin) }))
  }

  /** One annotator's labels of the given features: a session's sample, however far into a wide set. */
  labelsOf(setId: number, annotator: string, features: number[]): Label[] {
    const rows = this.db
      .prepare(
        `SELECT set_id AS setId, feature, annotator, category, note, updated_at AS updatedAt, origin FROM label
         WHERE set_id = ? AND annotator = ? AND feature IN (SELECT value FROM json_each(?)) ORDER BY feature`
      )
      .all(setId, annotator, JSON.stringify(features)) as (Omit<Label, 'origin'> & { origin: string | null })[]
    return rows.map((r) => ({ ...r, origin: parseOrigin(r.origin) }))
  }

  /** Everyone who has labelled a feature of the set. */
  annotators(setId: number): string[] {
    return (this.db.prepare('SELECT DISTINCT annotator FROM label WHERE set_id = ? ORDER BY annotator').all(setId) as { annotator: string }[]).map((r) => r.annotator)
  }

  private current(setId: number, feature: number, annotator: string): { category: string | null; note: string; blind: number | null } | null {
    return (this.db.prepare('SELECT category, note, blind FROM label WHERE set_id = ? AND feature = ? AND annotator = ?').get(setId, feature, annotator) as
      | { category: string | null; note: string; blind: number | null }
      | undefined) ?? null
  }

  private write(
    setId: number, feature: number, annotator: string, category: string | null, note: string,
    extra: { undoes?: number | null; blind: number | null; requestId?: string | null; origin?: LabelOrigin | null }
  ): Label {
    const before = this.current(setId, feature, annotator)
    const at = new Date().toISOString()
    const origin = extra.origin ? JSON.stringify(extra.origin) : null
    if (category === null && note === '') {
      this.db.prepare('DELETE FROM label WHERE set_id = ? AND feature = ? AND annotator = ?').run(setId, feature, annotator)
    } else {
      this.db
        .prepare(
          `INSERT INTO label (set_id, feature, annotator, category, note, updated_at, blind, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (set_id, feature, annotator) DO UPDATE SET category = excluded.category, note = excluded.note, updated_at = excluded.updated_at,
             blind = excluded.blind, origin = excluded.origin`
        )
        .run(setId, feature, annotator, category, note, at, extra.blind, origin)
    }
    this.db
      .prepare(
        `INSERT INTO label_event (set_id, feature, annotator, category_before, note_before, category_after, note_after, at, undoes, blind, blind_before, request_id, origin)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
      )
      .run(setId, feature, annotator, before?.category ?? null, before?.note ?? null, category, note, at, extra.undoes ?? null, extra.blind, before?.blind ?? null, extra.requestId ?? null, origin)
    return { setId, feature, annotator, category, note, updatedAt: at, origin: extra.origin ?? null }
  }

  /** The label an earlier write with this request id produced; null when no write had it. */
  private replayed(requestId: string | undefined, annotator: string): Label | null {
    if (requestId === undefined) return null
    const ev = this.db
      .prepare('SELECT set_id, feature, annotator, category_after, note_after, at, origin FROM label_event WHERE request_id = ?')
      .get(requestId) as { set_id: number; feature: number; annotator: string; category_after: string | null; note_after: string | null; at: string; origin: string | null } | undefined
    if (!ev) return null
    if (ev.annotator !== annotator) throw new UserError(`Request id ${requestId} was already used by another annotator's label; send a new id.`)
    return { setId: ev.set_id, feature: ev.feature, annotator: ev.annotator, category: ev.category_after, note: ev.note_after ?? '', updatedAt: ev.at, origin: parseOrigin(ev.origin) }
  }

  /**
   * Sets (or clears, with category null and no note) one annotator's label; committed before it returns.
   * Category undefined keeps the current one. A request id already applied returns that write's result, applied: false.
   */
  applyLabel(
    setId: number, feature: number, annotator: string, category: string | null | undefined, note?: string,
    opts: { requestId?: string; blind?: boolean } = {}
  ): { label: Label; applied: boolean } {
    if (category !== null && category !== undefined && !this.taxonomy().includes(category)) {
      throw new UserError(`"${category}" is not a category of this project's taxonomy (${this.taxonomy().join(', ')}).`)
    }
    if (category === undefined && note === undefined) throw new UserError(`A label change of feature ${feature} needs a category (null clears it) or a note.`)
    return this.db.transaction(() => {
      const earlier = this.replayed(opts.requestId, annotator)
      if (earlier) {
        if (earlier.setId !== setId || earlier.feature !== feature) throw new UserError(`Request id ${opts.requestId} was already used for another feature; send a new id.`)
        return { label: earlier, applied: false }
      }
      const exists = this.db.prepare('SELECT 1 FROM feature WHERE set_id = ? AND feature = ?').get(setId, feature)
      if (!exists) throw new UserError(`Feature ${feature} is not in set ${setId}.`, 'not-found')
      const before = this.current(setId, feature, annotator)
      // A note alone leaves the category, and so the judgement's blindness, as they were.
      const blind = category === undefined ? (before?.blind ?? null) : opts.blind === undefined ? null : opts.blind ? 1 : 0
      const label = this.write(setId, feature, annotator, category === undefined ? (before?.category ?? null) : category, note ?? before?.note ?? '', {
        blind, requestId: opts.requestId
      })
      return { label, applied: true }
    })()
  }

  /** Sets (or clears, with category null and no note) one annotator's label; category undefined keeps the current one. */
  setLabel(setId: number, feature: number, annotator: string, category: string | null | undefined, note?: string, opts: { requestId?: string; blind?: boolean } = {}): Label {
    return this.applyLabel(setId, feature, annotator, category, note, opts).label
  }

  /** Reverts the annotator's most recent change that has not been undone yet; null when there is none. */
  applyUndo(annotator: string, setId?: number, requestId?: string): { label: Label | null; applied: boolean } {
    return this.db.transaction(() => {
      const earlier = this.replayed(requestId, annotator)
      if (earlier) return { label: earlier, applied: false }
      const ev = this.db
        .prepare(
          `SELECT * FROM label_event e WHERE annotator = ? AND undoes IS NULL ${setId === undefined ? '' : 'AND set_id = ?'}
             AND NOT EXISTS (SELECT 1 FROM label_event u WHERE u.undoes = e.id)
           ORDER BY id DESC LIMIT 1`
        )
        .get(...(setId === undefined ? [annotator] : [annotator, setId])) as
        | { id: number; set_id: number; feature: number; category_before: string | null; note_before: string | null; blind_before: number | null }
        | undefined
      if (!ev) return { label: null, applied: false }
      return { label: this.write(ev.set_id, ev.feature, annotator, ev.category_before, ev.note_before ?? '', { undoes: ev.id, blind: ev.blind_before, requestId }), applied: true }
    })()
  }

  undo(annotator: string, setId?: number): Label | null {
    return this.applyUndo(annotator, setId).label
  }

  history(setId: number, feature: number): LabelEvent[] {
    const rows = this.db
      .prepare(
        `SELECT id, annotator, category_before AS categoryBefore, note_before AS noteBefore, category_after AS categoryAfter,
           note_after AS noteAfter, at, undoes, blind, origin FROM label_event WHERE set_id = ? AND feature = ? ORDER BY id`
      )
      .all(setId, feature) as (Omit<LabelEvent, 'blind' | 'origin'> & { blind: number | null; origin: string | null })[]
    return rows.map((e) => ({ ...e, blind: e.blind === null ? null : e.blind === 1, origin: parseOrigin(e.origin) }))
  }

  /** Every current label of a set with its note, for carrying them over. */
  labelsOfSet(setId: number): Label[] {
    const rows = this.db
      .prepare('SELECT set_id AS setId, feature, annotator, category, note, updated_at AS updatedAt, origin FROM label WHERE set_id = ? ORDER BY feature, annotator')
      .all(setId) as (Omit<Label, 'origin'> & { origin: string | null })[]
    return rows.map((r) => ({ ...r, origin: parseOrigin(r.origin) }))
  }

  /**
   * Copies labels of a superseded SAE's features to the features they were matched to, each copy an event that names
   * its origin (so it can be undone like any label). A target that already has a label from the same annotator keeps it.
   * The copy is not a blind judgement of the new feature, so blind is recorded as unknown.
   */
  carryLabels(toSetId: number, carries: { label: Label; toFeature: number; origin: LabelOrigin }[]): { carried: number; keptExisting: number } {
    return this.db.transaction(() => {
      let carried = 0
      let keptExisting = 0
      for (const { label, toFeature, origin } of carries) {
        if (this.current(toSetId, toFeature, label.annotator)) {
          keptExisting++
          continue
        }
        this.write(toSetId, toFeature, label.annotator, label.category, label.note, { blind: null, origin })
        carried++
      }
      return { carried, keptExisting }
    })()
  }
}

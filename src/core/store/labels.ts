// Labels and their history: the label table is the current state, label_event every change, which undo walks
// back. Every write is committed before it returns; a request id already applied returns its first result.
import type { Label, LabelEvent, LabelOrigin } from '../../shared/api'
import { LabelOriginSchema, UserError } from '../../shared/api'
import type { Db } from './database'
import { storedJsonOrNull } from './stored-json'
import type { TaxonomyRepository } from './taxonomy'

function parseOrigin(text: string | null): LabelOrigin | null {
  return storedJsonOrNull(LabelOriginSchema, text, 'the origin of a carried label')
}

/** Each feature's majority category over annotators (ties: alphabetical); one annotator's own labels when given. */
export function majorityLabels(labels: { feature: number; annotator: string; category: string | null }[], annotator?: string): Map<number, string> {
  const votes = new Map<number, Map<string, number>>()
  for (const l of labels) {
    if (!l.category || (annotator !== undefined && l.annotator !== annotator)) continue
    const v = votes.get(l.feature) ?? new Map<string, number>()
    v.set(l.category, (v.get(l.category) ?? 0) + 1)
    votes.set(l.feature, v)
  }
  return new Map([...votes].map(([f, v]) => [f, [...v.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0]]))
}

export class LabelRepository {
  constructor(
    private readonly db: Db,
    private readonly taxonomy: TaxonomyRepository
  ) {}

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

  labels(setId: number, feature: number): Label[] {
    const rows = this.db
      .prepare(
        'SELECT set_id AS setId, feature, annotator, category, note, updated_at AS updatedAt, origin FROM label WHERE set_id = ? AND feature = ? ORDER BY annotator'
      )
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
    return (this.db.prepare('SELECT DISTINCT annotator FROM label WHERE set_id = ? ORDER BY annotator').all(setId) as { annotator: string }[]).map(
      (r) => r.annotator
    )
  }

  private current(setId: number, feature: number, annotator: string): { category: string | null; note: string; blind: number | null } | null {
    return (
      (this.db.prepare('SELECT category, note, blind FROM label WHERE set_id = ? AND feature = ? AND annotator = ?').get(setId, feature, annotator) as
        { category: string | null; note: string; blind: number | null } | undefined) ?? null
    )
  }

  private write(
    setId: number,
    feature: number,
    annotator: string,
    category: string | null,
    note: string,
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
      .run(
        setId,
        feature,
        annotator,
        before?.category ?? null,
        before?.note ?? null,
        category,
        note,
        at,
        extra.undoes ?? null,
        extra.blind,
        before?.blind ?? null,
        extra.requestId ?? null,
        origin
      )
    return { setId, feature, annotator, category, note, updatedAt: at, origin: extra.origin ?? null }
  }

  /** The label an earlier write with this request id produced; null when no write had it. */
  private replayed(requestId: string | undefined, annotator: string): Label | null {
    if (requestId === undefined) return null
    const ev = this.db
      .prepare('SELECT set_id, feature, annotator, category_after, note_after, at, origin FROM label_event WHERE request_id = ?')
      .get(requestId) as
      | { set_id: number; feature: number; annotator: string; category_after: string | null; note_after: string | null; at: string; origin: string | null }
      | undefined
    if (!ev) return null
    if (ev.annotator !== annotator) throw new UserError(`Request id ${requestId} was already used by another annotator's label; send a new id.`)
    return {
      setId: ev.set_id,
      feature: ev.feature,
      annotator: ev.annotator,
      category: ev.category_after,
      note: ev.note_after ?? '',
      updatedAt: ev.at,
      origin: parseOrigin(ev.origin)
    }
  }

  /**
   * Sets (or clears, with category null and no note) one annotator's label; committed before it returns.
   * Category undefined keeps the current one. A request id already applied returns that write's result, applied: false.
   */
  applyLabel(
    setId: number,
    feature: number,
    annotator: string,
    category: string | null | undefined,
    note?: string,
    opts: { requestId?: string; blind?: boolean } = {}
  ): { label: Label; applied: boolean } {
    if (category !== null && category !== undefined && !this.taxonomy.names().includes(category)) {
      throw new UserError(`"${category}" is not a category of this project's taxonomy (${this.taxonomy.names().join(', ')}).`)
    }
    if (category === undefined && note === undefined) throw new UserError(`A label change of feature ${feature} needs a category (null clears it) or a note.`)
    return this.db.transaction(() => {
      const earlier = this.replayed(opts.requestId, annotator)
      if (earlier) {
        if (earlier.setId !== setId || earlier.feature !== feature)
          throw new UserError(`Request id ${opts.requestId} was already used for another feature; send a new id.`)
        return { label: earlier, applied: false }
      }
      const exists = this.db.prepare('SELECT 1 FROM feature WHERE set_id = ? AND feature = ?').get(setId, feature)
      if (!exists) throw new UserError(`Feature ${feature} is not in set ${setId}.`, 'not-found')
      const before = this.current(setId, feature, annotator)
      // A note alone leaves the category, and so the judgement's blindness, as they were.
      const blind = category === undefined ? (before?.blind ?? null) : opts.blind === undefined ? null : opts.blind ? 1 : 0
      const label = this.write(setId, feature, annotator, category === undefined ? (before?.category ?? null) : category, note ?? before?.note ?? '', {
        blind,
        requestId: opts.requestId
      })
      return { label, applied: true }
    })()
  }

  /** Sets (or clears, with category null and no note) one annotator's label; category undefined keeps the current one. */
  setLabel(
    setId: number,
    feature: number,
    annotator: string,
    category: string | null | undefined,
    note?: string,
    opts: { requestId?: string; blind?: boolean } = {}
  ): Label {
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
        { id: number; set_id: number; feature: number; category_before: string | null; note_before: string | null; blind_before: number | null } | undefined
      if (!ev) return { label: null, applied: false }
      return {
        label: this.write(ev.set_id, ev.feature, annotator, ev.category_before, ev.note_before ?? '', { undoes: ev.id, blind: ev.blind_before, requestId }),
        applied: true
      }
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
      .prepare(
        'SELECT set_id AS setId, feature, annotator, category, note, updated_at AS updatedAt, origin FROM label WHERE set_id = ? ORDER BY feature, annotator'
      )
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

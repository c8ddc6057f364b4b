import { defineStore } from 'pinia'
import { computed, ref, shallowRef, watch } from 'vue'
import type { FeatureDetail, FeatureSetInfo, Label } from '../../../shared/api'
import { api, connection } from '../api/client'
import { LabelWriteQueue, type LabelWrite } from './label-queue'
import { useProjectStore } from './project'

type Shown = { category: string | null; note: string }

/** What a key without an annotator name says (and what typing one clears). */
export const NEED_NAME = 'Type your name as annotator first: labels are saved under it.'

/** Dashboards kept for going back and forth without waiting. */
const CACHED_DASHBOARDS = 16

/**
 * A labelling session: one annotator, N seeded random features of one set, shown one at a time.
 * A key is a write of the feature shown when it was pressed: it joins the write queue and the view moves on at once.
 */
export const useLabelStore = defineStore('labels', () => {
  const sets = ref<FeatureSetInfo[]>([])
  const taxonomy = ref<string[]>([])
  const annotator = ref(localStorage.getItem('featuretrace.annotator') ?? '')
  watch(annotator, (a) => localStorage.setItem('featuretrace.annotator', a))
  const me = (): string => annotator.value.trim()
  const setId = ref<number | null>(null)
  /** What the sample was drawn with: Start with the same again resumes instead of restarting. */
  const drawn = ref<{ setId: number; n: number; seed: number; skipDead: boolean } | null>(null)
  const sample = ref<number[]>([])
  const position = ref(0)
  /** The shown feature's dashboard once it has loaded (it may lag the position). */
  const current = shallowRef<FeatureDetail | null>(null)
  const loadError = ref<string | null>(null)
  /** This annotator's labels of the sample as the server has them. */
  const confirmed = ref<Record<number, Label>>({})
  const writes = shallowRef<readonly LabelWrite[]>([])
  const connected = ref(connection.connected)
  /** Whether the server behind the connection was seen to have this queue's project open. */
  let projectChecked = false
  connection.listeners.add((c) => {
    connected.value = c
    if (!c) projectChecked = false
  })
  const annotators = ref<string[]>([])
  /** The annotator's own choice of blind, if they made one (the address keeps it). */
  const blindChoice = ref<boolean | undefined>(undefined)
  /** Hide other annotators' labels of a feature until this annotator has labelled it: by default once someone else has labelled the set. */
  const blind = computed({
    get: () => blindChoice.value ?? annotators.value.some((a) => a !== me()),
    set: (on: boolean) => (blindChoice.value = on)
  })
  /** Features whose other labels this annotator has been shown in this session: a later write is not blind. */
  const seenOthers = new Set<string>()
  const error = ref<string | null>(null)
  const projectStore = useProjectStore()
  const dashboards = new Map<string, FeatureDetail>()

  const feature = computed(() => sample.value[position.value] ?? null)
  const sessionWrites = computed(() => writes.value.filter((w) => w.setId === setId.value && w.annotator === me()))

  /** This session's writes the server has applied, newest last: what undo walks back (with the ones still waiting). */
  const applied = shallowRef<LabelWrite[]>([])

  /** This annotator's category and note per feature: the server's, then the writes not yet confirmed, in order. */
  const mine = computed(() => {
    const out: Record<number, Shown> = {}
    for (const [f, l] of Object.entries(confirmed.value)) out[Number(f)] = { category: l.category, note: l.note }
    for (const w of sessionWrites.value) {
      if (w.state === 'failed' || w.feature === undefined) continue
      if (w.kind === 'undo') {
        if (w.before) out[w.feature] = w.before
        else delete out[w.feature]
      } else {
        const before = out[w.feature]
        out[w.feature] = { category: w.category === undefined ? (before?.category ?? null) : w.category, note: w.note ?? before?.note ?? '' }
      }
    }
    return out
  })
  /** The writes an undo now would revert, newest last: applied ones, then waiting ones, less those undone. */
  function undoable(): LabelWrite[] {
    const stack = [...applied.value]
    for (const w of sessionWrites.value) {
      if (w.state === 'failed') continue
      if (w.kind === 'set') stack.push(w)
      else stack.pop()
    }
    return stack
  }
  const categoryOf = (f: number | null): string | null => (f === null ? null : (mine.value[f]?.category ?? null))
  const done = computed(() => sample.value.reduce((n, f) => n + (categoryOf(f) ? 1 : 0), 0))
  /** Writes of this session not yet confirmed, per feature (an undo counts where it is expected to act). */
  const unconfirmed = computed(() => {
    const out = new Map<number, LabelWrite[]>()
    for (const w of sessionWrites.value) if (w.feature !== undefined) out.set(w.feature, [...(out.get(w.feature) ?? []), w])
    return out
  })

  /** A server restarted behind the same address may have another project open: its writes must not go there. */
  async function sameProject(): Promise<void> {
    if (projectChecked) return
    const info = await api.call('project.info')
    if (info?.path === projectStore.project?.path) {
      projectChecked = true
      return
    }
    projectStore.project = info
    queue.close()
    throw Object.assign(new Error('The server has another project open; the waiting labels are kept for theirs.'), { code: 'disconnected' })
  }

  const queue = new LabelWriteQueue(localStorage, {
    send: async (w) => {
      await sameProject()
      return w.kind === 'set'
        ? api.call('labels.set', {
            setId: w.setId,
            feature: w.feature!,
            annotator: w.annotator,
            requestId: w.id,
            ...(w.category !== undefined ? { category: w.category } : {}),
            ...(w.note !== undefined ? { note: w.note } : {}),
            ...(w.blind !== undefined ? { blind: w.blind } : {})
          })
        : api.call('labels.undo', { setId: w.setId, annotator: w.annotator, requestId: w.id })
    },
    applied: (w, label) => {
      if (label) record(label)
      if (w.setId === setId.value && w.annotator === me()) {
        if (w.kind === 'set') applied.value = [...applied.value, w]
        else if (label) {
          const i = applied.value.map((x) => x.feature).lastIndexOf(label.feature)
          if (i >= 0) applied.value = applied.value.filter((_, j) => j !== i)
        }
      }
      if (w.kind === 'undo' && label && undoJump?.id === w.id && undoJump.position === position.value) jumpTo(label.feature)
    },
    changed: (list) => (writes.value = list)
  })
  watch(
    () => projectStore.project?.path,
    (path, before) => {
      if (path) queue.open(path)
      else queue.close()
      if (before === undefined || path === before) return
      // Another project: its sets are not this session's, whatever their ids.
      setId.value = null
      drawn.value = null
      sample.value = []
      current.value = null
      confirmed.value = {}
      applied.value = []
      annotators.value = []
      dashboards.clear()
      if (path) void loadSets()
    },
    { immediate: true }
  )
  /** Where an undo whose feature was not known yet should take the view, if nothing moved it meanwhile. */
  let undoJump: { id: string; position: number } | null = null

  async function loadSets(): Promise<void> {
    ;[sets.value, taxonomy.value] = await Promise.all([api.call('features.sets'), api.call('taxonomy.get')])
  }

  /** Draws the sample and shows feature `at`; this annotator's labels of the sample load behind. */
  async function start(id: number, n = 100, seed = 0, skipDead = true, at = 0, blindOn?: boolean): Promise<void> {
    error.value = null
    const drawnSample = await api.call('labels.sample', { setId: id, n, seed, skipDead })
    if (setId.value !== id) dashboards.clear()
    setId.value = id
    drawn.value = { setId: id, n, seed, skipDead }
    sample.value = drawnSample
    confirmed.value = {}
    applied.value = []
    seenOthers.clear()
    blindChoice.value = blindOn
    annotators.value = []
    show(Math.min(at, Math.max(0, sample.value.length - 1)))
    await Promise.all([loadMine(), loadAnnotators()])
  }

  /** Same sample as the running session? */
  function running(id: number, n: number, seed: number, skipDead: boolean): boolean {
    const d = drawn.value
    return d !== null && sample.value.length > 0 && d.setId === id && d.n === n && d.seed === seed && d.skipDead === skipDead
  }

  /** Label changes seen while a read of this annotator's labels is under way, one list per read. */
  const recording = new Set<Label[]>()

  /** This annotator's labels of exactly the sample's features, however far into a wide set they lie. */
  async function loadMine(): Promise<void> {
    const id = setId.value
    const who = me()
    if (id === null || !who) {
      confirmed.value = {}
      return
    }
    const during: Label[] = []
    recording.add(during)
    try {
      const labels = await api.call('labels.forFeatures', { setId: id, annotator: who, features: sample.value })
      recording.delete(during)
      if (id !== setId.value || who !== me()) return
      confirmed.value = Object.fromEntries(labels.map((l) => [l.feature, l]))
      // Changes that arrived while the read was under way may be newer than what it read.
      for (const l of during) record(l)
    } catch (err) {
      error.value = `Could not read your earlier labels: ${(err as Error).message}`
    } finally {
      recording.delete(during)
    }
  }

  async function loadAnnotators(): Promise<void> {
    const id = setId.value
    if (id === null) return
    const found = await api.call('labels.annotators', { setId: id })
    if (id === setId.value) annotators.value = [...new Set([...annotators.value, ...found])].sort()
  }

  let annotatorTimer: ReturnType<typeof setTimeout> | undefined
  watch(annotator, () => {
    seenOthers.clear()
    applied.value = []
    clearTimeout(annotatorTimer)
    annotatorTimer = setTimeout(() => void loadMine(), 300)
  })

  const key = (id: number, f: number): string => `${id}:${f}`

  /** Moves to position i now; the feature's dashboard follows (the newest request wins). */
  function show(i: number): void {
    if (setId.value === null || i < 0 || i >= sample.value.length) return
    position.value = i
    undoJump = null
    const id = setId.value
    const f = sample.value[i]!
    loadError.value = null
    current.value = dashboards.get(key(id, f)) ?? null
    void load(id, f, true)
    if (i + 1 < sample.value.length) void load(id, sample.value[i + 1]!, false)
  }

  let newest = 0
  async function load(id: number, f: number, shown: boolean): Promise<void> {
    const ticket = shown ? ++newest : newest
    if (!shown && dashboards.has(key(id, f))) return
    for (;;) {
      try {
        const detail = await api.call('features.get', { setId: id, feature: f })
        // Before the labels can show: a second annotator's label here turns blind on by default.
        const seen = detail.labels.map((l) => l.annotator).filter((a) => !annotators.value.includes(a))
        if (seen.length && id === setId.value) annotators.value = [...annotators.value, ...seen].sort()
        dashboards.delete(key(id, f))
        dashboards.set(key(id, f), detail)
        if (dashboards.size > CACHED_DASHBOARDS) dashboards.delete(dashboards.keys().next().value!)
        if (setId.value === id && feature.value === f && (!shown || ticket === newest)) current.value = detail
        return
      } catch (err) {
        // The client waits for the server to be back before it sends again.
        if ((err as { code?: string }).code === 'disconnected' && ticket === newest) continue
        if (shown && ticket === newest) loadError.value = (err as Error).message
        return
      }
    }
  }

  function jumpTo(f: number): void {
    const i = sample.value.indexOf(f)
    if (i >= 0) show(i)
  }

  function record(label: Label): void {
    for (const during of recording) during.push(label)
    const cached = dashboards.get(key(label.setId, label.feature))
    if (cached) {
      const labels = [...cached.labels.filter((l) => l.annotator !== label.annotator), ...(label.category !== null || label.note ? [label] : [])]
      const updated = { ...cached, labels: labels.sort((a, b) => a.annotator.localeCompare(b.annotator)) }
      dashboards.set(key(label.setId, label.feature), updated)
      if (current.value?.setId === label.setId && current.value.feature === label.feature) current.value = updated
    }
    if (label.setId !== setId.value) return
    if (label.annotator !== me() && !annotators.value.includes(label.annotator)) annotators.value = [...annotators.value, label.annotator].sort()
    if (label.annotator !== me()) return
    const next = { ...confirmed.value }
    if (label.category === null && !label.note) delete next[label.feature]
    else next[label.feature] = label
    confirmed.value = next
  }

  /** Other annotators' labels of the shown feature, or null while blind hides them. */
  const others = computed<Label[] | null>(() => {
    const f = feature.value
    if (f === null || !current.value || current.value.feature !== f || current.value.setId !== setId.value) return []
    const list = current.value.labels.filter((l) => l.annotator !== me() && l.category !== null)
    if (blind.value && !categoryOf(f) && list.length) return null
    return list
  })
  watch(others, (list) => {
    if (list?.length && setId.value !== null && feature.value !== null) seenOthers.add(key(setId.value, feature.value))
  })

  function need(): string | null {
    const who = me()
    if (setId.value === null || feature.value === null) return null
    if (!who) {
      error.value = NEED_NAME
      return null
    }
    error.value = null
    return who
  }
  // The request to type a name is answered once a name is there.
  watch(annotator, (a) => {
    if (a.trim() && error.value === NEED_NAME) error.value = null
  })

  /** Labels the feature shown now and moves on at once. */
  function label(category: string, advance = true): void {
    const who = need()
    if (!who) return
    const f = feature.value!
    queue.add({
      kind: 'set',
      setId: setId.value!,
      feature: f,
      annotator: who,
      category,
      blind: !seenOthers.has(key(setId.value!, f)),
      before: mine.value[f] ?? null
    })
    if (advance && position.value < sample.value.length - 1) show(position.value + 1)
  }

  /** Saves a note on the shown feature; the category stays whatever it is. */
  function saveNote(note: string): void {
    const who = need()
    if (!who) return
    queue.add({ kind: 'set', setId: setId.value!, feature: feature.value!, annotator: who, note, before: mine.value[feature.value!] ?? null })
  }

  /** Reverts this annotator's latest change of the set, in order after the writes still waiting. */
  function undo(): void {
    const who = need()
    if (!who) return
    // Known when the latest change is one of this session's: the view goes there now, its label reverted.
    const target = undoable().at(-1)
    const w = queue.add({ kind: 'undo', setId: setId.value!, annotator: who, ...(target ? { feature: target.feature, before: target.before ?? null } : {}) })
    if (target) jumpTo(target.feature!)
    else undoJump = { id: w.id, position: position.value }
  }

  async function saveTaxonomy(names: string[]): Promise<void> {
    error.value = null
    try {
      taxonomy.value = await api.call('taxonomy.set', { names })
    } catch (err) {
      error.value = (err as Error).message
    }
  }

  api.on('labels.changed', record)
  api.on('features.changed', () => void loadSets())

  return {
    sets,
    taxonomy,
    annotator,
    setId,
    sample,
    position,
    current,
    loadError,
    mine,
    writes,
    sessionWrites,
    unconfirmed,
    connected,
    blind,
    blindChoice,
    annotators,
    others,
    error,
    done,
    feature,
    categoryOf,
    loadSets,
    start,
    running,
    show,
    label,
    undo,
    saveNote,
    saveTaxonomy,
    retry: (id: string) => queue.retry(id),
    discard: (id: string) => queue.discard(id)
  }
})

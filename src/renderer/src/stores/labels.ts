import { defineStore } from 'pinia'
import { computed, ref, watch } from 'vue'
import type { FeatureDetail, FeatureSetInfo, Label } from '../../../shared/api'
import { api } from '../api/client'

/** A labelling session: one annotator, N seeded random features of one set, shown one at a time. */
export const useLabelStore = defineStore('labels', () => {
  const sets = ref<FeatureSetInfo[]>([])
  const taxonomy = ref<string[]>([])
  const annotator = ref(localStorage.getItem('featuretrace.annotator') ?? '')
  watch(annotator, (a) => localStorage.setItem('featuretrace.annotator', a))
  const setId = ref<number | null>(null)
  const sample = ref<number[]>([])
  const position = ref(0)
  const current = ref<FeatureDetail | null>(null)
  /** This annotator's category per feature of the sample. */
  const mine = ref<Record<number, string | null>>({})
  const error = ref<string | null>(null)

  const done = computed(() => sample.value.filter((f) => mine.value[f]).length)
  const feature = computed(() => sample.value[position.value] ?? null)

  async function loadSets(): Promise<void> {
    ;[sets.value, taxonomy.value] = await Promise.all([api.call('features.sets'), api.call('taxonomy.get')])
  }

  async function start(id: number, n = 100, seed = 0, skipDead = true, at = 0): Promise<void> {
    error.value = null
    setId.value = id
    sample.value = await api.call('labels.sample', { setId: id, n, seed, skipDead })
    const labelled = await api.call('features.list', { setId: id, annotator: annotator.value, limit: 5000 })
    const inSample = new Set(sample.value)
    mine.value = Object.fromEntries(labelled.rows.filter((r) => inSample.has(r.feature)).map((r) => [r.feature, r.label]))
    await show(Math.min(at, Math.max(0, sample.value.length - 1)))
  }

  async function show(i: number): Promise<void> {
    if (setId.value === null || i < 0 || i >= sample.value.length) return
    position.value = i
    current.value = await api.call('features.get', { setId: setId.value, feature: sample.value[i]! })
  }

  function record(label: Label): void {
    if (label.setId !== setId.value || label.annotator !== annotator.value) return
    mine.value = { ...mine.value, [label.feature]: label.category }
    if (current.value?.feature === label.feature) {
      current.value = { ...current.value, labels: [...current.value.labels.filter((l) => l.annotator !== label.annotator), ...(label.category ? [label] : [])] }
    }
  }

  async function label(category: string, advance = true): Promise<void> {
    if (setId.value === null || feature.value === null || !annotator.value.trim()) {
      error.value = 'Type your name as annotator first.'
      return
    }
    try {
      record(await api.call('labels.set', { setId: setId.value, feature: feature.value, annotator: annotator.value.trim(), category }))
      if (advance && position.value < sample.value.length - 1) await show(position.value + 1)
    } catch (err) {
      error.value = (err as Error).message
    }
  }

  /** Saves a note on the current feature, keeping this annotator's category. */
  async function saveNote(note: string): Promise<void> {
    if (setId.value === null || feature.value === null || !annotator.value.trim()) return
    const category = mine.value[feature.value] ?? null
    record(await api.call('labels.set', { setId: setId.value, feature: feature.value, annotator: annotator.value.trim(), category, note }))
  }

  async function saveTaxonomy(names: string[]): Promise<void> {
    error.value = null
    try {
      taxonomy.value = await api.call('taxonomy.set', { names })
    } catch (err) {
      error.value = (err as Error).message
    }
  }

  async function undo(): Promise<void> {
    if (setId.value === null || !annotator.value.trim()) return
    const label = await api.call('labels.undo', { annotator: annotator.value.trim(), setId: setId.value })
    if (!label) return
    record(label)
    const i = sample.value.indexOf(label.feature)
    if (i >= 0) await show(i)
  }

  api.on('labels.changed', record)
  api.on('features.changed', () => void loadSets())

  return { sets, taxonomy, annotator, setId, sample, position, current, mine, error, done, feature, loadSets, start, show, label, undo, saveNote, saveTaxonomy }
})

import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { ActivationStoreInfo, Checkpoint, CheckpointDetail } from '../../../shared/api'
import { api } from '../api/client'

export const useCheckpointStore = defineStore('checkpoints', () => {
  const list = ref<Checkpoint[]>([])
  /** Every activation store of the project: what the forms take their defaults from (layer, context, corpus). */
  const stores = ref<ActivationStoreInfo[]>([])
  /** The latest checkpoint: what a form acts on when none is selected. */
  const latest = computed(() => list.value.reduce<Checkpoint | null>((a, c) => (a === null || c.step > a.step ? c : a), null))
  const selectedId = ref<number | null>(null)
  const detail = ref<CheckpointDetail | null>(null)
  const error = ref<string | null>(null)
  const lastRegistration = ref<{ added: number; skipped: { path: string; reason: string }[] } | null>(null)

  const selected = computed(() => list.value.find((c) => c.id === selectedId.value) ?? null)

  async function load(): Promise<void> {
    try {
      ;[list.value, stores.value] = await Promise.all([api.call('checkpoints.list'), api.call('activations.list')])
      error.value = null
    } catch (err) {
      list.value = []
      error.value = (err as Error).message
    }
    if (selectedId.value !== null) {
      if (list.value.some((c) => c.id === selectedId.value)) await select(selectedId.value)
      else {
        selectedId.value = null
        detail.value = null
      }
    }
  }

  async function select(id: number | null): Promise<void> {
    selectedId.value = id
    detail.value = id === null ? null : await api.call('checkpoints.get', { id })
  }

  async function register(folder: string, tokensPerStep?: number): Promise<void> {
    error.value = null
    try {
      const r = await api.call('checkpoints.register', { folder, ...(tokensPerStep ? { tokensPerStep } : {}) })
      lastRegistration.value = { added: r.added.length, skipped: r.skipped }
      await load()
    } catch (err) {
      error.value = (err as Error).message
    }
  }

  async function setStep(id: number, step: number): Promise<void> {
    error.value = null
    try {
      await api.call('checkpoints.update', { id, step })
      await load()
    } catch (err) {
      error.value = (err as Error).message
    }
  }

  api.on('checkpoints.changed', () => void load())
  api.on('project.changed', () => {
    selectedId.value = null
    detail.value = null
    void load()
  })

  return { list, stores, latest, selectedId, selected, detail, error, lastRegistration, load, select, register, setStep }
})

import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { SaeEvaluation, SaeInfo, SaeMetric } from '../../../shared/api'
import { api } from '../api/client'

const key = (checkpointId: number, layer: number): string => `${checkpointId}:${layer}`

export const useSaeStore = defineStore('saes', () => {
  const list = ref<SaeInfo[]>([])
  /** Training curves by checkpoint and layer: loaded from the project, extended live by events. */
  const curves = ref<Record<string, SaeMetric[]>>({})
  /** The SAE whose curve arrived last: what the live chart follows while a job runs. */
  const live = ref<{ checkpointId: number; layer: number } | null>(null)
  const layers = computed(() => [...new Set(list.value.map((s) => s.layer))].sort((a, b) => a - b))

  const error = ref<string | null>(null)
  /** Splice evaluations of the current SAEs (loss recovered, CE, KL), every layer, by layer and step. */
  const evaluations = ref<SaeEvaluation[]>([])

  async function loadEvaluations(): Promise<void> {
    try {
      evaluations.value = await api.call('saes.evaluations')
    } catch {
      evaluations.value = []
    }
  }

  async function load(): Promise<void> {
    try {
      list.value = await api.call('saes.list')
      error.value = null
    } catch (err) {
      // No project open, or the server unreachable: an empty list, and why.
      list.value = []
      error.value = (err as Error).message
    }
  }

  async function loadCurve(checkpointId: number, layer: number): Promise<void> {
    curves.value = { ...curves.value, [key(checkpointId, layer)]: await api.call('saes.metrics', { checkpointId, layer }) }
  }

  function curve(checkpointId: number, layer: number): SaeMetric[] {
    return curves.value[key(checkpointId, layer)] ?? []
  }

  api.on('sae.metric', (m) => {
    const k = key(m.checkpointId, m.layer)
    const existing = (curves.value[k] ?? []).filter((x) => x.step < m.step)
    curves.value = { ...curves.value, [k]: [...existing, m] }
    live.value = { checkpointId: m.checkpointId, layer: m.layer }
  })
  api.on('job.updated', (job) => {
    if (job.kind === 'evaluate-saes' && job.state === 'done') void loadEvaluations()
    if (job.kind === 'train-series' && job.state !== 'running' && job.state !== 'queued') {
      // The run is over: the chart goes back to following the selected checkpoint.
      live.value = null
      void load()
    }
  })
  api.on('project.changed', () => {
    curves.value = {}
    live.value = null
    void load()
    void loadEvaluations()
  })

  return { list, curves, live, layers, error, evaluations, load, loadCurve, curve, loadEvaluations }
})

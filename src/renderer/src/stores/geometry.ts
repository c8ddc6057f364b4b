import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { GeometryResultInfo } from '../../../shared/geometry'
import { api } from '../api/client'

type Analysis = GeometryResultInfo['analysis']
export type GeometryResult = GeometryResultInfo & { params: unknown; result: unknown }

/** Stored geometry results of the open project: summaries per analysis, full results loaded on demand. */
export const useGeometryStore = defineStore('geometry', () => {
  const summaries = ref<Record<Analysis, GeometryResultInfo[]>>({ galaxy: [], lobes: [], crystals: [] })
  const full = ref<Record<number, GeometryResult>>({})
  const error = ref<string | null>(null)

  async function load(layer: number): Promise<void> {
    error.value = null
    try {
      const [galaxy, lobes, crystals] = await Promise.all((['galaxy', 'lobes', 'crystals'] as const).map((analysis) => api.call('geometry.results', { analysis, layer })))
      summaries.value = { galaxy: galaxy!, lobes: lobes!, crystals: crystals! }
    } catch (err) {
      error.value = (err as Error).message
    }
  }

  async function result(id: number): Promise<GeometryResult> {
    full.value[id] ??= await api.call('geometry.result', { id })
    return full.value[id]
  }

  return { summaries, full, error, load, result }
})

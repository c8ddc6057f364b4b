import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { GeometryAnalysis, GeometryResult, GeometryResultInfo, GeometryResultOf } from '../../../shared/geometry'
import { api } from '../api/client'

type SummaryOf<A extends GeometryAnalysis> = Extract<GeometryResultInfo, { analysis: A }>
const of =
  <A extends GeometryAnalysis>(analysis: A) =>
  (r: GeometryResultInfo): r is SummaryOf<A> =>
    r.analysis === analysis

/** Stored geometry results of the open project: summaries per analysis, full results loaded on demand. */
export const useGeometryStore = defineStore('geometry', () => {
  const summaries = ref<{ galaxy: SummaryOf<'galaxy'>[]; lobes: SummaryOf<'lobes'>[]; crystals: SummaryOf<'crystals'>[] }>({
    galaxy: [],
    lobes: [],
    crystals: []
  })
  const full = ref<Record<number, GeometryResult>>({})
  const error = ref<string | null>(null)

  async function load(layer: number): Promise<void> {
    error.value = null
    try {
      const [galaxy, lobes, crystals] = await Promise.all(
        (['galaxy', 'lobes', 'crystals'] as const).map((analysis) => api.call('geometry.results', { analysis, layer }))
      )
      summaries.value = { galaxy: galaxy!.filter(of('galaxy')), lobes: lobes!.filter(of('lobes')), crystals: crystals!.filter(of('crystals')) }
    } catch (err) {
      error.value = (err as Error).message
    }
  }

  /** One stored result in full, of the analysis asked for (null if the id holds another analysis). */
  async function result<A extends GeometryAnalysis>(id: number, analysis: A): Promise<GeometryResultOf<A> | null> {
    full.value[id] ??= await api.call('geometry.result', { id })
    const r = full.value[id]
    return r.analysis === analysis ? (r as GeometryResultOf<A>) : null
  }

  return { summaries, full, error, load, result }
})

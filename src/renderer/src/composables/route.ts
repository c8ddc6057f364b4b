// The current view in the address hash (#/label?set=2), so a reload returns to the same place.
import { ref } from 'vue'

export type ViewName = 'checkpoints' | 'label' | 'features' | 'composition' | 'dynamics' | 'geometry'

function parse(): { view: ViewName; params: URLSearchParams } {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?')
  const view = (['checkpoints', 'label', 'features', 'composition', 'dynamics', 'geometry'] as const).find((v) => v === path) ?? 'checkpoints'
  return { view, params: new URLSearchParams(query ?? '') }
}

export const route = ref(parse())
window.addEventListener('hashchange', () => (route.value = parse()))

export function navigate(view: ViewName, params: Record<string, string | number> = {}): void {
  const q = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString()
  location.hash = `#/${view}${q ? `?${q}` : ''}`
}

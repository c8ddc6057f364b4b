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

/** The address of a view, for links that are real links. */
export function href(view: ViewName, params: Record<string, string | number> = {}): string {
  const q = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString()
  return `#/${view}${q ? `?${q}` : ''}`
}

/** Goes to a view; `replace` keeps stepping through a list (arrow keys) from filling the back button's history. */
export function navigate(view: ViewName, params: Record<string, string | number> = {}, opts: { replace?: boolean } = {}): void {
  if (opts.replace) location.replace(href(view, params))
  else location.hash = href(view, params)
}

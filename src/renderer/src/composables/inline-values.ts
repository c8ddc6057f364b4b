// Whether example contexts show each token's activation value inline: one choice for the feature page and the
// Label view, remembered in the browser.
import { ref, watch, type Ref } from 'vue'

const KEY = 'featuretrace.inlineValues'
let shared: Ref<boolean> | null = null

export function useInlineValues(): Ref<boolean> {
  if (!shared) {
    shared = ref(localStorage.getItem(KEY) === '1')
    watch(shared, (on) => localStorage.setItem(KEY, on ? '1' : '0'))
  }
  return shared
}

// Which feature set a view opens on when the address names none.
import type { FeatureSetInfo } from '../../../shared/api'

/** The current SAEs' latest checkpoint (step 0 is the untrained model), an SAE set before an imported one at the same step. */
export function defaultSet(sets: FeatureSetInfo[]): number | null {
  const current = sets.filter((s) => !s.superseded)
  const best = [...current].sort((a, b) => (b.step ?? -1) - (a.step ?? -1) || Number(b.source === 'sae') - Number(a.source === 'sae'))[0]
  return (best ?? sets[0])?.id ?? null
}

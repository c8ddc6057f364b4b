// A layer's SAE series in step order, each SAE with the activation store it was trained on: what drift,
// formation and the dynamics job walk along.
import type { SaeInfo } from '../../shared/api'
import { UserError } from '../../shared/api'
import type { Project } from '../project'
import type { FormationCheckpoint } from './formation'

export function layerSeries(project: Project, layer: number): { saes: SaeInfo[]; checkpoints: FormationCheckpoint[] } {
  const saes = project.saes.list().filter((s) => s.layer === layer).sort((a, b) => a.step - b.step)
  if (saes.length === 0) throw new UserError(`No SAEs at layer ${layer}; train a series first.`)
  const stores = project.activations.list()
  const checkpoints = saes.map((s) => {
    const store = stores.find((x) => x.checkpointId === s.checkpointId && x.layer === layer)
    if (!store) throw new UserError(`Step ${s.step} has an SAE but no layer-${layer} activations.`)
    return { step: s.step, sae: s.path, activations: store.path }
  })
  return { saes, checkpoints }
}

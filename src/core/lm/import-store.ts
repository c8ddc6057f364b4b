// Attaching an activation store made elsewhere (e.g. by resources/harvest_activations.py) to a checkpoint.
import { resolve } from 'node:path'
import type { ActivationStoreInfo } from '../../shared/api'
import { UserError } from '../../shared/api'
import { ActivationStore } from '../io/activation-store'
import type { Project } from '../project'

export async function importActivationStore(project: Project, path: string, checkpointId: number): Promise<ActivationStoreInfo> {
  const checkpoint = project.checkpoints.get(checkpointId)
  const store = await ActivationStore.open(resolve(path))
  const m = store.manifest
  if (m.d !== checkpoint.dModel) {
    throw new UserError(`${resolve(path)} holds d=${m.d} activations but checkpoint step ${checkpoint.step} has d_model=${checkpoint.dModel}.`)
  }
  // An SAE-only checkpoint's depth is unknown: any layer is taken.
  if (checkpoint.layers !== null && m.layer > checkpoint.layers) {
    throw new UserError(`${resolve(path)} is for layer ${m.layer} but checkpoint step ${checkpoint.step} has ${checkpoint.layers} layers.`)
  }
  return project.activations.upsert({
    checkpointId, layer: m.layer, path: resolve(path), rows: m.rows, d: m.d, dtype: m.dtype, context: m.context, corpus: m.corpus, imported: true
  })
}

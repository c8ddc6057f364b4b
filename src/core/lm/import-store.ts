// Attaching an activation store made elsewhere (e.g. by resources/harvest_activations.py) to a checkpoint.
import { resolve } from 'node:path'
import type { ActivationStoreInfo } from '../../shared/api'
import { UserError } from '../../shared/api'
import { ActivationStore, F16_MAX } from '../io/activation-store'
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
  // Every value is read once: a store written elsewhere may hold what its dtype could not (f16 overflow → Inf).
  const check = await store.checkValues()
  if (check.nonFinite > 0) {
    const where = `${check.first!.file}, row ${check.first!.row}`
    const cause =
      m.dtype === 'f16'
        ? `float16 holds at most ±${F16_MAX.toLocaleString('en')}, so these are most likely values that overflowed when the store was written ` +
          `(the largest finite |x| stored is ${check.maxAbs.toPrecision(4)}). Harvest layer ${m.layer} again with --dtype f32 ` +
          '(resources/harvest_activations.py --dtype f32 likewise) and import that store.'
        : "The model produced them: check the checkpoint's weights and config.json, then harvest again."
    throw new UserError(
      `${resolve(path)}: ${check.nonFinite.toLocaleString('en')} of ${check.values.toLocaleString('en')} stored values ` +
        `(in ${check.rows.toLocaleString('en')} rows; the first in ${where}) are Inf or NaN. ${cause} Nothing was imported.`
    )
  }
  return project.activations.upsert({
    checkpointId,
    layer: m.layer,
    path: resolve(path),
    rows: m.rows,
    d: m.d,
    dtype: m.dtype,
    context: m.context,
    corpus: m.corpus,
    imported: true
  })
}

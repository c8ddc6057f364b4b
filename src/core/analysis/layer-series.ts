// A layer's SAE series in step order, each SAE with the activation store it was trained on: what drift,
// formation and the dynamics job walk along. Drift needs the SAEs alone (SAE-only checkpoints included);
// formation needs every step's activations.
import type { SaeInfo } from '../../shared/api'
import { UserError } from '../../shared/api'
import type { Project } from '../project'
import type { FormationCheckpoint } from './formation'

/** The current SAEs of a layer in step order: all drift needs. */
export function layerSaes(project: Project, layer: number): SaeInfo[] {
  const saes = project.saes
    .list()
    .filter((s) => s.layer === layer)
    .sort((a, b) => a.step - b.step)
  if (saes.length === 0) throw new UserError(`No SAEs at layer ${layer}; train a series first.`)
  return saes
}

/** The steps of a layer's SAE series without activations at that layer (formation cannot run on them). */
export function stepsWithoutActivations(project: Project, layer: number): number[] {
  const stores = project.activations.list()
  return layerSaes(project, layer)
    .filter((s) => !stores.some((x) => x.checkpointId === s.checkpointId && x.layer === layer))
    .map((s) => s.step)
}

export function layerSeries(project: Project, layer: number): { saes: SaeInfo[]; checkpoints: FormationCheckpoint[] } {
  const saes = layerSaes(project, layer)
  const stores = project.activations.list()
  const missing = stepsWithoutActivations(project, layer)
  if (missing.length) {
    const weightless = new Set(
      project.checkpoints
        .list()
        .filter((c) => c.path === null)
        .map((c) => c.step)
    )
    const saeOnly = missing.filter((s) => weightless.has(s))
    throw new UserError(
      `Step${missing.length === 1 ? '' : 's'} ${missing.join(', ')} ha${missing.length === 1 ? 's' : 've'} an SAE but no layer-${layer} activations, which formation needs ` +
        `(drift needs only the SAEs)${saeOnly.length ? `; step${saeOnly.length === 1 ? '' : 's'} ${saeOnly.join(', ')} ${saeOnly.length === 1 ? 'is' : 'are'} SAE-only (no weights to harvest): attach activations made elsewhere with \`featuretrace import-activations\`, or register ${saeOnly.length === 1 ? 'its' : 'their'} checkpoint folder${saeOnly.length === 1 ? '' : 's'} and harvest` : ': harvest them'}.`
    )
  }
  const checkpoints = saes.map((s) => {
    const store = stores.find((x) => x.checkpointId === s.checkpointId && x.layer === layer)!
    return { step: s.step, sae: s.path, activations: store.path }
  })
  return { saes, checkpoints }
}

// The full training state beside a run in progress (OUT.partial): parameters, Adam moments, step, data
// position and counters, so an interrupted run resumes where it stopped.
import * as tf from '@tensorflow/tfjs-core'
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { UserError } from '../../shared/errors'
import { SafetensorsFile, writeSafetensors } from '../io/safetensors'
import type { Scaling } from './scaling'
import { PARAM_NAMES, type Optimizer, type SaeTensors } from './topk'

/** The manifest, written last: it names the tensors file of the same save, so the pair always matches. */
const STATE_JSON = 'training_state.json'
/** Tensors of one save: `training_state.step-<step>.safetensors` (a run of the previous release: without the step). */
const TENSORS_FILE = /^training_state(\.step-\d+)?\.safetensors$/
const LEGACY_TENSORS = 'training_state.safetensors'

/** A tensor's values, read asynchronously (WebGPU in Node has no synchronous read). */
async function tensorData(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array
}

export interface TrainingState {
  step: number
  tokens: number
  position: { epoch: number; row: number }
  scaling: Scaling
  configKey: string
  warmStartedFrom: string | null
}

const count = z.number().int().nonnegative()
const manifestSchema = z.object({
  step: count,
  tokens: count,
  position: z.object({ epoch: count, row: count }),
  scaling: z.object({ kind: z.enum(['none', 'unit_norm', 'constant', 'layer_norm', 'std_layer_norm', 'norm_rescale']), factor: z.number() }),
  configKey: z.string(),
  warmStartedFrom: z.string().nullable(),
  /** Absent in a run saved by the previous release, whose tensors file had no step in its name. */
  tensorsFile: z.string().regex(TENSORS_FILE).optional()
})

/**
 * Saves parameters, Adam moments and counters next to a run in progress, so that a crash at any moment leaves
 * a matching pair: the tensors go to a new file named for the step (written to a temporary name and renamed),
 * then the manifest naming that file replaces the old one in one rename, and only then is the previous
 * tensors file removed. A crash before the manifest's rename resumes from the previous save.
 */
export async function saveState(dir: string, p: SaeTensors, adam: Optimizer, since: tf.Tensor, counts: tf.Tensor, state: TrainingState): Promise<void> {
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {}
  const moments = await adam.exportMoments()
  for (const name of PARAM_NAMES) {
    tensors[name] = { dtype: 'F32', shape: p[name].shape, data: await tensorData(p[name]) }
    tensors[`adam_m.${name}`] = { dtype: 'F32', shape: p[name].shape, data: moments[name].m }
    tensors[`adam_v.${name}`] = { dtype: 'F32', shape: p[name].shape, data: moments[name].v }
  }
  tensors.tokens_since_fired = { dtype: 'F32', shape: since.shape, data: await tensorData(since) }
  tensors.fire_counts = { dtype: 'F32', shape: counts.shape, data: await tensorData(counts) }
  const tensorsFile = `training_state.step-${state.step}.safetensors`
  await writeSafetensors(join(dir, tensorsFile), tensors)
  writeFileSync(join(dir, `${STATE_JSON}.tmp`), JSON.stringify({ ...state, tensorsFile }))
  renameSync(join(dir, `${STATE_JSON}.tmp`), join(dir, STATE_JSON))
  for (const f of readdirSync(dir)) if (TENSORS_FILE.test(f) && f !== tensorsFile) rmSync(join(dir, f), { force: true })
}

/**
 * Reads the state a run in progress saved, or null where there is none (a fresh run).
 * @throws UserError naming the file when the manifest is damaged or names a tensors file that is missing.
 */
export async function loadState(dir: string): Promise<{ state: TrainingState; tensors: Record<string, Float32Array> } | null> {
  const manifestPath = join(dir, STATE_JSON)
  if (!existsSync(manifestPath)) return null
  let parsed: z.infer<typeof manifestSchema>
  try {
    parsed = manifestSchema.parse(JSON.parse(readFileSync(manifestPath, 'utf8')))
  } catch (err) {
    throw new UserError(
      `The saved training state ${manifestPath} cannot be read (${err instanceof z.ZodError ? z.prettifyError(err) : (err as Error).message}). Delete the folder ${dir} to train from the start.`
    )
  }
  const { tensorsFile = LEGACY_TENSORS, ...state } = parsed
  const path = join(dir, tensorsFile)
  if (!existsSync(path))
    throw new UserError(`The saved training state ${manifestPath} names ${tensorsFile}, which is missing. Delete the folder ${dir} to train from the start.`)
  const f = await SafetensorsFile.open(path)
  try {
    const tensors: Record<string, Float32Array> = {}
    for (const name of f.header.tensors.keys()) tensors[name] = await f.readFloat32(name)
    return { state, tensors }
  } finally {
    await f.close()
  }
}

/** Removes a run's saved state (the manifest and every tensors file), when it finishes or starts afresh. */
export function removeState(dir: string): void {
  rmSync(join(dir, STATE_JSON), { force: true })
  if (!existsSync(dir)) return
  for (const f of readdirSync(dir)) if (TENSORS_FILE.test(f)) rmSync(join(dir, f), { force: true })
}

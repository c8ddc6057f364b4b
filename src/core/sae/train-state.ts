// The full training state beside a run in progress (OUT.partial): parameters, Adam moments, step, data
// position and counters, so an interrupted run resumes where it stopped.
import * as tf from '@tensorflow/tfjs-core'
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SafetensorsFile, writeSafetensors } from '../io/safetensors'
import type { Scaling } from './scaling'
import { PARAM_NAMES, type Optimizer, type SaeTensors } from './topk'

const STATE_JSON = 'training_state.json'
const STATE_TENSORS = 'training_state.safetensors'

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

/** Saves parameters, Adam moments and counters next to a run in progress, atomically. */
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
  await writeSafetensors(join(dir, STATE_TENSORS), tensors)
  writeFileSync(join(dir, `${STATE_JSON}.tmp`), JSON.stringify(state))
  renameSync(join(dir, `${STATE_JSON}.tmp`), join(dir, STATE_JSON))
}

export async function loadState(dir: string): Promise<{ state: TrainingState; tensors: Record<string, Float32Array> } | null> {
  if (!existsSync(join(dir, STATE_JSON)) || !existsSync(join(dir, STATE_TENSORS))) return null
  const state = JSON.parse(readFileSync(join(dir, STATE_JSON), 'utf8')) as TrainingState
  const f = await SafetensorsFile.open(join(dir, STATE_TENSORS))
  try {
    const tensors: Record<string, Float32Array> = {}
    for (const name of f.header.tensors.keys()) tensors[name] = await f.readFloat32(name)
    return { state, tensors }
  } finally {
    await f.close()
  }
}

export const STATE_FILES = [STATE_JSON, STATE_TENSORS]

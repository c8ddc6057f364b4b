// SAEs on disk in SAELens' layout (cfg.json + sae_weights.safetensors + sparsity.safetensors), and the
// full training state beside a run in progress.
import * as tf from '@tensorflow/tfjs-core'
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../../shared/api'
import { SafetensorsFile, writeSafetensors } from '../io/safetensors'
import { readSaeLensWeights, resolveSaeLensConfig } from '../io/sae-formats/saelens'
import type { TrainConfig } from './config'
import type { Scaling } from './scaling'
import { codeWidth, SaeEncoder, type EncodingRule } from './encoding'
import { PARAM_NAMES, type Optimizer, type SaeTensors } from './topk'

export const CFG_FILE = 'cfg.json'
export const WEIGHTS_FILE = 'sae_weights.safetensors'
export const SPARSITY_FILE = 'sparsity.safetensors'
const STATE_JSON = 'training_state.json'
const STATE_TENSORS = 'training_state.safetensors'

/** Settings SAELens has no key for, kept under "featuretrace" in cfg.json. */
export interface FeatureTraceMeta {
  checkpoint_step: number | null
  layer: number | null
  preset: string
  input_scaling: Scaling['kind']
  scaling_factor: number
  tokens_seen: number
  steps: number
  warm_started_from: string | null
  config: TrainConfig
  metrics: Record<string, number> | null
  activations: string
}

export interface SaeOnDisk {
  dir: string
  d: number
  n: number
  k: number
  scaling: Scaling
  cfg: Record<string, unknown>
  featuretrace: Partial<FeatureTraceMeta>
}

const SAELENS_NORMALIZE: Record<Scaling['kind'], string> = {
  none: 'none',
  // SAELens has no per-token unit norm or plain constant: FeatureTrace's key says what to apply.
  unit_norm: 'none',
  layer_norm: 'layer_norm',
  constant: 'none',
  std_layer_norm: 'layer_norm',
  norm_rescale: 'constant_norm_rescale'
}

function tensorData(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array
}

/** TransformerLens' name for the residual stream after block L (L = 0: before the first block). */
function hookName(layer: number | null): string | null {
  if (layer === null) return null
  return layer === 0 ? 'blocks.0.hook_resid_pre' : `blocks.${layer - 1}.hook_resid_post`
}

export async function writeSaeFiles(
  dir: string,
  p: SaeTensors,
  meta: FeatureTraceMeta,
  extra: { modelName?: string; hookName?: string; contextSize?: number; dataset?: string },
  density: Float32Array | null
): Promise<void> {
  const [d, n] = p.Wenc.shape as [number, number]
  const cfg = {
    architecture: 'topk',
    d_in: d,
    d_sae: n,
    k: meta.config.k,
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: true,
    normalize_activations: SAELENS_NORMALIZE[meta.input_scaling],
    model_name: extra.modelName ?? null,
    hook_name: extra.hookName ?? hookName(meta.layer),
    context_size: extra.contextSize ?? null,
    dataset_path: extra.dataset ?? null,
    metadata: { model_name: extra.modelName ?? null, hook_name: extra.hookName ?? null, context_size: extra.contextSize ?? null },
    featuretrace: meta
  }
  writeFileSync(join(dir, CFG_FILE), JSON.stringify(cfg, null, 2))
  await writeSafetensors(
    join(dir, WEIGHTS_FILE),
    {
      W_enc: { dtype: 'F32', shape: [d, n], data: tensorData(p.Wenc) },
      W_dec: { dtype: 'F32', shape: [n, d], data: tensorData(p.Wdec) },
      b_enc: { dtype: 'F32', shape: [n], data: tensorData(p.benc) },
      b_dec: { dtype: 'F32', shape: [d], data: tensorData(p.bdec) }
    },
    { format: 'pt' }
  )
  if (density) {
    const log = density.map((x) => Math.log10(x + 1e-10))
    await writeSafetensors(join(dir, SPARSITY_FILE), { sparsity: { dtype: 'F32', shape: [n], data: log } })
  }
}

export type SaeWeightName = 'W_enc' | 'W_dec' | 'b_enc' | 'b_dec'
export type SaeFromDisk = SaeOnDisk & { rule: EncodingRule; weights: Record<SaeWeightName, Float32Array> & { threshold: Float32Array | null } }

/**
 * Reads an SAE folder in SAELens' layout (FeatureTrace's own, an imported copy, or SAELens' own): cfg.json
 * resolved by SAELens' rules through the declared key table (io/sae-formats/keys.ts, refusing by name
 * what FeatureTrace does not compute) and the weights in the form FeatureTrace's plain rules reproduce
 * SAELens with (decoder norms folded for rescale_acts_by_decoder_norm, JumpReLU thresholds, …). Shapes
 * are checked against the config (orientation from the config, not names). `k` is the most (value, index)
 * pairs a token's code can hold (TopK's k, else d_sae; see codeWidth); `rule` is how it encodes.
 */
export async function readSae(dir: string): Promise<SaeFromDisk> {
  const cfgFile = join(dir, CFG_FILE)
  if (!existsSync(cfgFile)) throw new UserError(`${dir} is not an SAE folder: ${CFG_FILE} is missing.`)
  let cfg: Record<string, unknown>
  try {
    cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>
  } catch (err) {
    throw new UserError(`${cfgFile} is not valid JSON (${(err as Error).message}).`)
  }
  const c = resolveSaeLensConfig(cfgFile, cfg)
  const w = await readSaeLensWeights(dir, c)
  const weights = { W_enc: w.W_enc, W_dec: w.W_dec, b_enc: w.b_enc, b_dec: w.b_dec, threshold: w.threshold }
  return { dir, d: c.d, n: c.n, k: codeWidth(c.rule, c.n), scaling: c.rule.scaling, cfg, featuretrace: c.featuretrace ?? {}, rule: c.rule, weights }
}

/** An SAE read from disk with its encoding rule, ready to encode (the caller disposes it). */
export function saeEncoder(sae: SaeFromDisk): SaeEncoder {
  return new SaeEncoder(sae.d, sae.n, sae.weights, sae.rule)
}

/** An SAE read from disk as trainable/encodable tensors (the caller disposes them with disposeParams). */
export function saeTensors(sae: Pick<SaeOnDisk, 'd' | 'n'> & { weights: Record<'W_enc' | 'W_dec' | 'b_enc' | 'b_dec', Float32Array> }): SaeTensors {
  const { d, n, weights: w } = sae
  return {
    Wenc: tf.variable(tf.tensor2d(w.W_enc, [d, n])),
    benc: tf.variable(tf.tensor1d(w.b_enc)),
    Wdec: tf.variable(tf.tensor2d(w.W_dec, [n, d])),
    bdec: tf.variable(tf.tensor1d(w.b_dec))
  }
}

export function isCompleteSae(dir: string): boolean {
  return existsSync(join(dir, CFG_FILE)) && existsSync(join(dir, WEIGHTS_FILE))
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
    tensors[name] = { dtype: 'F32', shape: p[name].shape, data: tensorData(p[name]) }
    tensors[`adam_m.${name}`] = { dtype: 'F32', shape: p[name].shape, data: moments[name].m }
    tensors[`adam_v.${name}`] = { dtype: 'F32', shape: p[name].shape, data: moments[name].v }
  }
  tensors.tokens_since_fired = { dtype: 'F32', shape: since.shape, data: tensorData(since) }
  tensors.fire_counts = { dtype: 'F32', shape: counts.shape, data: tensorData(counts) }
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

// SAELens folders: cfg.json + sae_weights.safetensors (W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc,
// b_dec; JumpReLU adds threshold [d_sae]) + optional sparsity.safetensors. FeatureTrace's own SAEs are
// this layout too, with a "featuretrace" key for what SAELens has no key for.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../../../shared/api'
import type { EncodingRule } from '../../sae/encoding'
import { saelensScaling, type FeatureTraceMeta } from '../../sae/io'
import type { Scaling } from '../../sae/scaling'
import { SafetensorsFile } from '../safetensors'
import { checkShape, checkTensors, layerOfHook, positiveInt, readJson, type ForeignSae } from './common'

export function isSaeLensFolder(dir: string): boolean {
  return existsSync(join(dir, 'cfg.json')) && existsSync(join(dir, 'sae_weights.safetensors'))
}

export async function describeSaeLens(dir: string): Promise<ForeignSae> {
  const cfgFile = join(dir, 'cfg.json')
  const cfg = readJson(cfgFile, readFileSync(cfgFile, 'utf8'))
  const architecture = cfg.architecture ?? (cfg.activation_fn_str === 'topk' ? 'topk' : undefined)
  if (architecture !== 'topk' && architecture !== 'jumprelu') {
    throw new UserError(`${cfgFile}: architecture "${String(architecture)}" is not one FeatureTrace imports; it reads TopK and JumpReLU SAEs.`)
  }
  const d = positiveInt(cfg.d_in)
  const n = positiveInt(cfg.d_sae)
  const k = positiveInt(cfg.k ?? (cfg.activation_fn_kwargs as { k?: unknown } | undefined)?.k)
  if (d === null || n === null) throw new UserError(`${cfgFile} needs positive integers d_in and d_sae.`)
  if (architecture === 'topk' && k === null) throw new UserError(`${cfgFile}: a TopK SAE needs a positive integer k.`)
  if (k !== null && k > n) throw new UserError(`${cfgFile}: k = ${k} is larger than d_sae = ${n}.`)
  if (cfg.reshape_activations !== undefined && cfg.reshape_activations !== 'none') {
    throw new UserError(`${cfgFile}: reshape_activations "${String(cfg.reshape_activations)}" (attention-head SAEs) is not supported; FeatureTrace reads residual-stream SAEs.`)
  }
  const ft = (cfg.featuretrace ?? null) as Partial<FeatureTraceMeta> | null
  const scaling: Scaling = ft?.input_scaling ? { kind: ft.input_scaling, factor: ft.scaling_factor ?? 1 } : saelensScaling(cfg, d, cfgFile)
  const rule: EncodingRule = { architecture, k: architecture === 'topk' ? k : null, applyBDecToInput: cfg.apply_b_dec_to_input !== false, scaling }
  const notes: string[] = []
  if (cfg.normalize_activations === 'expected_average_only_in') notes.push('normalize_activations "expected_average_only_in": SAELens applies no scaling at inference, nor does FeatureTrace.')

  const weightsFile = join(dir, 'sae_weights.safetensors')
  const sizes = `cfg.json (d_in ${d}, d_sae ${n})`
  const expected: Record<string, number[]> = { W_enc: [d, n], W_dec: [n, d], b_enc: [n], b_dec: [d], ...(architecture === 'jumprelu' ? { threshold: [n] } : {}) }
  const f = await SafetensorsFile.open(weightsFile)
  let dtype: string
  try {
    checkTensors(f, expected, sizes, { threshold: ': a JumpReLU SAE needs its per-latent threshold' })
    dtype = f.info('W_enc').dtype
  } finally {
    await f.close()
  }
  const sparsityFile = join(dir, 'sparsity.safetensors')
  let hasSparsity = false
  if (existsSync(sparsityFile)) {
    const s = await SafetensorsFile.open(sparsityFile)
    try {
      hasSparsity = s.header.tensors.has('sparsity')
      if (hasSparsity) checkShape(sparsityFile, 'sparsity', s.info('sparsity').shape, [n], sizes)
      else notes.push('sparsity.safetensors has no "sparsity" tensor; ignored.')
    } finally {
      await s.close()
    }
  }
  const meta = (cfg.metadata ?? cfg.meta ?? {}) as Record<string, unknown>
  const hook = (typeof meta.hook_name === 'string' ? meta.hook_name : typeof cfg.hook_name === 'string' ? cfg.hook_name : null) as string | null
  const layer = typeof ft?.layer === 'number' ? ft.layer : layerOfHook(hook)
  if (hook && layer === null) notes.push(`hook ${hook} is not the residual stream; choose the layer of the activations to use it on.`)
  return {
    path: dir,
    format: 'saelens',
    d,
    n,
    rule,
    dtype,
    hook,
    layer,
    step: typeof ft?.checkpoint_step === 'number' ? ft.checkpoint_step : null,
    metadata: { model_name: meta.model_name ?? cfg.model_name ?? null, hook_name: hook, context_size: meta.context_size ?? cfg.context_size ?? null, dataset_path: meta.dataset_path ?? cfg.dataset_path ?? null },
    notes,
    async readThreshold() {
      if (architecture !== 'jumprelu') return null
      const file = await SafetensorsFile.open(weightsFile)
      try {
        return await file.readFloat32('threshold')
      } finally {
        await file.close()
      }
    },
    async read() {
      const file = await SafetensorsFile.open(weightsFile)
      try {
        const w = {
          W_enc: await file.readFloat32('W_enc'),
          W_dec: await file.readFloat32('W_dec'),
          b_enc: await file.readFloat32('b_enc'),
          b_dec: await file.readFloat32('b_dec'),
          threshold: architecture === 'jumprelu' ? await file.readFloat32('threshold') : null,
          sparsity: null as Float32Array | null
        }
        if (hasSparsity) {
          const s = await SafetensorsFile.open(sparsityFile)
          try {
            w.sparsity = await s.readFloat32('sparsity')
          } finally {
            await s.close()
          }
        }
        return w
      } finally {
        await file.close()
      }
    }
  }
}

// SAELens folders: cfg.json + sae_weights.safetensors (W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc,
// b_dec; JumpReLU adds threshold [d_sae]) + optional sparsity.safetensors. FeatureTrace's own SAEs are
// this layout too, with a "featuretrace" key for what SAELens has no key for. Every cfg.json key is read
// through the declared table (keys.ts); the weights come back in the form whose plain rule (TopK,
// JumpReLU or ReLU) gives SAELens' latents: decoder norms and scaling factors folded in as SAELens does.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../../../shared/api'
import type { Architecture, EncodingRule, FeatureTraceMeta } from '../../sae/sae'
import type { Scaling, ScalingKind } from '../../sae/scaling'
import { SafetensorsFile } from '../safetensors'
import { checkShape, checkTensors, positiveInt, readJson, saeParts, streamOfHook, type ForeignSae, type ForeignWeights, type HookStream } from './common'
import { configValue, keyRefusal, undeclaredKeys, undeclaredTensors } from './keys'

export const SAELENS_CFG = 'cfg.json'
export const SAELENS_WEIGHTS = 'sae_weights.safetensors'
export const SAELENS_SPARSITY = 'sparsity.safetensors'

export function isSaeLensFolder(dir: string): boolean {
  return existsSync(join(dir, SAELENS_CFG)) && existsSync(join(dir, SAELENS_WEIGHTS))
}

/** A SAELens cfg.json resolved by SAELens' own rules (6.x, and handle_pre_6_0_config for older files). */
export interface SaeLensConfig {
  cfgFile: string
  cfg: Record<string, unknown>
  /** The architecture the file names (batchtopk stays batchtopk here; rule.architecture is what it encodes as). */
  source: string
  rule: EncodingRule
  d: number
  n: number
  /** topk / batchtopk: multiply pre-activations by ‖W_dec[i]‖ before the top k (folded into the weights on reading). */
  rescaleByDecoderNorm: boolean
  hook: string | null
  stream: HookStream
  featuretrace: Partial<FeatureTraceMeta> | null
  notes: string[]
}

const REFUSED_ARCHITECTURES: Record<string, string> = {
  gated:
    'is a gated SAE (a separate gate and magnitude path, b_gate, b_mag, r_mag), whose rule FeatureTrace does not compute; it reads topk, jumprelu, standard and batchtopk SAEs.',
  transcoder: 'is a transcoder: it reads one hook and predicts another (hook_name_out), not an SAE of the residual stream.',
  skip_transcoder: 'is a skip transcoder: it reads one hook and predicts another, not an SAE of the residual stream.',
  jumprelu_transcoder: 'is a transcoder: it reads one hook and predicts another, not an SAE of the residual stream.'
}
const TRAINING_ARCHITECTURES = ['batchtopk', 'matryoshka_batchtopk']

function bool(file: string, key: string, v: { value: unknown; name: string } | undefined, fallback: boolean): boolean {
  if (v === undefined || v.value === null) return fallback
  if (typeof v.value !== 'boolean') throw keyRefusal(file, v.name, v.value, 'is not a boolean (true or false).')
  return v.value
}

/** SAELens < 6 wrote no version; 6.x writes metadata.sae_lens_version. */
function isPre6(version: unknown): boolean {
  if (typeof version !== 'string') return true
  const major = Number(/^(\d+)/.exec(version)?.[1])
  return !Number.isFinite(major) || major < 6
}

/** normalize_activations for each input scaling SAELens has (unit_norm and constant have none: Sae.folded() folds them first). */
export function saelensNormalize(kind: ScalingKind): string {
  switch (kind) {
    case 'none':
      return 'none'
    case 'layer_norm':
    case 'std_layer_norm':
      return 'layer_norm'
    case 'norm_rescale':
      return 'constant_norm_rescale'
    default:
      throw new Error(`SAELens has no normalize_activations for input scaling ${kind}; fold it into the weights first (Sae.folded).`)
  }
}

/** Where a SAELens cfg says the inputs are scaled (SAELens' own definitions; the inverse of saelensNormalize). */
export function saelensScaling(cfg: Record<string, unknown>, d: number, file: string, notes: string[] = []): Scaling {
  const found = configValue('saelens', cfg, 'normalize_activations')
  // SAELens 5.x booleans and null (handle_pre_6_0_config).
  const norm = found === undefined || found.value === null || found.value === false ? 'none' : found.value === true ? 'expected_average_only_in' : found.value
  switch (norm) {
    case 'none':
      return { kind: 'none', factor: 1 }
    case 'expected_average_only_in':
      notes.push(
        'normalize_activations "expected_average_only_in": SAELens applies no scaling when it loads a folder (from_pretrained folds in a release\'s norm_scaling_factor, which a folder does not carry), nor does FeatureTrace.'
      )
      return { kind: 'none', factor: 1 }
    case 'layer_norm':
      return { kind: 'std_layer_norm', factor: 1 }
    case 'constant_norm_rescale':
      return { kind: 'norm_rescale', factor: Math.sqrt(d) }
    default:
      throw keyRefusal(
        file,
        found!.name,
        found!.value,
        'is not one SAELens defines (none, expected_average_only_in, constant_norm_rescale, layer_norm); FeatureTrace cannot reproduce its input scaling.'
      )
  }
}

/** Resolves a SAELens cfg.json: the encoding rule, sizes and hook, refusing by name every key that would change the maths in a way FeatureTrace does not compute. */
export function resolveSaeLensConfig(cfgFile: string, cfg: Record<string, unknown>): SaeLensConfig {
  const notes: string[] = []
  const get = (key: string): { value: unknown; name: string } | undefined => configValue('saelens', cfg, key)
  const pre6 = isPre6(get('sae_lens_version')?.value)
  const activationFn = get('activation_fn')
  const fn = activationFn?.value ?? 'relu'
  const kFound = get('k')
  const archFound = get('architecture')
  let source = typeof archFound?.value === 'string' ? archFound.value : archFound === undefined ? 'standard' : String(archFound.value)
  // handle_pre_6_0_config: a 5.x "topk" activation with its k makes a TopK SAE.
  if (pre6 && fn === 'topk' && kFound !== undefined) source = 'topk'
  if (fn !== 'relu' && fn !== 'topk')
    throw keyRefusal(cfgFile, activationFn!.name, fn, "is an activation FeatureTrace does not compute (SAELens' relu and topk are).")
  if (fn === 'topk' && source !== 'topk' && source !== 'batchtopk' && source !== 'matryoshka_batchtopk')
    throw keyRefusal(
      cfgFile,
      activationFn!.name,
      fn,
      `without a k (activation_fn_kwargs.k) on a "${source}" architecture: SAELens would not make it a TopK SAE either.`
    )
  if (REFUSED_ARCHITECTURES[source]) throw keyRefusal(cfgFile, 'architecture', source, REFUSED_ARCHITECTURES[source]!)
  if (source !== 'topk' && source !== 'jumprelu' && source !== 'standard' && !TRAINING_ARCHITECTURES.includes(source)) {
    throw keyRefusal(
      cfgFile,
      archFound?.name ?? 'architecture',
      source,
      'is not an architecture FeatureTrace computes (topk, jumprelu, standard, batchtopk, matryoshka_batchtopk).'
    )
  }
  const d = positiveInt(get('d_in')?.value)
  const n = positiveInt(get('d_sae')?.value)
  if (d === null || n === null) throw new UserError(`${cfgFile} needs positive integers d_in and d_sae.`)
  const isTopK = source === 'topk'
  let k: number | null = null
  if (isTopK) {
    k = kFound === undefined ? 100 : positiveInt(kFound.value)
    if (k === null) throw keyRefusal(cfgFile, kFound!.name, kFound!.value, 'is not a positive integer.')
    if (kFound === undefined) notes.push("cfg.json gives no k: SAELens' TopKSAEConfig default k = 100 is used.")
    if (k > n) throw keyRefusal(cfgFile, kFound?.name ?? 'k', k, `is larger than d_sae = ${n}.`)
  }
  const rescale =
    isTopK || TRAINING_ARCHITECTURES.includes(source) ? bool(cfgFile, 'rescale_acts_by_decoder_norm', get('rescale_acts_by_decoder_norm'), false) : false
  if (rescale)
    notes.push(
      'rescale_acts_by_decoder_norm: the decoder norms are folded into W_enc, b_enc and W_dec as SAELens does (_fold_norm_topk): the same latents as SAELens.'
    )
  if (TRAINING_ARCHITECTURES.includes(source))
    notes.push(
      `architecture "${source}" is SAELens' training form: converted as save_inference_model does, to a JumpReLU whose every threshold is the topk_threshold buffer.`
    )
  const reshape = get('reshape_activations')
  const hookFound = get('metadata.hook_name')
  const hook = typeof hookFound?.value === 'string' ? hookFound.value : null
  // handle_pre_6_0_config defaults reshape_activations to hook_z for hook_z hooks.
  const reshapeValue = reshape?.value ?? (pre6 && hook?.includes('hook_z') ? 'hook_z' : 'none')
  if (reshapeValue !== 'none')
    throw keyRefusal(
      cfgFile,
      reshape?.name ?? 'reshape_activations (SAELens < 6 default for a hook_z hook)',
      reshapeValue,
      "is an SAE of attention heads' outputs (hook_z), a stream FeatureTrace does not harvest."
    )
  const head = get('metadata.hook_head_index')
  if (head !== undefined && head.value !== null)
    throw keyRefusal(cfgFile, head.name, head.value, "is an SAE of one attention head's output, a stream FeatureTrace does not harvest.")
  const ft = (cfg.featuretrace ?? null) as Partial<FeatureTraceMeta> | null
  // Folders FeatureTrace wrote before format 2 hold unfolded weights: their input scaling comes first.
  const unfolded = ft?.input_scaling !== undefined && (ft.format_version ?? 1) < 2
  const scaling: Scaling = unfolded ? { kind: ft.input_scaling!, factor: ft.scaling_factor ?? 1 } : saelensScaling(cfg, d, cfgFile, notes)
  const architecture: Architecture = isTopK ? 'topk' : source === 'standard' ? 'standard' : 'jumprelu'
  const rule: EncodingRule = { architecture, k, applyBDecToInput: bool(cfgFile, 'apply_b_dec_to_input', get('apply_b_dec_to_input'), true), scaling }
  const dtype = get('dtype')?.value
  if (typeof dtype === 'string' && dtype !== 'float32' && dtype !== 'torch.float32')
    notes.push(`dtype "${dtype}": SAELens computes in it; FeatureTrace computes in float32.`)
  const unknown = undeclaredKeys('saelens', cfg)
  if (unknown.length)
    notes.push(
      `cfg.json keys FeatureTrace does not know (SAELens 6 does not read them either, or they are newer): ${unknown.join(', ')}. Check they do not change the encoding.`
    )
  const stream = typeof ft?.layer === 'number' ? { stream: 'residual' as const, layer: ft.layer, block: null } : streamOfHook(hook)
  return { cfgFile, cfg, source, rule, d, n, rescaleByDecoderNorm: rescale, hook, stream, featuretrace: ft, notes }
}

/** The tensors a resolved SAELens config needs, checked against the weights file's header; refuses tensors it does not declare. */
function checkSaeLensTensors(
  f: SafetensorsFile,
  c: SaeLensConfig
): { threshold: 'threshold' | 'log_threshold' | 'topk_threshold' | null; scalingFactor: boolean } {
  const { d, n, source } = c
  const sizes = `cfg.json (d_in ${d}, d_sae ${n})`
  const names = f.header.tensors
  const extra = undeclaredTensors('saelens', names.keys())
  if (extra.length)
    throw new UserError(
      `${f.file} holds tensor${extra.length > 1 ? 's' : ''} ${extra.join(', ')}, which a SAELens ${source} SAE does not have; FeatureTrace does not know what ${extra.length > 1 ? 'they do' : 'it does'} and refuses rather than skip ${extra.length > 1 ? 'them' : 'it'}.`
    )
  checkTensors(f, { W_enc: [d, n], W_dec: [n, d], b_enc: [n], b_dec: [d] }, sizes)
  let threshold: 'threshold' | 'log_threshold' | 'topk_threshold' | null = null
  if (source === 'jumprelu') {
    threshold = names.has('threshold') ? 'threshold' : names.has('log_threshold') ? 'log_threshold' : null
    if (!threshold) throw new UserError(`${f.file} has no tensor "threshold": a JumpReLU SAE needs its per-latent threshold.`)
    checkShape(f.file, threshold, f.info(threshold).shape, [n], sizes)
  } else if (TRAINING_ARCHITECTURES.includes(source)) {
    if (!names.has('topk_threshold'))
      throw new UserError(
        `${f.file} has no tensor "topk_threshold": a SAELens ${source} checkpoint keeps its global threshold there, without which its inference form cannot be made.`
      )
    const shape = f.info('topk_threshold').shape
    if (shape.reduce((a, b) => a * b, 1) !== 1) throw new UserError(`${f.file}: topk_threshold is [${shape.join(', ')}] but SAELens keeps one number there.`)
    threshold = 'topk_threshold'
  }
  const scalingFactor = names.has('scaling_factor')
  if (scalingFactor) checkShape(f.file, 'scaling_factor', f.info('scaling_factor').shape, [n], sizes)
  return { threshold, scalingFactor }
}

/** W_enc [d, n], b_enc, W_dec [n, d] with each latent's decoder norm folded in (SAELens' _fold_norm_topk); a zero row stays a latent that never fires. */
function foldDecoderNorms(w: ForeignWeights, d: number, n: number): void {
  for (let i = 0; i < n; i++) {
    let s = 0
    for (let j = 0; j < d; j++) s += w.W_dec[i * d + j]! ** 2
    const norm = Math.sqrt(s)
    // SAELens' pre-activation × 0 is 0 for every input: zero its encoder column and bias.
    const up = norm > 0 ? norm : 0
    w.b_enc[i]! *= up
    for (let j = 0; j < d; j++) w.W_enc[j * n + i]! *= up
    if (norm > 0) for (let j = 0; j < d; j++) w.W_dec[i * d + j]! /= norm
  }
}

/**
 * Reads a SAELens folder's weights in the form FeatureTrace's plain rules reproduce SAELens with: decoder
 * norms folded (rescale_acts_by_decoder_norm), log_threshold exponentiated, batchtopk's topk_threshold as
 * every latent's threshold, finetuning scaling_factor folded into W_dec.
 */
export async function readSaeLensWeights(dir: string, c: SaeLensConfig): Promise<ForeignWeights> {
  const weightsFile = join(dir, SAELENS_WEIGHTS)
  const file = await SafetensorsFile.open(weightsFile)
  try {
    const { threshold, scalingFactor } = checkSaeLensTensors(file, c)
    const w: ForeignWeights = {
      W_enc: await file.readFloat32('W_enc'),
      W_dec: await file.readFloat32('W_dec'),
      b_enc: await file.readFloat32('b_enc'),
      b_dec: await file.readFloat32('b_dec'),
      threshold: null,
      sparsity: null
    }
    if (c.rescaleByDecoderNorm) foldDecoderNorms(w, c.d, c.n)
    if (threshold === 'threshold') w.threshold = await file.readFloat32('threshold')
    else if (threshold === 'log_threshold') w.threshold = (await file.readFloat32('log_threshold')).map(Math.exp)
    else if (threshold === 'topk_threshold') w.threshold = new Float32Array(c.n).fill((await file.readFloat32('topk_threshold'))[0]!)
    if (scalingFactor) {
      const s = await file.readFloat32('scaling_factor')
      // SAELens drops an all-ones factor; any other scales each latent before decoding.
      if (s.some((x) => x !== 1)) for (let i = 0; i < c.n; i++) for (let j = 0; j < c.d; j++) w.W_dec[i * c.d + j]! *= s[i]!
    }
    const sparsityFile = join(dir, SAELENS_SPARSITY)
    if (existsSync(sparsityFile)) {
      const s = await SafetensorsFile.open(sparsityFile)
      try {
        if (s.header.tensors.has('sparsity')) {
          checkShape(sparsityFile, 'sparsity', s.info('sparsity').shape, [c.n], `cfg.json (d_in ${c.d}, d_sae ${c.n})`)
          w.sparsity = await s.readFloat32('sparsity')
        }
      } finally {
        await s.close()
      }
    }
    return w
  } finally {
    await file.close()
  }
}

export async function describeSaeLens(dir: string): Promise<ForeignSae> {
  const cfgFile = join(dir, SAELENS_CFG)
  const c = resolveSaeLensConfig(cfgFile, readJson(cfgFile, readFileSync(cfgFile, 'utf8')))
  const weightsFile = join(dir, SAELENS_WEIGHTS)
  const f = await SafetensorsFile.open(weightsFile)
  let dtype: string
  let thresholdName: string | null
  try {
    thresholdName = checkSaeLensTensors(f, c).threshold
    dtype = f.info('W_enc').dtype
  } finally {
    await f.close()
  }
  const sparsityFile = join(dir, SAELENS_SPARSITY)
  if (existsSync(sparsityFile)) {
    const s = await SafetensorsFile.open(sparsityFile)
    try {
      if (s.header.tensors.has('sparsity')) checkShape(sparsityFile, 'sparsity', s.info('sparsity').shape, [c.n], `cfg.json (d_in ${c.d}, d_sae ${c.n})`)
      else c.notes.push('sparsity.safetensors has no "sparsity" tensor; ignored.')
    } finally {
      await s.close()
    }
  }
  const { cfg, featuretrace: ft, hook } = c
  const meta = (cfg.metadata ?? {}) as Record<string, unknown>
  return {
    path: dir,
    format: 'saelens',
    d: c.d,
    n: c.n,
    rule: c.rule,
    dtype,
    hook,
    stream: c.stream,
    layer: c.stream.layer,
    step: typeof ft?.checkpoint_step === 'number' ? ft.checkpoint_step : null,
    metadata: {
      model_name: meta.model_name ?? cfg.model_name ?? null,
      hook_name: hook,
      context_size: meta.context_size ?? cfg.context_size ?? null,
      dataset_path: meta.dataset_path ?? cfg.dataset_path ?? null
    },
    notes: c.notes,
    async readThreshold() {
      if (!thresholdName) return null
      const file = await SafetensorsFile.open(weightsFile)
      try {
        const t = await file.readFloat32(thresholdName)
        return thresholdName === 'log_threshold' ? t.map(Math.exp) : thresholdName === 'topk_threshold' ? new Float32Array(c.n).fill(t[0]!) : t
      } finally {
        await file.close()
      }
    },
    read: async () => saeParts({ ...c, path: dir }, await readSaeLensWeights(dir, c))
  }
}

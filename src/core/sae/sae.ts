// One sparse autoencoder, whichever library trained it: sizes, weights and the rule that turns a raw
// residual-stream row into latents. Loaded from and saved to SAELens' folder layout (cfg.json +
// sae_weights.safetensors + sparsity.safetensors); every format reader (io/sae-formats) converts into it,
// and what is saved loads in SAELens 5.x and 6.x and encodes there as it encodes here.
import * as tf from '@tensorflow/tfjs-core'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { UserError } from '../../shared/api'
import { modelNameOf } from '../checkpoints/model-name'
import { UNNAMED_HOOK } from '../io/sae-formats/common'
import { readSaeLensWeights, resolveSaeLensConfig, saelensNormalize } from '../io/sae-formats/saelens'
import { writeSafetensors } from '../io/safetensors'
import type { OrtSaeEncoder } from '../ort/engine'
import { VERSION } from '../version'
import type { TrainConfig } from './config'
import { isTrainingScaling, scaleInputs, unscaleOutputs, type Scaling, type ScalingKind } from './scaling'
import { decodeSparse, disposeParams, encode, type Encoded, type SaeTensors } from './topk'

export const CFG_FILE = 'cfg.json'
export const WEIGHTS_FILE = 'sae_weights.safetensors'
export const SPARSITY_FILE = 'sparsity.safetensors'

/**
 * featuretrace.format_version of what save() writes. 2: the weights and SAELens' keys give the latents of raw
 * activations (an input scaling SAELens has no key for is folded into the weights) and input_scaling records the
 * scaling the SAE was trained with. Absent (FeatureTrace before it): input_scaling is applied to raw inputs first.
 */
export const SAE_FORMAT_VERSION = 2

/** The SAELens layout version save() writes as metadata.sae_lens_version: SAELens ≥ 6 then reads it without its pre-6.0 conversion. */
export const SAELENS_LAYOUT_VERSION = '6.0.0'

export const ARCHITECTURES = ['topk', 'jumprelu', 'standard'] as const
export type Architecture = (typeof ARCHITECTURES)[number]

export interface EncodingRule {
  /**
   * topk: the k largest of ReLU(pre); jumprelu: ReLU(pre) where pre > threshold (per latent); standard:
   * ReLU(pre) (SAELens' "standard" SAE, every positive latent fires).
   */
  architecture: Architecture
  /** TopK's k; null for JumpReLU and standard. */
  k: number | null
  /** Subtract b_dec from the (scaled) input before the encoder (SAELens' apply_b_dec_to_input). */
  applyBDecToInput: boolean
  scaling: Scaling
}

/**
 * Most (value, index) pairs a token's code can hold: k for TopK; every latent for JumpReLU and standard
 * SAEs, whose number of active latents varies (SAELens #494: ~500 of 1024 at the initial threshold). The
 * codes of a batch are as wide as its busiest token needs (see Sae.encode), never capped.
 */
export function codeWidth(rule: Pick<EncodingRule, 'architecture' | 'k'>, n: number): number {
  return rule.architecture === 'topk' ? Math.min(rule.k!, n) : n
}

/** Weights in SAELens' orientation: W_enc [d, n], W_dec [n, d], b_enc [n], b_dec [d], threshold [n] (JumpReLU only). */
export interface SaeWeights {
  W_enc: Float32Array
  W_dec: Float32Array
  b_enc: Float32Array
  b_dec: Float32Array
  threshold: Float32Array | null
}

/** What every format reader converts an SAE into, and what a trained SAE is made from. */
export interface SaeParts {
  d: number
  n: number
  rule: EncodingRule
  weights: SaeWeights
  /** log10 firing density per latent [n] (SAELens' sparsity.safetensors), when known. */
  sparsity: Float32Array | null
  /** The input scaling the SAE was trained with; default rule.scaling. */
  trainedScaling?: Scaling
  /** The file or folder it was read from, for messages. */
  source?: string
}

/** Settings SAELens has no key for, kept under "featuretrace" in cfg.json (trained SAEs; imports keep a subset). */
export interface FeatureTraceMeta {
  checkpoint_step: number | null
  layer: number | null
  preset: string
  /** The scaling the SAE was trained with (format 2: folded into the weights; before: applied to inputs). */
  input_scaling: ScalingKind
  scaling_factor: number
  tokens_seen: number
  steps: number
  warm_started_from: string | null
  config: TrainConfig
  metrics: Record<string, number> | null
  activations: string
  format_version: number
}

/** What SAELens' cfg.json says besides the weights and the rule: the model and hook the SAE reads, and its data. */
export interface SaveOptions {
  /** FeatureTrace's record (step, layer, preset, …); input_scaling, scaling_factor and format_version are set by save. */
  meta: Record<string, unknown> & { layer: number | null }
  /** The model's name (a Hugging Face or TransformerLens id), never a local path; null when unknown. */
  modelName: string | null
  /** TransformerLens hook; default: the residual stream at meta.layer, else UNNAMED_HOOK. */
  hookName?: string | null
  contextSize: number | null
  datasetPath: string | null
  prependBos: boolean | null
}

/** TransformerLens' hook for the residual stream after block L (L = 0: before the first block), and its block. */
export function residualHook(layer: number): { hook: string; block: number } {
  return layer === 0 ? { hook: 'blocks.0.hook_resid_pre', block: 0 } : { hook: `blocks.${layer - 1}.hook_resid_post`, block: layer - 1 }
}

/** How a scaling multiplies a row: α·x (constant family) or α·x/‖x‖ (norm family); layer norm stands alone. */
function scalingFamily(s: Scaling): { family: 'constant' | 'norm' | 'layer_norm'; alpha: number } {
  switch (s.kind) {
    case 'none':
      return { family: 'constant', alpha: 1 }
    case 'constant':
      return { family: 'constant', alpha: s.factor }
    case 'unit_norm':
      return { family: 'norm', alpha: 1 }
    case 'norm_rescale':
      return { family: 'norm', alpha: s.factor }
    case 'layer_norm':
    case 'std_layer_norm':
      return { family: 'layer_norm', alpha: 1 }
  }
}

/** The same scaling as SAELens can write it (unit norm → constant_norm_rescale, constant → none, layer_norm as SAELens'). */
function saeLensScaling(s: Scaling, d: number): Scaling {
  switch (s.kind) {
    case 'unit_norm':
      return { kind: 'norm_rescale', factor: Math.sqrt(d) }
    case 'constant':
      return { kind: 'none', factor: 1 }
    case 'layer_norm':
      return { kind: 'std_layer_norm', factor: 1 }
    default:
      return s
  }
}

/**
 * A sparse autoencoder: W_enc [d, n], W_dec [n, d], b_enc [n], b_dec [d] (and a JumpReLU's threshold [n]) with
 * the rule that encodes raw rows [rows, d] into latents [rows, n]. Encoding tensors are made on first use;
 * dispose() frees them.
 */
export class Sae {
  readonly d: number
  readonly n: number
  readonly rule: EncodingRule
  readonly weights: SaeWeights
  readonly sparsity: Float32Array | null
  readonly trainedScaling: Scaling
  /** The folder it was loaded from; null when made in memory. */
  readonly dir: string | null
  /** Where it was read from (dir, or a reader's source file), for messages; null when made in memory. */
  readonly source: string | null
  /** cfg.json as read ({} when made in memory). */
  readonly cfg: Record<string, unknown>
  readonly featuretrace: Partial<FeatureTraceMeta>
  /** The hook its cfg.json names, if any. */
  readonly hook: string | null
  private tensors: { p: SaeTensors; threshold: tf.Tensor1D | null } | null = null
  /** b_dec's stand-in for the ort encoder graph when the rule does not subtract b_dec (x − 0 = x exactly). */
  private zeroBDec: Float32Array | null = null

  constructor(
    parts: SaeParts,
    loaded: { dir: string; cfg: Record<string, unknown>; featuretrace: Partial<FeatureTraceMeta>; hook: string | null } | null = null
  ) {
    const { d, n, rule, weights: w } = parts
    const sizes: [keyof SaeWeights, number][] = [
      ['W_enc', d * n],
      ['W_dec', n * d],
      ['b_enc', n],
      ['b_dec', d]
    ]
    for (const [name, size] of sizes)
      if (w[name]!.length !== size) throw new Error(`Sae: ${name} holds ${w[name]!.length} values, [d ${d}, n ${n}] needs ${size}`)
    if ((rule.architecture === 'jumprelu') !== (w.threshold !== null))
      throw new Error(`Sae: a ${rule.architecture} SAE ${w.threshold ? 'has no' : 'needs a'} threshold`)
    this.d = d
    this.n = n
    this.rule = rule
    this.weights = w
    this.sparsity = parts.sparsity
    this.trainedScaling = parts.trainedScaling ?? rule.scaling
    this.dir = loaded?.dir ?? null
    this.source = loaded?.dir ?? parts.source ?? null
    this.cfg = loaded?.cfg ?? {}
    this.featuretrace = loaded?.featuretrace ?? {}
    this.hook = loaded?.hook ?? null
  }

  /** Most (value, index) pairs per token encode() returns: k for TopK, n otherwise. */
  get k(): number {
    return codeWidth(this.rule, this.n)
  }

  get scaling(): Scaling {
    return this.rule.scaling
  }

  /**
   * Reads an SAE folder in SAELens' layout (FeatureTrace's own, an imported copy, or SAELens' own) through the one
   * SAELens reader (io/sae-formats/saelens.ts: cfg.json resolved by SAELens' rules through the declared key table,
   * weights checked against the config's sizes). Folders FeatureTrace wrote before format 2 keep their rule: inputs
   * scaled by featuretrace.input_scaling, then the weights as stored. Errors name the folder and what is wrong.
   */
  static async load(dir: string): Promise<Sae> {
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
    const ft = c.featuretrace ?? {}
    const trained = ft.input_scaling ? { kind: ft.input_scaling, factor: ft.scaling_factor ?? 1 } : c.rule.scaling
    return new Sae(
      {
        d: c.d,
        n: c.n,
        rule: c.rule,
        weights: { W_enc: w.W_enc, W_dec: w.W_dec, b_enc: w.b_enc, b_dec: w.b_dec, threshold: w.threshold },
        sparsity: w.sparsity,
        trainedScaling: trained
      },
      { dir, cfg, featuretrace: ft, hook: c.hook }
    )
  }

  /** An SAE from training tensors (read back to the host) encoding inputs scaled by `scaling`. */
  static async fromTensors(p: SaeTensors, k: number, scaling: Scaling, density: Float32Array | null): Promise<Sae> {
    const [d, n] = p.Wenc.shape as [number, number]
    const [W_enc, W_dec, b_enc, b_dec] = (await Promise.all([p.Wenc.data(), p.Wdec.data(), p.benc.data(), p.bdec.data()])) as Float32Array[]
    return new Sae({
      d,
      n,
      rule: { architecture: 'topk', k, applyBDecToInput: true, scaling },
      weights: { W_enc: W_enc!, W_dec: W_dec!, b_enc: b_enc!, b_dec: b_dec!, threshold: null },
      sparsity: density ? density.map((x) => Math.log10(x + 1e-10)) : null
    })
  }

  /**
   * The same SAE encoding inputs scaled by `to` instead: the same latents and reconstruction of every raw row.
   * Both scalings must be of one family (α·x: none, constant; α·x/‖x‖: unit_norm, norm_rescale; layer norm).
   * With r = α_to / α_from: W_enc / r, b_dec · r, W_dec · r (SAELens' fold_activation_norm_scaling_factor is r = 1/s).
   */
  rescaled(to: Scaling): Sae {
    const from = scalingFamily(this.rule.scaling)
    const target = scalingFamily(to)
    if (from.family !== target.family) throw new Error(`Sae.rescaled: ${this.rule.scaling.kind} and ${to.kind} are not the same scaling up to a factor`)
    const r = target.alpha / from.alpha
    const w = this.weights
    const weights: SaeWeights =
      r === 1
        ? w
        : { W_enc: w.W_enc.map((x) => x / r), W_dec: w.W_dec.map((x) => x * r), b_enc: w.b_enc, b_dec: w.b_dec.map((x) => x * r), threshold: w.threshold }
    const parts = {
      d: this.d,
      n: this.n,
      rule: { ...this.rule, scaling: to },
      weights,
      sparsity: this.sparsity,
      trainedScaling: this.trainedScaling,
      source: this.source ?? undefined
    }
    return new Sae(parts, this.dir ? { dir: this.dir, cfg: this.cfg, featuretrace: this.featuretrace, hook: this.hook } : null)
  }

  /** The same SAE with its input scaling as SAELens can express it (normalize_activations), folded into the weights where needed. */
  folded(): Sae {
    return this.rescaled(saeLensScaling(this.rule.scaling, this.d))
  }

  /** The same SAE in the space it was trained in (for warm starts); UserError when that scaling is not one FeatureTrace trains with. */
  trainingForm(): Sae {
    const to = this.trainedScaling
    if (!isTrainingScaling(to.kind))
      throw new UserError(`${this.source ?? 'The SAE'} was trained with input scaling ${to.kind}, which FeatureTrace does not train with.`)
    return this.rescaled(to)
  }

  /** Fresh trainable variables of these weights (the caller disposes them with disposeParams). */
  variables(): SaeTensors {
    const { d, n, weights: w } = this
    return {
      Wenc: tf.variable(tf.tensor2d(w.W_enc, [d, n])),
      benc: tf.variable(tf.tensor1d(w.b_enc)),
      Wdec: tf.variable(tf.tensor2d(w.W_dec, [n, d])),
      bdec: tf.variable(tf.tensor1d(w.b_dec))
    }
  }

  /**
   * Writes the SAE into `dir` in SAELens' layout, loadable by SAELens 6.x (metadata.sae_lens_version, its current
   * path) and 5.x (hook_layer, hook_head_index, activation_fn "topk" with activation_fn_kwargs.k at the top level),
   * with any input scaling SAELens has no key for folded into the weights (folded()), so SAELens' encode of raw
   * activations gives the latents encode() gives. cfg.json is written last: a folder holding it is complete.
   */
  async save(dir: string, opts: SaveOptions): Promise<void> {
    const s = this.folded()
    const { d, n, rule, weights: w } = s
    for (const [name, a] of Object.entries(w) as [string, Float32Array | null][]) {
      if (!a) continue
      const bad = a.findIndex((x) => !Number.isFinite(x))
      if (bad >= 0) throw new UserError(`${this.source ?? dir}: ${name} holds a non-finite value at index ${bad}; the SAE is damaged and is not written.`)
    }
    const layer = opts.meta.layer
    const given = opts.hookName ?? null
    const hook = given ?? (layer !== null ? residualHook(layer).hook : UNNAMED_HOOK)
    // SAELens 5.x needs an int; the block of a blocks.B hook, else 0 (SAELens reads it only to run a model).
    const hookLayer = Number(/^blocks\.(\d+)\./.exec(hook)?.[1] ?? 0)
    const data = {
      model_name: opts.modelName,
      hook_name: hook,
      hook_head_index: null,
      context_size: opts.contextSize,
      dataset_path: opts.datasetPath,
      prepend_bos: opts.prependBos
    }
    const cfg = {
      architecture: rule.architecture,
      d_in: d,
      d_sae: n,
      ...(rule.k !== null ? { k: rule.k, rescale_acts_by_decoder_norm: false } : {}),
      dtype: 'float32',
      device: 'cpu',
      apply_b_dec_to_input: rule.applyBDecToInput,
      normalize_activations: saelensNormalize(rule.scaling.kind),
      reshape_activations: 'none',
      metadata: { sae_lens_version: SAELENS_LAYOUT_VERSION, sae_lens_training_version: null, ...data },
      // SAELens 5.x reads these from the top level (SAEConfig), and the activation from activation_fn (+ kwargs).
      ...data,
      hook_layer: hookLayer,
      activation_fn: rule.architecture === 'topk' ? 'topk' : 'relu',
      activation_fn_kwargs: rule.k !== null ? { k: rule.k } : {},
      finetuning_scaling_factor: false,
      sae_lens_training_version: null,
      featuretrace: {
        ...opts.meta,
        input_scaling: this.trainedScaling.kind,
        scaling_factor: this.trainedScaling.factor,
        format_version: SAE_FORMAT_VERSION,
        written_by: `FeatureTrace ${VERSION}`
      }
    }
    await writeSafetensors(
      join(dir, WEIGHTS_FILE),
      {
        W_enc: { dtype: 'F32', shape: [d, n], data: w.W_enc },
        W_dec: { dtype: 'F32', shape: [n, d], data: w.W_dec },
        b_enc: { dtype: 'F32', shape: [n], data: w.b_enc },
        b_dec: { dtype: 'F32', shape: [d], data: w.b_dec },
        ...(w.threshold ? { threshold: { dtype: 'F32' as const, shape: [n], data: w.threshold } } : {})
      },
      { format: 'pt' }
    )
    if (s.sparsity) await writeSafetensors(join(dir, SPARSITY_FILE), { sparsity: { dtype: 'F32', shape: [n], data: s.sparsity } })
    writeFileSync(join(dir, CFG_FILE), JSON.stringify(cfg, null, 2))
  }

  /**
   * What save() needs to write this loaded SAE again as its cfg.json says (for exporting an SAE written before
   * format 2): the featuretrace record, the model's name (a path written there before becomes the model's name),
   * the hook, context and data. Made-in-memory SAEs have none of it.
   */
  savedOptions(): SaveOptions {
    const cfg = this.cfg
    const meta = (typeof cfg.metadata === 'object' && cfg.metadata !== null ? cfg.metadata : {}) as Record<string, unknown>
    const pick = (key: string): unknown => meta[key] ?? cfg[key] ?? null
    const ft = Object.fromEntries(
      Object.entries(this.featuretrace).filter(([key]) => !['input_scaling', 'scaling_factor', 'format_version', 'written_by'].includes(key))
    )
    const model = pick('model_name')
    const hook = pick('hook_name')
    return {
      meta: { ...ft, layer: typeof this.featuretrace.layer === 'number' ? this.featuretrace.layer : null },
      modelName: typeof model !== 'string' ? null : isAbsolute(model) || existsSync(model) ? modelNameOf(model) : model,
      hookName: typeof hook === 'string' && hook !== UNNAMED_HOOK ? hook : null,
      contextSize: typeof pick('context_size') === 'number' ? (pick('context_size') as number) : null,
      datasetPath: typeof pick('dataset_path') === 'string' ? (pick('dataset_path') as string) : null,
      prependBos: typeof pick('prepend_bos') === 'boolean' ? (pick('prepend_bos') as boolean) : null
    }
  }

  private encodingTensors(): { p: SaeTensors; threshold: tf.Tensor1D | null } {
    this.tensors ??= { p: this.variables(), threshold: this.weights.threshold ? tf.tensor1d(this.weights.threshold) : null }
    return this.tensors
  }

  /** The encoder's tensors (made on first use, freed by dispose()): for analyses that read W_dec on the device. */
  get params(): SaeTensors {
    return this.encodingTensors().p
  }

  /**
   * Codes of raw (unscaled) activations x [rows, d]: values and indices [rows, w], largest first, 0 where
   * inactive. w is k for TopK; for JumpReLU and standard SAEs it is the most latents any row of this batch
   * fires (at least 1), so every active latent is kept, however many.
   */
  encode(x: tf.Tensor2D): Encoded {
    const { p, threshold } = this.encodingTensors()
    const scaled = scaleInputs(x, this.rule.scaling)
    // TopK SAEs that centre their input take the training path.
    if (this.rule.architecture === 'topk' && this.rule.applyBDecToInput) {
      const codes = encode(p, scaled, this.k)
      scaled.dispose()
      return codes
    }
    const act = tf.tidy(() => {
      const input = this.rule.applyBDecToInput ? tf.sub(scaled, p.bdec) : scaled
      const pre = tf.add(tf.matMul(input, p.Wenc), p.benc)
      return threshold ? tf.mul(tf.relu(pre), tf.cast(tf.greater(pre, threshold), 'float32')) : tf.relu(pre)
    })
    scaled.dispose()
    let width = this.k
    if (this.rule.architecture !== 'topk') {
      const busiest = tf.tidy(() => tf.max(tf.sum(tf.cast(tf.greater(act, 0), 'int32'), 1)))
      width = Math.min(this.n, Math.max(1, busiest.dataSync()[0]!))
      busiest.dispose()
    }
    const { values, indices } = tf.topk(act, width)
    act.dispose()
    return { values: values as tf.Tensor2D, indices: indices as tf.Tensor2D }
  }

  /**
   * The reconstruction of raw rows x [rows, d] in the raw space, [rows, d]: the input scaling applied, encoded by
   * this SAE's own rule (encode), decoded (Σ f_i W_dec[i] + b_dec, SAELens' decode), and the scaling undone
   * (unscaleOutputs, as SAELens' run_time_activation_norm_fn_out). Also the number of active latents per row
   * summed over the rows (for L0). SAELens' SAE.forward computes the same.
   */
  reconstruct(x: tf.Tensor2D): { xhat: tf.Tensor2D; active: number } {
    const { values, indices } = this.encode(x)
    const { p } = this.encodingTensors()
    const active = tf.tidy(() => tf.sum(tf.cast(tf.greater(values, 0), 'float32')))
    const scaled = decodeSparse(p.Wdec, values, indices, p.bdec)
    const xhat = unscaleOutputs(scaled, x, this.rule.scaling)
    const count = active.dataSync()[0]!
    tf.dispose([values, indices, active, scaled])
    return { xhat, active: count }
  }

  /**
   * Codes of `rows` rows of row-major raw activations [rows, d], on the host: `width` (value, index) pairs per row,
   * values largest first; a pair whose value is 0 is inactive and its index unspecified.
   * With `ort` (the `ort` engine's encoder, core/ort/engine.ts) a TopK SAE's dense product and top-k run on
   * onnxruntime with every core: the input scaling is applied first by the one scaleInputs, then the encoder graph
   * computes ReLU(TopK((x − b_dec) · W_enc + b_enc, k)) (b_dec as zeros when the SAE does not subtract it), the same
   * latents as encode()'s TopK(ReLU(pre), k) up to float rounding. JumpReLU and standard SAEs stay on tfjs (encode)
   * even then: the ort graph has no threshold rule and their code width varies by batch.
   */
  async encodeRows(acts: Float32Array, rows: number, ort: OrtSaeEncoder | null = null): Promise<{ v: Float32Array; i: Int32Array; width: number }> {
    if (ort && this.rule.architecture === 'topk') return this.encodeRowsOrt(acts.subarray(0, rows * this.d), rows, ort)
    const x = tf.tensor2d(acts.subarray(0, rows * this.d), [rows, this.d])
    const { values, indices } = this.encode(x)
    const width = values.shape[1]
    const [v, i] = (await Promise.all([values.data(), indices.data()])) as [Float32Array, Int32Array]
    tf.dispose([x, values, indices])
    return { v, i, width }
  }

  private async encodeRowsOrt(raw: Float32Array, rows: number, ort: OrtSaeEncoder): Promise<{ v: Float32Array; i: Int32Array; width: number }> {
    let x = raw
    // 'none' is the identity (scaleInputs clones): the rows go to onnxruntime as they are.
    if (this.rule.scaling.kind !== 'none') {
      const t = tf.tensor2d(raw, [rows, this.d])
      const scaled = scaleInputs(t, this.rule.scaling)
      x = (await scaled.data()) as Float32Array
      tf.dispose([t, scaled])
    }
    const w = this.weights
    const bDec = this.rule.applyBDecToInput ? w.b_dec : (this.zeroBDec ??= new Float32Array(this.d))
    const { values, indices } = await ort.encode(x, bDec, w.W_enc, w.b_enc, this.k, null)
    return { v: values, i: indices, width: this.k }
  }

  /** Dense latent activations [rows, n] of raw rows (for tests and exports). */
  async dense(acts: Float32Array, rows: number): Promise<Float32Array> {
    const { v, i, width: w } = await this.encodeRows(acts, rows)
    const out = new Float32Array(rows * this.n)
    for (let r = 0; r < rows; r++) for (let j = 0; j < w; j++) if (v[r * w + j]! > 0) out[r * this.n + i[r * w + j]!] = v[r * w + j]!
    return out
  }

  /** Frees the encoding tensors (the host weights stay usable; encoding again remakes them). */
  dispose(): void {
    if (!this.tensors) return
    disposeParams(this.tensors.p)
    this.tensors.threshold?.dispose()
    this.tensors = null
  }
}

export function isCompleteSae(dir: string): boolean {
  return existsSync(join(dir, CFG_FILE)) && existsSync(join(dir, WEIGHTS_FILE))
}

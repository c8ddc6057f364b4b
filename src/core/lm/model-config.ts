// The config.json keys FeatureTrace reads for each architecture it runs, declared as data: where each
// key may sit (top level, transformers v5's rope_parameters, v4's rope_scaling, older names), its default
// as transformers' config classes have it, and the values FeatureTrace computes. parseModelConfig() reads
// a config only through this table, and docs/config-keys.md is rendered from it (tests check they agree).
import { UserError } from '../../shared/api'

export const MODEL_TYPES = ['gpt_neox', 'llama', 'gpt2'] as const
export type ModelType = (typeof MODEL_TYPES)[number]

/** Activation functions by their transformers ACT2FN names (activations.py). */
export const ACTIVATIONS = ['gelu', 'gelu_new', 'gelu_fast', 'gelu_pytorch_tanh', 'quick_gelu', 'relu', 'silu', 'swish'] as const
export type Activation = (typeof ACTIVATIONS)[number]

/** RoPE variants implemented, by transformers' rope_type names (modeling_rope_utils.py). */
export const ROPE_TYPES = ['default', 'linear', 'dynamic', 'llama3', 'yarn'] as const
export type RopeType = (typeof ROPE_TYPES)[number]

type Scalar = number | boolean | string | null
/** Settings resolved so far, by key name: later keys' defaults and checks may read earlier ones. */
export type Resolved = Record<string, Scalar>

export interface ConfigKey {
  /** transformers' attribute name. */
  name: string
  /** Where config.json may hold it, as dotted paths: the top level, rope_parameters (v5), rope_scaling (v4), older names. */
  read: readonly string[]
  kind: 'int' | 'number' | 'bool' | 'string' | 'absent'
  /** Used when config.json sets none of `read` (or sets null). */
  default: { value: Scalar } | { from: string; compute: (got: Resolved) => Scalar } | { required: true }
  /** What FeatureTrace computes when that is not every value of the kind; other values are refused by name. */
  supports?: { describe: string; test: (value: Scalar, got: Resolved, written: boolean) => boolean; why: string }
  /** Read only for these RoPE variants. */
  ropeTypes?: readonly RopeType[]
  note: string
}

const value = (v: Scalar): ConfigKey['default'] => ({ value: v })
const oneOf = (values: readonly Scalar[], why: string): NonNullable<ConfigKey['supports']> => ({
  describe: values.map((v) => JSON.stringify(v)).join(', '),
  test: (v) => values.includes(v),
  why
})
const both = oneOf([true, false], '')

const NOT_QUANTIZED: ConfigKey = {
  name: 'quantization_config',
  read: ['quantization_config'],
  kind: 'absent',
  default: value(null),
  supports: oneOf([null], 'quantized weights (GPTQ, AWQ, bitsandbytes, …) are stored in layouts FeatureTrace does not read; use the unquantized checkpoint'),
  note: 'refused when present'
}

/** RoPE keys shared by gpt_neox and llama; `theta` and `partial` differ in their older names. */
function ropeKeys(theta: readonly string[], partial: ConfigKey): ConfigKey[] {
  const nested = (k: string): string[] => [`rope_parameters.${k}`, `rope_scaling.${k}`]
  return [
    {
      name: 'rope_theta',
      read: theta,
      kind: 'number',
      default: value(10000),
      note: 'RoPE base period'
    },
    partial,
    {
      name: 'rope_type',
      read: ['rope_parameters.rope_type', 'rope_parameters.type', 'rope_scaling.rope_type', 'rope_scaling.type'],
      kind: 'string',
      default: value('default'),
      supports: oneOf(ROPE_TYPES, 'the other RoPE variants (longrope, …) are not implemented'),
      note: "RoPE scaling variant, computed as transformers' modeling_rope_utils.py does"
    },
    {
      name: 'factor',
      read: nested('factor'),
      kind: 'number',
      default: { required: true },
      supports: { describe: '> 0', test: (v) => typeof v === 'number' && v > 0, why: 'a scaling factor must be positive' },
      ropeTypes: ['linear', 'dynamic', 'llama3', 'yarn'],
      note: 'scaling factor'
    },
    {
      name: 'original_max_position_embeddings',
      read: ['original_max_position_embeddings', ...nested('original_max_position_embeddings')],
      kind: 'int',
      default: { from: 'max_position_embeddings', compute: (g) => g.max_position_embeddings ?? null },
      supports: {
        describe: 'any; for yarn, when written: max_position_embeddings / factor',
        test: (v, g, written) => !written || g.rope_type !== 'yarn' || (g.max_position_embeddings as number) / (v as number) === g.factor,
        why: 'transformers 4.4x then takes max_position_embeddings / original_max_position_embeddings as the YaRN factor and v5 takes factor, so FeatureTrace will not pick one: make them agree'
      },
      ropeTypes: ['llama3', 'yarn'],
      note: 'pre-training context length (transformers v5 defaults it to max_position_embeddings)'
    },
    {
      name: 'low_freq_factor',
      read: nested('low_freq_factor'),
      kind: 'number',
      default: { required: true },
      ropeTypes: ['llama3'],
      note: 'Llama 3.1 low-frequency wavelength divisor'
    },
    {
      name: 'high_freq_factor',
      read: nested('high_freq_factor'),
      kind: 'number',
      default: { required: true },
      supports: { describe: '≠ low_freq_factor', test: (v, g) => v !== g.low_freq_factor, why: 'the smoothing between them divides by their difference' },
      ropeTypes: ['llama3'],
      note: 'Llama 3.1 high-frequency wavelength divisor'
    },
    {
      name: 'attention_factor',
      read: nested('attention_factor'),
      kind: 'number',
      default: value(null),
      ropeTypes: ['yarn'],
      note: 'scales cos and sin; unset: 0.1·ln(factor) + 1, or the mscale / mscale_all_dim ratio'
    },
    {
      name: 'beta_fast',
      read: nested('beta_fast'),
      kind: 'number',
      default: value(32),
      ropeTypes: ['yarn'],
      note: 'YaRN extrapolation boundary (0 reads as 32, as `or 32` does)'
    },
    {
      name: 'beta_slow',
      read: nested('beta_slow'),
      kind: 'number',
      default: value(1),
      ropeTypes: ['yarn'],
      note: 'YaRN interpolation boundary (0 reads as 1)'
    },
    { name: 'mscale', read: nested('mscale'), kind: 'number', default: value(null), ropeTypes: ['yarn'], note: 'DeepSeek-style attention-factor numerator' },
    {
      name: 'mscale_all_dim',
      read: nested('mscale_all_dim'),
      kind: 'number',
      default: value(null),
      ropeTypes: ['yarn'],
      note: 'DeepSeek-style attention-factor denominator'
    },
    {
      name: 'truncate',
      read: nested('truncate'),
      kind: 'bool',
      default: value(true),
      ropeTypes: ['yarn'],
      note: 'round the YaRN correction range to whole dimensions'
    }
  ]
}

const headsDivide = (k: string): NonNullable<ConfigKey['supports']> => ({
  describe: `divides ${k === 'num_key_value_heads' ? 'num_attention_heads' : 'the hidden size'}`,
  test: (v, g) => typeof v === 'number' && v > 0 && (g.num_attention_heads as number) % v === 0,
  why: "each key/value head serves num_attention_heads / num_key_value_heads query heads, as transformers' repeat_kv repeats them"
})

/** One declared table per architecture. Order matters: a key's default or check may read keys above it. */
export const CONFIG_KEYS: Record<ModelType, readonly ConfigKey[]> = {
  gpt_neox: [
    { name: 'vocab_size', read: ['vocab_size'], kind: 'int', default: value(50432), note: 'rows of gpt_neox.embed_in' },
    { name: 'hidden_size', read: ['hidden_size'], kind: 'int', default: value(6144), note: 'residual stream width d' },
    { name: 'num_hidden_layers', read: ['num_hidden_layers'], kind: 'int', default: value(44), note: 'blocks' },
    {
      name: 'num_attention_heads',
      read: ['num_attention_heads'],
      kind: 'int',
      default: value(64),
      supports: {
        describe: 'divides hidden_size',
        test: (v, g) => typeof v === 'number' && (g.hidden_size as number) % v === 0,
        why: 'GPTNeoXConfig requires it'
      },
      note: 'heads; head size = hidden_size / heads'
    },
    {
      name: 'head_dim',
      read: ['head_dim'],
      kind: 'int',
      default: { from: 'hidden_size / num_attention_heads', compute: (g) => Math.floor((g.hidden_size as number) / (g.num_attention_heads as number)) },
      supports: {
        describe: 'unset or hidden_size / num_attention_heads',
        test: (v, g) => v === Math.floor((g.hidden_size as number) / (g.num_attention_heads as number)),
        why: "GPTNeoXAttention has no head_dim setting (its head size is hidden_size / heads), while transformers' RoPE code would read this one"
      },
      note: 'not a GPTNeoXConfig key'
    },
    { name: 'intermediate_size', read: ['intermediate_size'], kind: 'int', default: value(24576), note: 'MLP width' },
    {
      name: 'hidden_act',
      read: ['hidden_act'],
      kind: 'string',
      default: value('gelu'),
      supports: oneOf(ACTIVATIONS, 'other activations are not implemented'),
      note: 'MLP activation (gpt-neox-20b: gelu_fast)'
    },
    {
      name: 'max_position_embeddings',
      read: ['max_position_embeddings'],
      kind: 'int',
      default: value(2048),
      note: 'used by the dynamic, llama3 and yarn RoPE variants'
    },
    { name: 'layer_norm_eps', read: ['layer_norm_eps'], kind: 'number', default: value(1e-5), note: 'LayerNorm epsilon' },
    {
      name: 'use_parallel_residual',
      read: ['use_parallel_residual'],
      kind: 'bool',
      default: value(true),
      supports: both,
      note: 'true: x + attn(ln1(x)) + mlp(ln2(x)) (Pythia); false: sequential (RedPajama-INCITE)'
    },
    { name: 'attention_bias', read: ['attention_bias'], kind: 'bool', default: value(true), supports: both, note: 'biases on query_key_value and dense' },
    {
      name: 'tie_word_embeddings',
      read: ['tie_word_embeddings'],
      kind: 'bool',
      default: value(false),
      supports: both,
      note: 'the LM head: the embedding matrix (true) or its own weight (false); read when logits are computed (evaluate)'
    },
    ...ropeKeys(['rotary_emb_base', 'rope_parameters.rope_theta', 'rope_scaling.rope_theta', 'rope_theta'], {
      name: 'partial_rotary_factor',
      read: ['rotary_pct', 'rope_parameters.partial_rotary_factor', 'rope_scaling.partial_rotary_factor', 'partial_rotary_factor'],
      kind: 'number',
      default: value(0.25),
      supports: {
        describe: 'in (0, 1], rotating an even number of head dimensions',
        test: (v, g) => typeof v === 'number' && v > 0 && v <= 1 && Math.floor((g.head_dim as number) * v) % 2 === 0,
        why: 'rotary embedding pairs dimensions; transformers fails on an odd count'
      },
      note: 'fraction of each head that is rotated (rotary_pct in GPTNeoXConfig v4)'
    }),
    NOT_QUANTIZED
  ],
  llama: [
    { name: 'vocab_size', read: ['vocab_size'], kind: 'int', default: value(32000), note: 'rows of model.embed_tokens' },
    { name: 'hidden_size', read: ['hidden_size'], kind: 'int', default: value(4096), note: 'residual stream width d' },
    { name: 'intermediate_size', read: ['intermediate_size'], kind: 'int', default: value(11008), note: 'MLP width' },
    { name: 'num_hidden_layers', read: ['num_hidden_layers'], kind: 'int', default: value(32), note: 'blocks' },
    { name: 'num_attention_heads', read: ['num_attention_heads'], kind: 'int', default: value(32), note: 'query heads' },
    {
      name: 'num_key_value_heads',
      read: ['num_key_value_heads'],
      kind: 'int',
      default: { from: 'num_attention_heads', compute: (g) => g.num_attention_heads ?? null },
      supports: headsDivide('num_key_value_heads'),
      note: 'grouped-query attention when fewer than the query heads'
    },
    {
      name: 'head_dim',
      read: ['head_dim'],
      kind: 'int',
      default: { from: 'hidden_size / num_attention_heads', compute: (g) => Math.floor((g.hidden_size as number) / (g.num_attention_heads as number)) },
      note: 'may differ from hidden_size / heads (Minitron; transformers PR #32857)'
    },
    {
      name: 'hidden_act',
      read: ['hidden_act'],
      kind: 'string',
      default: value('silu'),
      supports: oneOf(ACTIVATIONS, 'other activations are not implemented'),
      note: 'activation of the gated MLP'
    },
    {
      name: 'max_position_embeddings',
      read: ['max_position_embeddings'],
      kind: 'int',
      default: value(2048),
      note: 'used by the dynamic, llama3 and yarn RoPE variants'
    },
    { name: 'rms_norm_eps', read: ['rms_norm_eps'], kind: 'number', default: value(1e-6), note: 'RMSNorm epsilon' },
    { name: 'attention_bias', read: ['attention_bias'], kind: 'bool', default: value(false), supports: both, note: 'biases on q_proj, k_proj, v_proj, o_proj' },
    { name: 'mlp_bias', read: ['mlp_bias'], kind: 'bool', default: value(false), supports: both, note: 'biases on gate_proj, up_proj, down_proj' },
    {
      name: 'pretraining_tp',
      read: ['pretraining_tp'],
      kind: 'int',
      default: value(1),
      note: 'transformers v4 splits the projections into this many slices and sums them: the same product up to float rounding'
    },
    {
      name: 'tie_word_embeddings',
      read: ['tie_word_embeddings'],
      kind: 'bool',
      default: value(false),
      supports: both,
      note: 'the LM head: the embedding matrix (true) or its own weight (false); read when logits are computed (evaluate)'
    },
    ...ropeKeys(['rope_theta', 'rope_parameters.rope_theta', 'rope_scaling.rope_theta'], {
      name: 'partial_rotary_factor',
      read: ['partial_rotary_factor', 'rope_parameters.partial_rotary_factor', 'rope_scaling.partial_rotary_factor'],
      kind: 'number',
      default: value(1),
      supports: oneOf([1], "LlamaAttention rotates the whole head; a partial factor would make transformers' tables narrower than the head"),
      note: 'not a LlamaConfig key'
    }),
    {
      name: 'sliding_window',
      read: ['sliding_window'],
      kind: 'int',
      default: value(null),
      supports: {
        describe: 'unset, or ≥ max_position_embeddings',
        test: (v, g) => v === null || (typeof v === 'number' && v >= (g.max_position_embeddings as number)),
        why: 'LlamaModel ignores it and attends to the whole context, while a model trained with a window (Mistral) attends to the window only: FeatureTrace refuses rather than pick one reading'
      },
      note: 'not a LlamaConfig key'
    },
    {
      name: 'use_sliding_window',
      read: ['use_sliding_window'],
      kind: 'bool',
      default: value(false),
      supports: oneOf([false], 'sliding-window attention is not implemented'),
      note: "Qwen2's switch; not a LlamaConfig key"
    },
    NOT_QUANTIZED
  ],
  gpt2: [
    { name: 'vocab_size', read: ['vocab_size'], kind: 'int', default: value(50257), note: 'rows of wte' },
    { name: 'n_embd', read: ['n_embd', 'hidden_size'], kind: 'int', default: value(768), note: 'residual stream width d' },
    { name: 'n_layer', read: ['n_layer', 'num_hidden_layers'], kind: 'int', default: value(12), note: 'blocks' },
    {
      name: 'n_head',
      read: ['n_head', 'num_attention_heads'],
      kind: 'int',
      default: value(12),
      supports: { describe: 'divides n_embd', test: (v, g) => typeof v === 'number' && (g.n_embd as number) % v === 0, why: 'GPT2Attention requires it' },
      note: 'heads'
    },
    { name: 'n_positions', read: ['n_positions', 'max_position_embeddings'], kind: 'int', default: value(1024), note: 'rows of wpe: the longest sequence' },
    { name: 'n_inner', read: ['n_inner'], kind: 'int', default: { from: '4 × n_embd', compute: (g) => 4 * (g.n_embd as number) }, note: 'MLP width' },
    {
      name: 'activation_function',
      read: ['activation_function'],
      kind: 'string',
      default: value('gelu_new'),
      supports: oneOf(ACTIVATIONS, 'other activations are not implemented'),
      note: 'MLP activation'
    },
    { name: 'layer_norm_epsilon', read: ['layer_norm_epsilon'], kind: 'number', default: value(1e-5), note: 'LayerNorm epsilon' },
    {
      name: 'scale_attn_weights',
      read: ['scale_attn_weights'],
      kind: 'bool',
      default: value(true),
      supports: both,
      note: 'divide attention scores by √head_dim'
    },
    {
      name: 'scale_attn_by_inverse_layer_idx',
      read: ['scale_attn_by_inverse_layer_idx'],
      kind: 'bool',
      default: value(false),
      supports: both,
      note: "also divide block i's scores by i + 1 (Stanford CRFM's Mistral GPT-2 runs)"
    },
    {
      name: 'reorder_and_upcast_attn',
      read: ['reorder_and_upcast_attn'],
      kind: 'bool',
      default: value(false),
      supports: both,
      note: 'scales before the product and computes it in float32: the same numbers, FeatureTrace computes in float32 throughout'
    },
    {
      name: 'add_cross_attention',
      read: ['add_cross_attention'],
      kind: 'bool',
      default: value(false),
      supports: oneOf([false], 'cross-attention blocks need an encoder; a causal language model has none'),
      note: 'encoder-decoder use'
    },
    {
      name: 'tie_word_embeddings',
      read: ['tie_word_embeddings'],
      kind: 'bool',
      default: value(true),
      supports: both,
      note: 'the LM head: the embedding matrix (true) or its own weight (false); read when logits are computed (evaluate)'
    },
    NOT_QUANTIZED
  ]
}

/** The value at a dotted path of config.json; undefined when a parent is missing or not an object. */
function at(cfg: Record<string, unknown>, path: string): unknown {
  let cur: unknown = cfg
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return undefined
    cur = (cur as Record<string, unknown>)[part]
  }
  return cur
}

function ofKind(v: unknown, kind: ConfigKey['kind']): boolean {
  switch (kind) {
    case 'int':
      return typeof v === 'number' && Number.isSafeInteger(v)
    case 'number':
      return typeof v === 'number' && Number.isFinite(v)
    case 'bool':
      return typeof v === 'boolean'
    case 'string':
      return typeof v === 'string'
    case 'absent':
      return true
  }
}

const show = (v: unknown): string => JSON.stringify(v)

/**
 * Resolves every key of `modelType`'s table from a parsed config.json, in table order.
 * Errors (UserError, naming `file`, the key and the value): a value of the wrong kind; two places holding
 * different values for one key (transformers versions disagree on which wins); a value FeatureTrace does
 * not compute; a required key missing; rope_parameters keyed by layer type.
 */
export function resolveConfig(modelType: ModelType, raw: Record<string, unknown>, file: string): Resolved {
  for (const dict of ['rope_parameters', 'rope_scaling']) {
    const d = raw[dict]
    if (d === undefined || d === null) continue
    if (typeof d !== 'object' || Array.isArray(d)) throw new UserError(`${file}: "${dict}" must be an object, not ${show(d)}.`)
    const nested = Object.entries(d).find(([, v]) => typeof v === 'object' && v !== null && !Array.isArray(v))
    if (nested) {
      throw new UserError(
        `${file}: "${dict}" holds "${nested[0]}": ${show(nested[1])}, a RoPE setting per layer type, which ${modelType} models do not have. ` +
          'FeatureTrace reads one RoPE setting for every layer; fix the config.'
      )
    }
  }
  const got: Resolved = {}
  for (const key of CONFIG_KEYS[modelType]) {
    if (key.ropeTypes && !key.ropeTypes.includes(got.rope_type as RopeType)) continue
    const present = key.read.map((path) => ({ path, v: at(raw, path) })).filter((p) => p.v !== undefined && p.v !== null)
    for (const p of present) {
      if (!ofKind(p.v, key.kind)) {
        throw new UserError(
          `${file}: "${p.path}" is ${show(p.v)}, but ${key.name} must be ${key.kind === 'int' ? 'an integer' : key.kind === 'bool' ? 'true or false' : `a ${key.kind}`}.`
        )
      }
    }
    const differing = present.find((p) => show(p.v) !== show(present[0]!.v))
    if (differing) {
      throw new UserError(
        `${file} sets ${key.name} twice with different values: "${present[0]!.path}" = ${show(present[0]!.v)} and "${differing.path}" = ${show(differing.v)}. ` +
          'Transformers versions disagree on which one wins, so FeatureTrace will not guess: keep one of them.'
      )
    }
    let v: Scalar
    if (present.length > 0) v = key.kind === 'absent' ? show(present[0]!.v) : (present[0]!.v as Scalar)
    else if ('value' in key.default) v = key.default.value
    else if ('from' in key.default) v = key.default.compute(got)
    else {
      const where = key.read.map((r) => `"${r}"`).join(' or ')
      throw new UserError(
        `${file} lacks ${where}, which ${key.ropeTypes ? `rope_type "${String(got.rope_type)}"` : `a ${modelType} model`} needs (transformers fails without it too).`
      )
    }
    if (key.supports && !key.supports.test(v, got, present.length > 0)) {
      const where = present[0]?.path ?? `${key.name} (default)`
      throw new UserError(
        `${file}: "${where}" is ${key.kind === 'absent' ? 'set' : show(v)}. FeatureTrace supports ${key.name}: ${key.supports.describe} (${key.supports.why}).`
      )
    }
    got[key.name] = v
  }
  return got
}

export interface RopeSpec {
  type: RopeType
  theta: number
  /** Leading features of each head that are rotated (even). */
  dims: number
  factor: number
  maxPositions: number
  originalMaxPositions: number
  lowFreqFactor: number
  highFreqFactor: number
  attentionFactor: number | null
  betaFast: number
  betaSlow: number
  mscale: number | null
  mscaleAllDim: number | null
  truncate: boolean
}

/** Everything a forward pass needs, read from config.json through CONFIG_KEYS. */
export interface ModelSpec {
  modelType: ModelType
  /** config.json, for messages. */
  file: string
  vocab: number
  dModel: number
  layers: number
  heads: number
  kvHeads: number
  headDim: number
  intermediate: number
  eps: number
  activation: Activation
  /** Longest sequence: wpe rows for gpt2, null for the rotary models (unbounded in transformers). */
  maxPositions: number | null
  rope: RopeSpec | null
  parallelResidual: boolean
  attentionBias: boolean
  mlpBias: boolean
  /** 1/√head_dim scaling of attention scores (gpt2's scale_attn_weights; always on for the others). */
  scaleAttention: boolean
  /** gpt2's scale_attn_by_inverse_layer_idx: block i's scores also divided by i + 1. */
  scaleByInverseLayer: boolean
  /** Every resolved key, by transformers' name. */
  resolved: Resolved
}

const n = (g: Resolved, k: string): number => g[k] as number

function ropeSpec(g: Resolved, dims: number): RopeSpec {
  const opt = (k: string): number | null => (typeof g[k] === 'number' ? (g[k] as number) : null)
  return {
    type: g.rope_type as RopeType,
    theta: n(g, 'rope_theta'),
    dims,
    factor: opt('factor') ?? 1,
    maxPositions: n(g, 'max_position_embeddings'),
    originalMaxPositions: opt('original_max_position_embeddings') ?? n(g, 'max_position_embeddings'),
    lowFreqFactor: opt('low_freq_factor') ?? 1,
    highFreqFactor: opt('high_freq_factor') ?? 4,
    attentionFactor: opt('attention_factor'),
    // transformers reads these with `or`, so 0 falls back to the default too.
    betaFast: opt('beta_fast') || 32,
    betaSlow: opt('beta_slow') || 1,
    mscale: opt('mscale'),
    mscaleAllDim: opt('mscale_all_dim'),
    truncate: g.truncate !== false
  }
}

/**
 * A model's settings from its parsed config.json (shapes in elements, eps unitless), following
 * transformers' GPTNeoXConfig / LlamaConfig / GPT2Config (v4 names and v5's rope_parameters layout).
 * Errors: see resolveConfig.
 */
export function parseModelConfig(modelType: ModelType, raw: Record<string, unknown>, file: string): ModelSpec {
  const g = resolveConfig(modelType, raw, file)
  const common = { modelType, file, resolved: g, vocab: n(g, 'vocab_size') }
  if (modelType === 'gpt2') {
    const d = n(g, 'n_embd')
    return {
      ...common,
      dModel: d,
      layers: n(g, 'n_layer'),
      heads: n(g, 'n_head'),
      kvHeads: n(g, 'n_head'),
      headDim: d / n(g, 'n_head'),
      intermediate: n(g, 'n_inner'),
      eps: n(g, 'layer_norm_epsilon'),
      activation: g.activation_function as Activation,
      maxPositions: n(g, 'n_positions'),
      rope: null,
      parallelResidual: false,
      attentionBias: true,
      mlpBias: true,
      scaleAttention: g.scale_attn_weights === true,
      scaleByInverseLayer: g.scale_attn_by_inverse_layer_idx === true
    }
  }
  const headDim = n(g, 'head_dim')
  const base = {
    ...common,
    dModel: n(g, 'hidden_size'),
    layers: n(g, 'num_hidden_layers'),
    heads: n(g, 'num_attention_heads'),
    headDim,
    intermediate: n(g, 'intermediate_size'),
    activation: g.hidden_act as Activation,
    maxPositions: null,
    rope: ropeSpec(g, Math.floor(headDim * n(g, 'partial_rotary_factor'))),
    scaleAttention: true,
    scaleByInverseLayer: false
  }
  if (modelType === 'gpt_neox') {
    return {
      ...base,
      kvHeads: base.heads,
      eps: n(g, 'layer_norm_eps'),
      parallelResidual: g.use_parallel_residual === true,
      attentionBias: g.attention_bias === true,
      mlpBias: true
    }
  }
  return {
    ...base,
    kvHeads: n(g, 'num_key_value_heads'),
    eps: n(g, 'rms_norm_eps'),
    parallelResidual: false,
    attentionBias: g.attention_bias === true,
    mlpBias: g.mlp_bias === true
  }
}

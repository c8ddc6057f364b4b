// What every SAE reader returns: an SAE from another library, described from its config and tensor
// headers (orientation from the config's sizes, checked against the shapes), read on demand into the
// parts of FeatureTrace's one Sae (sae/sae.ts) in SAELens' orientation.
import type { SafetensorsFile } from '../safetensors'
import type { EncodingRule, SaeParts } from '../../sae/sae'
import { UserError } from '../../../shared/api'

export const SAE_FORMATS = ['saelens', 'sparsify', 'gemma-scope', 'llm-jp-sae'] as const
export type SaeFormat = (typeof SAE_FORMATS)[number]

export const FORMAT_NAMES: Record<SaeFormat, string> = {
  saelens: 'SAELens',
  sparsify: 'sparsify (EleutherAI)',
  'gemma-scope': 'Gemma Scope',
  'llm-jp-sae': 'llm-jp-sae'
}

export interface ForeignWeights {
  /** [d, n] */
  W_enc: Float32Array
  /** [n, d] */
  W_dec: Float32Array
  b_enc: Float32Array
  b_dec: Float32Array
  threshold: Float32Array | null
  /** log10 firing density per latent (SAELens' sparsity.safetensors), when the source has it. */
  sparsity: Float32Array | null
}

export interface ForeignSae {
  /** The SAE's folder or file. */
  path: string
  format: SaeFormat
  d: number
  n: number
  rule: EncodingRule
  /** Storage dtype of the weights (F32, F16, BF16). */
  dtype: string
  /** The hook the source names (SAELens hook_name, sparsify hookpoint, Gemma Scope's hook by release), if any. */
  hook: string | null
  /** The stream that hook is, and its layer when it is the residual stream. */
  stream: HookStream
  /** Residual-stream layer in FeatureTrace's numbering (after block L; 0 = embeddings), when the source says. */
  layer: number | null
  /** Checkpoint step the source records (FeatureTrace's own SAEs do), if any. */
  step: number | null
  /** The source's descriptive metadata (model, hook, dataset), kept in the imported cfg. */
  metadata: Record<string, unknown>
  /** Things worth knowing that do not stop the import. */
  notes: string[]
  /** The SAE as FeatureTrace's Sae is made from it (new Sae(parts)). */
  read(): Promise<SaeParts>
  /** JumpReLU's per-latent threshold alone (cheap: for showing before an import). */
  readThreshold(): Promise<Float32Array | null>
}

/** A reader's weights as the parts of a Sae. */
export function saeParts(sae: Pick<ForeignSae, 'd' | 'n' | 'rule' | 'path'>, w: ForeignWeights): SaeParts {
  const { W_enc, W_dec, b_enc, b_dec, threshold } = w
  return { d: sae.d, n: sae.n, rule: sae.rule, weights: { W_enc, W_dec, b_enc, b_dec, threshold }, sparsity: w.sparsity, source: sae.path }
}

/**
 * The hook_name FeatureTrace writes for an SAE whose hook nobody gave (one trained from a plain activation
 * file): a name SAELens loads (5.x and 6.x need a string) that names no TransformerLens hook, read back as no hook.
 */
export const UNNAMED_HOOK = 'featuretrace.unnamed_hook'

/** Shape check with the message a user can act on (transposed tensors named as such). */
export function checkShape(file: string, name: string, actual: readonly number[], expected: readonly number[], sizes: string): void {
  if (actual.length === expected.length && actual.every((s, i) => s === expected[i])) return
  const transposed = actual.length === 2 && expected.length === 2 && actual[0] === expected[1] && actual[1] === expected[0]
  throw new UserError(
    `${file}: ${name} is [${actual.join(', ')}] but ${sizes} implies [${expected.join(', ')}]` +
      (transposed
        ? ": the tensor is stored transposed. Save it in the library's own orientation (re-save with the library, not a hand-made state dict)."
        : '; the config and the weights disagree. Use the cfg written with these weights.')
  )
}

/** Every expected tensor present with the shape the config implies; `hints` add to a missing tensor's message. */
export function checkTensors(f: SafetensorsFile, expected: Record<string, number[]>, sizes: string, hints: Record<string, string> = {}): void {
  for (const [name, shape] of Object.entries(expected)) {
    if (!f.header.tensors.has(name)) throw new UserError(`${f.file} has no tensor "${name}"${hints[name] ?? ''}.`)
    checkShape(f.file, name, f.info(name).shape, shape, sizes)
  }
}

export { transpose } from '../../matrix'

export function positiveInt(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : null
}

/** The streams an SAE can read. FeatureTrace harvests the residual stream only (between blocks; 0 = the embeddings). */
export const STREAMS = [
  'residual',
  'embed',
  'resid_mid',
  'mlp_in',
  'mlp_neurons',
  'mlp_out',
  'attn_out',
  'attn_heads',
  'transcoder',
  'unknown',
  'none'
] as const
export type Stream = (typeof STREAMS)[number]

export const STREAM_NAMES: Record<Stream, string> = {
  residual: 'the residual stream',
  embed: 'the token embeddings',
  resid_mid: 'the residual stream between attention and MLP (resid_mid)',
  mlp_in: 'the MLP input',
  mlp_neurons: 'the MLP neurons',
  mlp_out: 'the MLP output',
  attn_out: 'the attention output',
  attn_heads: "the attention heads' outputs",
  transcoder: "the input of a transcoder, which predicts another hook's output",
  unknown: 'a hook FeatureTrace does not recognise',
  none: 'no named hook'
}

export interface HookStream {
  stream: Stream
  /** FeatureTrace layer (residual after block L; 0 = embeddings) for the residual stream and embeddings, else null. */
  layer: number | null
  /** The block (0-based) a non-residual hook belongs to, when it says. */
  block: number | null
}

/**
 * The stream a hook names: TransformerLens hooks (SAELens hook_name) and module names of a Hugging Face
 * model's base model (sparsify hookpoints, llm-jp-sae). resid_pre of block L is layer L, resid_post of block
 * L is layer L + 1, and the output of decoder layer L (layers.L, h.L) is layer L + 1.
 */
export function streamOfHook(hook: string | null): HookStream {
  if (!hook || hook === UNNAMED_HOOK) return { stream: 'none', layer: null, block: null }
  const tl = /^blocks\.(\d+)\.(.+)$/.exec(hook)
  if (tl) {
    const block = Number(tl[1])
    const rest = tl[2]!
    if (rest === 'hook_resid_pre') return { stream: 'residual', layer: block, block: null }
    if (rest === 'hook_resid_post') return { stream: 'residual', layer: block + 1, block: null }
    if (rest === 'hook_resid_mid') return { stream: 'resid_mid', layer: null, block }
    if (rest === 'hook_mlp_out') return { stream: 'mlp_out', layer: null, block }
    if (rest === 'hook_attn_out') return { stream: 'attn_out', layer: null, block }
    if (/^(attn\.)?hook_(z|result|q|k|v)$/.test(rest)) return { stream: 'attn_heads', layer: null, block }
    if (/^(ln2\.hook_normalized|hook_mlp_in|mlp\.hook_in)$/.test(rest)) return { stream: 'mlp_in', layer: null, block }
    if (/^mlp\.hook_(pre|post|pre_linear)$/.test(rest)) return { stream: 'mlp_neurons', layer: null, block }
    return { stream: 'unknown', layer: null, block }
  }
  if (hook === 'hook_embed') return { stream: 'embed', layer: 0, block: null }
  const hf = /^(?:model\.|gpt_neox\.|transformer\.)?(?:layers|h)\.(\d+)(?:\.(.+))?$/.exec(hook)
  if (hf) {
    const block = Number(hf[1])
    const sub = hf[2]
    if (sub === undefined) return { stream: 'residual', layer: block + 1, block: null }
    if (sub === 'mlp') return { stream: 'mlp_out', layer: null, block }
    if (sub === 'self_attn' || sub === 'attention' || sub === 'attn') return { stream: 'attn_out', layer: null, block }
    if (/^(mlp\.)?(act_fn|act|gate_proj|up_proj|dense_h_to_4h|c_fc)$/.test(sub)) return { stream: 'mlp_neurons', layer: null, block }
    return { stream: 'unknown', layer: null, block }
  }
  if (/^(?:model\.|gpt_neox\.)?(embed_tokens|embed_in)$/.test(hook)) return { stream: 'embed', layer: 0, block: null }
  if (/^(?:transformer\.)?wte$/.test(hook)) return { stream: 'embed', layer: 0, block: null }
  return { stream: 'unknown', layer: null, block: null }
}

export function readJson(file: string, text: string): Record<string, unknown> {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${(err as Error).message}).`)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UserError(`${file} does not hold a JSON object.`)
  return raw as Record<string, unknown>
}

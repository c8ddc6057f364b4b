// What every SAE reader returns: an SAE from another library, described from its config and tensor
// headers (orientation from the config's sizes, checked against the shapes), with its weights read on
// demand in SAELens' orientation.
import type { SafetensorsFile } from '../safetensors'
import type { EncodingRule } from '../../sae/encoding'
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
  /** The hook the source names (SAELens hook_name, sparsify hookpoint), if any. */
  hook: string | null
  /** Residual-stream layer in FeatureTrace's numbering (after block L; 0 = embeddings), when the source says. */
  layer: number | null
  /** Checkpoint step the source records (FeatureTrace's own SAEs do), if any. */
  step: number | null
  /** The source's descriptive metadata (model, hook, dataset), kept in the imported cfg. */
  metadata: Record<string, unknown>
  /** Things worth knowing that do not stop the import. */
  notes: string[]
  read(): Promise<ForeignWeights>
  /** JumpReLU's per-latent threshold alone (cheap: for showing before an import). */
  readThreshold(): Promise<Float32Array | null>
}

/** Shape check with the message a user can act on (transposed tensors named as such). */
export function checkShape(file: string, name: string, actual: readonly number[], expected: readonly number[], sizes: string): void {
  if (actual.length === expected.length && actual.every((s, i) => s === expected[i])) return
  const transposed = actual.length === 2 && expected.length === 2 && actual[0] === expected[1] && actual[1] === expected[0]
  throw new UserError(
    `${file}: ${name} is [${actual.join(', ')}] but ${sizes} implies [${expected.join(', ')}]` +
      (transposed ? ': the tensor is stored transposed. Save it in the library\'s own orientation (re-save with the library, not a hand-made state dict).' : '; the config and the weights disagree. Use the cfg written with these weights.')
  )
}

/** Every expected tensor present with the shape the config implies; `hints` add to a missing tensor's message. */
export function checkTensors(f: SafetensorsFile, expected: Record<string, number[]>, sizes: string, hints: Record<string, string> = {}): void {
  for (const [name, shape] of Object.entries(expected)) {
    if (!f.header.tensors.has(name)) throw new UserError(`${f.file} has no tensor "${name}"${hints[name] ?? ''}.`)
    checkShape(f.file, name, f.info(name).shape, shape, sizes)
  }
}

/** Transpose of a row-major [r, c] matrix. */
export function transpose(a: Float32Array, r: number, c: number): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = a[i * c + j]!
  return out
}

export function positiveInt(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : null
}

/** TransformerLens residual hooks to FeatureTrace's layer: resid_pre of block L = L, resid_post of block L = L + 1. */
export function layerOfHook(hook: string | null): number | null {
  if (!hook) return null
  const pre = /^blocks\.(\d+)\.hook_resid_pre$/.exec(hook)
  if (pre) return Number(pre[1])
  const post = /^blocks\.(\d+)\.hook_resid_post$/.exec(hook)
  if (post) return Number(post[1]) + 1
  // sparsify / Hugging Face module names: the output of decoder layer L (0-based) is the residual after block L + 1.
  const hf = /^(?:model\.|gpt_neox\.|transformer\.)?(?:layers|h)\.(\d+)$/.exec(hook)
  if (hf) return Number(hf[1]) + 1
  return null
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

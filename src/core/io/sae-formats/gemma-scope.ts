// Gemma Scope: params.npz with W_enc [d, n], W_dec [n, d], b_enc [n], b_dec [d], threshold [n] (float32).
// JumpReLU without b_dec on the input: ReLU(pre) where pre = x·W_enc + b_enc exceeds the threshold. There
// is no config: d and n come from the biases and are checked against the matrices, and the stream comes
// from the release name in the path (gemma-scope-2b-pt-res, -mlp, -att, -transcoders), as SAELens reads it.
import { basename, dirname } from 'node:path'
import { UserError } from '../../../shared/api'
import { readNpz, readNpzHeaders } from '../npz'
import { checkShape, saeParts, streamOfHook, type ForeignSae, type HookStream } from './common'
import { undeclaredTensors } from './keys'
import type { EncodingRule } from '../../sae/sae'

const NAMES = ['W_enc', 'W_dec', 'b_enc', 'b_dec', 'threshold'] as const
const DTYPES: Record<string, string> = { '<f4': 'F32', '<f2': 'F16', '<f8': 'F64' }

export async function describeGemmaScope(file: string): Promise<ForeignSae> {
  const headers = await readNpzHeaders(file)
  for (const name of NAMES) {
    if (!headers.has(name)) {
      throw new UserError(
        `${file} has no "${name}" array${name === 'threshold' ? ': a Gemma Scope (JumpReLU) SAE needs its per-latent threshold, without which its activations cannot be reproduced' : ''}. ` +
          `Gemma Scope's params.npz holds ${NAMES.join(', ')}; it has ${[...headers.keys()].join(', ') || 'no arrays'}.`
      )
    }
  }
  const extra = undeclaredTensors('gemma-scope', headers.keys())
  if (extra.length)
    throw new UserError(
      `${file} holds ${extra.join(', ')}, which Gemma Scope's params.npz does not have; FeatureTrace refuses rather than skip ${extra.length > 1 ? 'them' : 'it'}.`
    )
  const bDec = headers.get('b_dec')!.shape
  const bEnc = headers.get('b_enc')!.shape
  if (bDec.length !== 1 || bEnc.length !== 1)
    throw new UserError(`${file}: b_dec and b_enc must be vectors, got (${bDec.join(', ')}) and (${bEnc.join(', ')}).`)
  const d = bDec[0]!
  const n = bEnc[0]!
  const sizes = `b_dec and b_enc (d ${d}, n ${n})`
  checkShape(file, 'W_enc', headers.get('W_enc')!.shape, [d, n], sizes)
  checkShape(file, 'W_dec', headers.get('W_dec')!.shape, [n, d], sizes)
  checkShape(file, 'threshold', headers.get('threshold')!.shape, [n], sizes)
  const { hook, stream, release, notes } = gemmaScopeHook(file)
  const folder = basename(dirname(file))
  const rule: EncodingRule = { architecture: 'jumprelu', k: null, applyBDecToInput: false, scaling: { kind: 'none', factor: 1 } }
  return {
    path: file,
    format: 'gemma-scope',
    d,
    n,
    rule,
    dtype: DTYPES[headers.get('W_enc')!.descr] ?? headers.get('W_enc')!.descr,
    hook,
    stream,
    layer: stream.layer,
    step: null,
    metadata: { source_folder: folder, release, hook_name: hook },
    notes,
    async readThreshold() {
      return (await readNpz(file, ['threshold'])).get('threshold')!.data
    },
    async read() {
      const arrays = await readNpz(file, NAMES)
      const get = (name: (typeof NAMES)[number]): Float32Array => arrays.get(name)!.data
      return saeParts(
        { d, n, rule, path: file },
        { W_enc: get('W_enc'), W_dec: get('W_dec'), b_enc: get('b_enc'), b_dec: get('b_dec'), threshold: get('threshold'), sparsity: null }
      )
    }
  }
}

const KIND_HOOK: Record<string, (layer: number) => string> = {
  res: (l) => `blocks.${l}.hook_resid_post`,
  mlp: (l) => `blocks.${l}.hook_mlp_out`,
  att: (l) => `blocks.${l}.attn.hook_z`
}

/**
 * The hook of a Gemma Scope SAE from its path, as SAELens' get_gemma_2_config_from_hf names it: the release
 * (gemma-scope-<model>-<res|mlp|att|transcoders>, also inside a Hugging Face cache folder) gives the stream,
 * layer_L (0-based block) or embedding the place. Without a release name the stream is unknown.
 */
export function gemmaScopeHook(file: string): { hook: string | null; stream: HookStream; release: string | null; notes: string[] } {
  const path = dirname(file)
  const rel = /gemma-scope-[\w.-]*?-(res|mlp|att|transcoders)(?:-canonical)?(?=[/\\]|$)/.exec(path)
  const layerMatch = /(?:^|[/\\])layer_(\d+)(?:[/\\]|$)/.exec(path)
  const embedding = /(?:^|[/\\])embedding(?:[/\\]|$)/.test(path)
  const notes: string[] = []
  if (!rel) {
    notes.push(
      `the path names no Gemma Scope release (gemma-scope-…-res, -mlp, -att, -transcoders), so the stream this SAE reads is unknown${layerMatch ? `; if it is a residual-stream SAE (-res) of layer_${layerMatch[1]}, give --layer ${Number(layerMatch[1]) + 1}` : ''}.`
    )
    return { hook: null, stream: { stream: 'unknown', layer: null, block: layerMatch ? Number(layerMatch[1]) : null }, release: null, notes }
  }
  const kind = rel[1]!
  const release = rel[0]
  if (kind === 'transcoders')
    return {
      hook: layerMatch ? `blocks.${layerMatch[1]}.ln2.hook_normalized` : null,
      stream: { stream: 'transcoder', layer: null, block: layerMatch ? Number(layerMatch[1]) : null },
      release,
      notes
    }
  if (kind === 'res' && embedding) return { hook: 'hook_embed', stream: streamOfHook('hook_embed'), release, notes }
  if (!layerMatch) {
    notes.push(`the path names release ${release} but no layer_L folder, so the layer is unknown.`)
    return { hook: null, stream: { stream: kind === 'res' ? 'residual' : streamOfHook(KIND_HOOK[kind]!(0)).stream, layer: null, block: null }, release, notes }
  }
  const hook = KIND_HOOK[kind]!(Number(layerMatch[1]))
  return { hook, stream: streamOfHook(hook), release, notes }
}

// Gemma Scope: params.npz with W_enc [d, n], W_dec [n, d], b_enc [n], b_dec [d], threshold [n] (float32).
// JumpReLU without b_dec on the input: ReLU(pre) where pre = x·W_enc + b_enc exceeds the threshold. There
// is no config: d and n come from the biases and are checked against the matrices.
import { basename, dirname } from 'node:path'
import { UserError } from '../../../shared/api'
import { readNpz, readNpzHeaders } from '../npz'
import { checkShape, type ForeignSae } from './common'

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
  const bDec = headers.get('b_dec')!.shape
  const bEnc = headers.get('b_enc')!.shape
  if (bDec.length !== 1 || bEnc.length !== 1) throw new UserError(`${file}: b_dec and b_enc must be vectors, got (${bDec.join(', ')}) and (${bEnc.join(', ')}).`)
  const d = bDec[0]!
  const n = bEnc[0]!
  const sizes = `b_dec and b_enc (d ${d}, n ${n})`
  checkShape(file, 'W_enc', headers.get('W_enc')!.shape, [d, n], sizes)
  checkShape(file, 'W_dec', headers.get('W_dec')!.shape, [n, d], sizes)
  checkShape(file, 'threshold', headers.get('threshold')!.shape, [n], sizes)
  // Gemma Scope folders: layer_L/width_W/average_l0_N/params.npz; "layer_L" is the output of block L (0-based).
  const layerMatch = /(?:^|[/\\])layer_(\d+)(?:[/\\]|$)/.exec(dirname(file))
  const folder = basename(dirname(file))
  return {
    path: file,
    format: 'gemma-scope',
    d,
    n,
    rule: { architecture: 'jumprelu', k: null, applyBDecToInput: false, scaling: { kind: 'none', factor: 1 } },
    dtype: DTYPES[headers.get('W_enc')!.descr] ?? headers.get('W_enc')!.descr,
    hook: layerMatch ? `layer_${layerMatch[1]}` : null,
    layer: layerMatch ? Number(layerMatch[1]) + 1 : null,
    step: null,
    metadata: { source_folder: folder },
    notes: [],
    async readThreshold() {
      return (await readNpz(file, ['threshold'])).get('threshold')!.data
    },
    async read() {
      const arrays = await readNpz(file, NAMES)
      const get = (name: (typeof NAMES)[number]): Float32Array => arrays.get(name)!.data
      return { W_enc: get('W_enc'), W_dec: get('W_dec'), b_enc: get('b_enc'), b_dec: get('b_dec'), threshold: get('threshold'), sparsity: null }
    }
  }
}

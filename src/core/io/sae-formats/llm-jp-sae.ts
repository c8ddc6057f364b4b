// llm-jp-sae (Inaba et al.): a transformers save_pretrained folder, config.json (model_type "topk_sae",
// d_in, num_latents, k) + model.safetensors: encoder.weight [n, d], encoder.bias [n], decoder.weight
// [d, n] (an nn.Linear(n, d) without bias; some versions save W_dec [n, d]), b_dec [d]. Its training and
// evaluation divide every input by its L2 norm; then the top k of ReLU(encoder(x − b_dec)). train.py saves
// into {save_dir}/{model path, / → _}/layer{N}/n{num_latents}_k{k}/lr{lr}: the layer and the step are read
// from that tree.
import { existsSync, readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { UserError } from '../../../shared/api'
import { parseStep } from '../../checkpoints/discover'
import { SafetensorsFile } from '../safetensors'
import { checkTensors, positiveInt, readJson, saeParts, transpose, type ForeignSae, type HookStream } from './common'
import { configValue, keyRefusal, undeclaredKeys, undeclaredTensors } from './keys'
import type { EncodingRule } from '../../sae/sae'

export function isLlmJpSaeFolder(dir: string): boolean {
  const cfg = join(dir, 'config.json')
  if (!existsSync(cfg) || !existsSync(join(dir, 'model.safetensors'))) return false
  try {
    const raw = JSON.parse(readFileSync(cfg, 'utf8')) as Record<string, unknown>
    return raw.model_type === 'topk_sae' || ('num_latents' in raw && 'd_in' in raw)
  } catch {
    return false
  }
}

/**
 * A checkpoint step at the end of a folder name made from a model path (/ → _, llm-jp-sae's
 * return_save_dir): "_data_ckpts_llm-jp-3-tiny_iter_0001000" → 1000, "llm-jp_llm-jp-3-1.8b_step1000" → 1000.
 * Only named steps (step, iter, checkpoint, global_step) count at the end of a longer name.
 */
export function stepOfModelFolder(name: string): number | null {
  const direct = parseStep(name)
  if (direct !== null) return direct
  const m = /(?:^|_)((?:step|iter(?:ation)?|checkpoint|global[-_]?step)[-_]?\d+)$/i.exec(name)
  return m ? parseStep(m[1]!) : null
}

/** Where in llm-jp-sae's output tree an SAE folder sits: layer{N}/n{X}_k{Y}[/lr{Z}] below its model folder. */
export function llmJpTree(dir: string): { layerFolder: number; modelFolder: string } | null {
  let at = dir
  if (/^lr[\d.e+-]+$/i.test(basename(at))) at = dirname(at)
  if (!/^n\d+_k\d+$/.test(basename(at))) return null
  at = dirname(at)
  const m = /^layer_?(\d+)$/.exec(basename(at))
  if (!m) return null
  return { layerFolder: Number(m[1]), modelFolder: basename(dirname(at)) }
}

/** llm-jp-sae's train.py since 2025-09-17: --layer N (≥ 1) hooks model.layers[N−1], the output of block N. */
function streamOfTree(layerFolder: number): { stream: HookStream; hook: string; note: string } {
  if (layerFolder === 0) {
    return {
      stream: { stream: 'residual', layer: 1, block: null },
      hook: 'model.layers.0',
      note: "layer0 in llm-jp-sae's output tree: only its train.py of 2025-09-15 wrote it (--layer N hooked model.layers[N]), so this SAE reads the output of block 1: FeatureTrace layer 1."
    }
  }
  return {
    stream: { stream: 'residual', layer: layerFolder, block: null },
    hook: `model.layers.${layerFolder - 1}`,
    note: `layer${layerFolder} in llm-jp-sae's output tree is the output of block ${layerFolder} (its train.py hooks model.layers[${layerFolder - 1}] for --layer ${layerFolder}): FeatureTrace layer ${layerFolder}. SAEs trained with the train.py of 2025-09-15 hooked model.layers[${layerFolder}]: give --layer ${layerFolder + 1} for those.`
  }
}

export async function describeLlmJpSae(dir: string): Promise<ForeignSae> {
  const cfgFile = join(dir, 'config.json')
  const cfg = readJson(cfgFile, readFileSync(cfgFile, 'utf8'))
  const int = (key: string, fallback: number): number => {
    const v = configValue('llm-jp-sae', cfg, key)
    if (v === undefined) return fallback
    const x = positiveInt(v.value)
    if (x === null) throw keyRefusal(cfgFile, v.name, v.value, 'is not a positive integer.')
    return x
  }
  const d = int('d_in', 2048)
  const n = int('num_latents', 32768)
  const k = int('k', 32)
  if (k > n) throw keyRefusal(cfgFile, 'k', k, `is larger than num_latents = ${n}.`)
  const notes = ['llm-jp-sae scales every input to unit L2 norm before encoding (train.py, evaluation.py); so does FeatureTrace for this SAE.']
  const unknown = undeclaredKeys('llm-jp-sae', cfg)
  if (unknown.length) notes.push(`config.json keys FeatureTrace does not know: ${unknown.join(', ')}. Check they do not change the encoding.`)
  const weightsFile = join(dir, 'model.safetensors')
  const sizes = `config.json (d_in ${d}, num_latents ${n})`
  const f = await SafetensorsFile.open(weightsFile)
  let decoder: 'decoder.weight' | 'W_dec'
  let dtype: string
  try {
    const extra = undeclaredTensors('llm-jp-sae', f.header.tensors.keys())
    if (extra.length)
      throw new UserError(
        `${weightsFile} holds ${extra.join(', ')}, which llm-jp-sae's TopKSAE does not have; FeatureTrace refuses rather than skip ${extra.length > 1 ? 'them' : 'it'}.`
      )
    decoder = f.header.tensors.has('decoder.weight') ? 'decoder.weight' : 'W_dec'
    const expected: Record<string, number[]> = { 'encoder.weight': [n, d], 'encoder.bias': [n], [decoder]: decoder === 'W_dec' ? [n, d] : [d, n], b_dec: [d] }
    checkTensors(f, expected, sizes, { W_dec: ' (nor decoder.weight)' })
    dtype = f.info('encoder.weight').dtype
  } finally {
    await f.close()
  }
  const tree = llmJpTree(dir)
  const placed = tree ? streamOfTree(tree.layerFolder) : null
  if (placed) notes.push(placed.note)
  const rule: EncodingRule = { architecture: 'topk', k, applyBDecToInput: true, scaling: { kind: 'unit_norm', factor: 1 } }
  return {
    path: dir,
    format: 'llm-jp-sae',
    d,
    n,
    rule,
    dtype,
    hook: placed?.hook ?? null,
    stream: placed?.stream ?? { stream: 'none', layer: null, block: null },
    layer: placed?.stream.layer ?? null,
    step: tree ? stepOfModelFolder(tree.modelFolder) : null,
    metadata: { model_type: cfg.model_type ?? null, model_folder: tree?.modelFolder ?? null },
    notes,
    readThreshold: () => Promise.resolve(null),
    async read() {
      const file = await SafetensorsFile.open(weightsFile)
      try {
        const dec = await file.readFloat32(decoder)
        return saeParts(
          { d, n, rule, path: dir },
          {
            W_enc: transpose(await file.readFloat32('encoder.weight'), n, d),
            W_dec: decoder === 'W_dec' ? dec : transpose(dec, d, n),
            b_enc: await file.readFloat32('encoder.bias'),
            b_dec: await file.readFloat32('b_dec'),
            threshold: null,
            sparsity: null
          }
        )
      } finally {
        await file.close()
      }
    }
  }
}

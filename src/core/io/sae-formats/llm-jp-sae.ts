// llm-jp-sae (Inaba et al.): a transformers save_pretrained folder, config.json (model_type "topk_sae",
// d_in, num_latents, k) + model.safetensors: encoder.weight [n, d], encoder.bias [n], decoder.weight
// [d, n] (an nn.Linear(n, d) without bias; some versions save W_dec [n, d]), b_dec [d]. Its training and
// evaluation divide every input by its L2 norm; then the top k of ReLU(encoder(x − b_dec)).
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../../../shared/api'
import { SafetensorsFile } from '../safetensors'
import { checkTensors, positiveInt, readJson, transpose, type ForeignSae } from './common'

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

export async function describeLlmJpSae(dir: string): Promise<ForeignSae> {
  const cfgFile = join(dir, 'config.json')
  const cfg = readJson(cfgFile, readFileSync(cfgFile, 'utf8'))
  const d = positiveInt(cfg.d_in)
  const n = positiveInt(cfg.num_latents)
  const k = positiveInt(cfg.k)
  if (d === null || n === null || k === null) throw new UserError(`${cfgFile} needs positive integers d_in, num_latents and k.`)
  if (k > n) throw new UserError(`${cfgFile}: k = ${k} is larger than num_latents = ${n}.`)
  const weightsFile = join(dir, 'model.safetensors')
  const sizes = `config.json (d_in ${d}, num_latents ${n})`
  const f = await SafetensorsFile.open(weightsFile)
  let decoder: 'decoder.weight' | 'W_dec'
  let dtype: string
  try {
    decoder = f.header.tensors.has('decoder.weight') ? 'decoder.weight' : 'W_dec'
    const expected: Record<string, number[]> = { 'encoder.weight': [n, d], 'encoder.bias': [n], [decoder]: decoder === 'W_dec' ? [n, d] : [d, n], b_dec: [d] }
    checkTensors(f, expected, sizes, { W_dec: ' (nor decoder.weight)' })
    dtype = f.info('encoder.weight').dtype
  } finally {
    await f.close()
  }
  return {
    path: dir,
    format: 'llm-jp-sae',
    d,
    n,
    rule: { architecture: 'topk', k, applyBDecToInput: true, scaling: { kind: 'unit_norm', factor: 1 } },
    dtype,
    hook: null,
    layer: null,
    step: null,
    metadata: { model_type: cfg.model_type ?? null },
    notes: ['llm-jp-sae scales every input to unit L2 norm before encoding; so does FeatureTrace for this SAE.'],
    readThreshold: () => Promise.resolve(null),
    async read() {
      const file = await SafetensorsFile.open(weightsFile)
      try {
        const dec = await file.readFloat32(decoder)
        return {
          W_enc: transpose(await file.readFloat32('encoder.weight'), n, d),
          W_dec: decoder === 'W_dec' ? dec : transpose(dec, d, n),
          b_enc: await file.readFloat32('encoder.bias'),
          b_dec: await file.readFloat32('b_dec'),
          threshold: null,
          sparsity: null
        }
      } finally {
        await file.close()
      }
    }
  }
}

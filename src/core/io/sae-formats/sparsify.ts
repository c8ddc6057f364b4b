// EleutherAI sparsify (formerly "sae"): one folder per hookpoint with cfg.json (its SparseCoderConfig plus
// d_in) and sae.safetensors: encoder.weight [num_latents, d_in], encoder.bias [num_latents],
// W_dec [num_latents, d_in], b_dec [d_in]. Encoding: the top k of ReLU(encoder(x − b_dec)).
import { existsSync, readFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { UserError } from '../../../shared/api'
import { SafetensorsFile } from '../safetensors'
import { checkTensors, layerOfHook, positiveInt, readJson, transpose, type ForeignSae } from './common'

export function isSparsifyFolder(dir: string): boolean {
  return existsSync(join(dir, 'cfg.json')) && existsSync(join(dir, 'sae.safetensors'))
}

export async function describeSparsify(dir: string): Promise<ForeignSae> {
  const cfgFile = join(dir, 'cfg.json')
  const cfg = readJson(cfgFile, readFileSync(cfgFile, 'utf8'))
  const d = positiveInt(cfg.d_in)
  if (d === null) throw new UserError(`${cfgFile} needs a positive integer d_in (sparsify writes it beside the SparseCoderConfig).`)
  const expansion = positiveInt(cfg.expansion_factor)
  const n = positiveInt(cfg.num_latents) ?? (expansion !== null ? expansion * d : null)
  const k = positiveInt(cfg.k)
  if (n === null || k === null) throw new UserError(`${cfgFile} needs k and num_latents (or expansion_factor).`)
  if (k > n) throw new UserError(`${cfgFile}: k = ${k} is larger than num_latents = ${n}.`)
  if (cfg.activation !== undefined && cfg.activation !== 'topk') {
    throw new UserError(`${cfgFile}: activation "${String(cfg.activation)}" is not supported; FeatureTrace imports TopK sparse coders.`)
  }
  if (cfg.transcode === true) throw new UserError(`${cfgFile} is a transcoder (transcode: true): it predicts another hook's output; FeatureTrace imports SAEs.`)
  const notes: string[] = []
  if (cfg.skip_connection === true) notes.push('skip_connection: W_skip only changes the reconstruction, not latent activations; it is not imported.')
  if (cfg.multi_topk === true) notes.push('multi_topk was a training loss; latents use the top k as at inference.')

  const weightsFile = join(dir, 'sae.safetensors')
  const sizes = `cfg.json (d_in ${d}, num_latents ${n})`
  const f = await SafetensorsFile.open(weightsFile)
  let dtype: string
  try {
    const expected: Record<string, number[]> = { 'encoder.weight': [n, d], 'encoder.bias': [n], W_dec: [n, d], b_dec: [d] }
    checkTensors(f, expected, sizes, { W_dec: ' (saved without its decoder?)' })
    dtype = f.info('encoder.weight').dtype
  } finally {
    await f.close()
  }
  const hook = basename(dir)
  const layer = layerOfHook(hook)
  if (layer === null) notes.push(`hookpoint ${hook} is not a residual-stream layer (layers.N); choose the layer of the activations to use it on.`)
  return {
    path: dir,
    format: 'sparsify',
    d,
    n,
    rule: { architecture: 'topk', k, applyBDecToInput: true, scaling: { kind: 'none', factor: 1 } },
    dtype,
    hook,
    layer,
    step: null,
    metadata: { hook_name: hook, sparsify_cfg: cfg },
    notes,
    readThreshold: () => Promise.resolve(null),
    async read() {
      const file = await SafetensorsFile.open(weightsFile)
      try {
        return {
          W_enc: transpose(await file.readFloat32('encoder.weight'), n, d),
          W_dec: await file.readFloat32('W_dec'),
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

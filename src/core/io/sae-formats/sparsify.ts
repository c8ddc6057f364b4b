// EleutherAI sparsify (formerly "sae"): one folder per hookpoint with cfg.json (its SparseCoderConfig plus
// d_in) and sae.safetensors: encoder.weight [num_latents, d_in], encoder.bias [num_latents],
// W_dec [num_latents, d_in], b_dec [d_in]. Encoding (SparseCoder.encode): the top k of
// ReLU(encoder(x − b_dec)). Every cfg.json key is read through the declared table (keys.ts).
import { existsSync, readFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { UserError } from '../../../shared/api'
import { SafetensorsFile } from '../safetensors'
import { checkShape, checkTensors, positiveInt, readJson, saeParts, streamOfHook, transpose, type ForeignSae } from './common'
import { configValue, keyRefusal, undeclaredKeys, undeclaredTensors } from './keys'
import type { EncodingRule } from '../../sae/sae'

export function isSparsifyFolder(dir: string): boolean {
  return existsSync(join(dir, 'cfg.json')) && existsSync(join(dir, 'sae.safetensors'))
}

/** Files sparsify's Trainer writes beside the hookpoint folders of a run (training state, never loaded here). */
export const SPARSIFY_RUN_FILES = [/^state\.pt$/, /^rank_\d+_state\.pt$/, /^optimizer_\d+\.pt$/, /^lr_scheduler_\d+\.pt$/]

export function isSparsifyRunFile(name: string): boolean {
  return SPARSIFY_RUN_FILES.some((re) => re.test(name))
}

export async function describeSparsify(dir: string): Promise<ForeignSae> {
  const cfgFile = join(dir, 'cfg.json')
  const cfg = readJson(cfgFile, readFileSync(cfgFile, 'utf8'))
  const get = (key: string): { value: unknown; name: string } | undefined => configValue('sparsify', cfg, key)
  const d = positiveInt(get('d_in')?.value)
  if (d === null) throw new UserError(`${cfgFile} needs a positive integer d_in (sparsify writes it beside the SparseCoderConfig).`)
  const refuseUnlessDefault = (key: string, fallback: unknown, why: string): void => {
    const v = get(key)
    if (v !== undefined && v.value !== fallback) throw keyRefusal(cfgFile, v.name, v.value, why)
  }
  refuseUnlessDefault('activation', 'topk', 'is not supported: FeatureTrace imports TopK sparse coders (groupmax keeps the largest of each of k groups).')
  refuseUnlessDefault(
    'transcode',
    false,
    "makes this a transcoder: it predicts another hook's output from this one; FeatureTrace imports SAEs of the residual stream."
  )
  refuseUnlessDefault('signed', false, 'means signed activations (EleutherAI/sae), not a ReLU TopK; FeatureTrace does not compute them.')
  const expansionFound = get('expansion_factor')
  const expansion = expansionFound === undefined ? 32 : positiveInt(expansionFound.value)
  if (expansion === null) throw keyRefusal(cfgFile, 'expansion_factor', expansionFound!.value, 'is not a positive integer.')
  const latents = get('num_latents')
  if (latents !== undefined && latents.value !== 0 && positiveInt(latents.value) === null)
    throw keyRefusal(cfgFile, 'num_latents', latents.value, 'is not a positive integer (or 0 for expansion_factor × d_in).')
  const n = positiveInt(latents?.value) ?? expansion * d
  const kFound = get('k')
  const k = kFound === undefined ? 32 : positiveInt(kFound.value)
  if (k === null) throw keyRefusal(cfgFile, 'k', kFound!.value, 'is not a positive integer.')
  if (k > n) throw keyRefusal(cfgFile, 'k', k, `is larger than the ${n} latents.`)
  const notes: string[] = []
  if (kFound === undefined) notes.push("cfg.json gives no k: sparsify's default k = 32 is used.")
  const skip = get('skip_connection')?.value === true
  if (skip)
    notes.push(
      "skip_connection: W_skip adds x·W_skipᵀ to sparsify's reconstruction; the latents do not use it, and the imported SAE does not carry it (its reconstruction omits that term)."
    )
  if (get('multi_topk')?.value === true) notes.push('multi_topk was a training loss; latents use the top k as at inference.')
  const unknown = undeclaredKeys('sparsify', cfg)
  if (unknown.length) notes.push(`cfg.json keys FeatureTrace does not know: ${unknown.join(', ')}. Check they do not change the encoding.`)

  const weightsFile = join(dir, 'sae.safetensors')
  const sizes = `cfg.json (d_in ${d}, num_latents ${n})`
  const f = await SafetensorsFile.open(weightsFile)
  let dtype: string
  try {
    const extra = undeclaredTensors('sparsify', f.header.tensors.keys())
    if (extra.length)
      throw new UserError(
        `${weightsFile} holds ${extra.join(', ')}, which a sparsify sparse coder does not have; FeatureTrace refuses rather than skip ${extra.length > 1 ? 'them' : 'it'}.`
      )
    const expected: Record<string, number[]> = { 'encoder.weight': [n, d], 'encoder.bias': [n], W_dec: [n, d], b_dec: [d] }
    checkTensors(f, expected, sizes, { W_dec: ' (saved without its decoder?)' })
    if (f.header.tensors.has('W_skip')) checkShape(weightsFile, 'W_skip', f.info('W_skip').shape, [d, d], sizes)
    else if (skip) throw new UserError(`${weightsFile} has no tensor "W_skip" although cfg.json sets skip_connection: true.`)
    dtype = f.info('encoder.weight').dtype
  } finally {
    await f.close()
  }
  const hook = basename(dir)
  const stream = streamOfHook(hook)
  const rule: EncodingRule = { architecture: 'topk', k, applyBDecToInput: true, scaling: { kind: 'none', factor: 1 } }
  return {
    path: dir,
    format: 'sparsify',
    d,
    n,
    rule,
    dtype,
    hook,
    stream,
    layer: stream.layer,
    step: null,
    metadata: { hook_name: hook, sparsify_cfg: cfg },
    notes,
    readThreshold: () => Promise.resolve(null),
    async read() {
      const file = await SafetensorsFile.open(weightsFile)
      try {
        return saeParts(
          { d, n, rule, path: dir },
          {
            W_enc: transpose(await file.readFloat32('encoder.weight'), n, d),
            W_dec: await file.readFloat32('W_dec'),
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

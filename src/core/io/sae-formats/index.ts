// Recognising an SAE on disk by its files, whichever library wrote it.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { basename, dirname, extname, join } from 'node:path'
import { UserError } from '../../../shared/api'
import type { ForeignSae } from './common'
import { describeGemmaScope } from './gemma-scope'
import { describeLlmJpSae, isLlmJpSaeFolder } from './llm-jp-sae'
import { describeSaeLens, isSaeLensFolder } from './saelens'
import { describeSparsify, isSparsifyFolder, isSparsifyRunFile } from './sparsify'

export { FORMAT_NAMES, SAE_FORMATS, type ForeignSae, type ForeignWeights, type SaeFormat } from './common'

const PICKLE_EXTENSIONS = ['.pth', '.pt', '.ckpt', '.bin', '.pkl']

/** Pickled checkpoints run arbitrary code when loaded: FeatureTrace never unpickles, and says how to convert. */
export function pickleRefusal(file: string): UserError {
  const name = basename(file)
  return new UserError(
    `${file} is a PyTorch pickle, which FeatureTrace does not load (unpickling can run arbitrary code). Convert it to safetensors with two lines of Python:\n` +
      `  import torch; from safetensors.torch import save_file\n` +
      `  save_file({k: v.contiguous() for k, v in torch.load("${name}", map_location="cpu").items()}, "model.safetensors")\n` +
      `then put a config.json beside it with d_in, num_latents and k (llm-jp-sae's save_pretrained layout) and import the folder.`
  )
}

function isPickle(file: string): boolean {
  return PICKLE_EXTENSIONS.includes(extname(file).toLowerCase())
}

/** The SAE at `path` (a folder or a file in one), or null when nothing there looks like an SAE. */
export async function describeSae(path: string): Promise<ForeignSae | null> {
  if (!existsSync(path)) throw new UserError(`${path} does not exist.`)
  if (statSync(path).isFile()) {
    if (isPickle(path)) throw pickleRefusal(path)
    if (extname(path).toLowerCase() === '.npz') return describeGemmaScope(path)
    // A config or weights file names its folder.
    return describeSae(dirname(path))
  }
  if (isSaeLensFolder(path)) return describeSaeLens(path)
  if (isSparsifyFolder(path)) return describeSparsify(path)
  if (isLlmJpSaeFolder(path)) return describeLlmJpSae(path)
  if (existsSync(join(path, 'params.npz'))) return describeGemmaScope(join(path, 'params.npz'))
  const files = readdirSync(path).filter((f) => statSync(join(path, f)).isFile())
  // sparsify's run folder: optimizer, scheduler and counters beside the hookpoint folders are not SAEs.
  const pickle = files.find((f) => isPickle(f) && !isSparsifyRunFile(f))
  if (pickle && !files.some((f) => f.endsWith('.safetensors') || f.endsWith('.npz'))) throw pickleRefusal(join(path, pickle))
  const npz = files.filter((f) => f.endsWith('.npz'))
  if (npz.length === 1) return describeGemmaScope(join(path, npz[0]!))
  return null
}

export const WHAT_WE_READ =
  'SAELens (cfg.json + sae_weights.safetensors), sparsify (cfg.json + sae.safetensors), Gemma Scope (params.npz) or llm-jp-sae (config.json + model.safetensors)'

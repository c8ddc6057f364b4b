// Finding checkpoint folders and reading what each one is from its config.json.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { UserError } from '../../shared/api'

/** Naming schemes seen in the wild: Pythia revisions, Megatron, HF Trainer, llm-jp, DeepSpeed. */
const STEP_PATTERNS: readonly RegExp[] = [
  /^step[-_]?(\d+)$/i,
  /^iter(?:ation)?[-_]?(\d+)$/i,
  /^checkpoint[-_](\d+)$/i,
  /^global[-_]?step[-_]?(\d+)$/i,
  /^c(\d+)$/i,
  /^(\d+)$/
]

export function parseStep(folderName: string): number | null {
  for (const re of STEP_PATTERNS) {
    const m = re.exec(folderName)
    if (m) {
      const step = Number(m[1])
      return Number.isSafeInteger(step) ? step : null
    }
  }
  return null
}

export const SUPPORTED_MODEL_TYPES = ['gpt_neox', 'llama', 'gpt2'] as const

export interface CheckpointConfig {
  modelType: string
  supported: boolean
  dModel: number
  layers: number
  heads: number | null
  vocabSize: number | null
  raw: Record<string, unknown>
}

function positiveInt(raw: Record<string, unknown>, keys: readonly string[]): number | null {
  for (const k of keys) {
    const v = raw[k]
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v
  }
  return null
}

export function readCheckpointConfig(folder: string): CheckpointConfig {
  const file = join(folder, 'config.json')
  if (!existsSync(file)) {
    throw new UserError(`Missing ${file}: a Hugging Face checkpoint folder needs its config.json.`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${(err as Error).message}).`)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new UserError(`${file} does not hold a JSON object.`)
  }
  const cfg = raw as Record<string, unknown>
  const modelType = typeof cfg.model_type === 'string' ? cfg.model_type : null
  if (!modelType) throw new UserError(`${file} has no "model_type"; is this a Hugging Face model config?`)
  const dModel = positiveInt(cfg, ['hidden_size', 'n_embd', 'd_model'])
  const layers = positiveInt(cfg, ['num_hidden_layers', 'n_layer', 'num_layers'])
  if (dModel === null || layers === null) {
    throw new UserError(`${file} lacks a positive hidden size (hidden_size/n_embd) or layer count (num_hidden_layers/n_layer).`)
  }
  return {
    modelType,
    supported: (SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType),
    dModel,
    layers,
    heads: positiveInt(cfg, ['num_attention_heads', 'n_head']),
    vocabSize: positiveInt(cfg, ['vocab_size']),
    raw: cfg
  }
}

/** Weight files of a checkpoint: a single model.safetensors or the shards its index names. */
export function weightFiles(folder: string): string[] {
  const single = join(folder, 'model.safetensors')
  if (existsSync(single)) return [single]
  const index = join(folder, 'model.safetensors.index.json')
  if (existsSync(index)) {
    let parsed: unknown
    try {
      parsed = JSON.parse(readFileSync(index, 'utf8'))
    } catch (err) {
      throw new UserError(`${index} is not valid JSON (${(err as Error).message}).`)
    }
    const map = (parsed as { weight_map?: unknown }).weight_map
    if (typeof map !== 'object' || map === null) throw new UserError(`${index} has no "weight_map" object.`)
    const shards = [...new Set(Object.values(map as Record<string, unknown>).map(String))].sort()
    for (const s of shards) {
      if (s.includes('/') || s.includes('\\') || s.startsWith('.')) {
        throw new UserError(`${index} names a shard outside its folder: ${JSON.stringify(s)}.`)
      }
    }
    return shards.map((s) => join(folder, s))
  }
  return []
}

export interface FoundCheckpoint {
  path: string
  name: string
  step: number
  config: CheckpointConfig
  weightsBytes: number | null
}

export interface DiscoveryResult {
  found: FoundCheckpoint[]
  skipped: { path: string; reason: string }[]
}

function describe(path: string, step: number): FoundCheckpoint {
  const config = readCheckpointConfig(path)
  const files = weightFiles(path)
  const bytes = files.filter(existsSync).reduce((sum, f) => sum + statSync(f).size, 0)
  return { path, name: basename(path), step, config, weightsBytes: files.length ? bytes : null }
}

/**
 * A folder is either one checkpoint (it has config.json) or a series of checkpoint subfolders
 * named by step. `explicitStep` overrides the parsed step of a single checkpoint.
 */
export function discoverCheckpoints(folder: string, explicitStep?: number): DiscoveryResult {
  const root = resolve(folder)
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new UserError(`${root} is not a folder. Give the folder that holds the checkpoint subfolders.`)
  }
  if (existsSync(join(root, 'config.json'))) {
    const step = explicitStep ?? parseStep(basename(root))
    if (step === null) {
      throw new UserError(
        `Cannot tell the training step of ${root} from its name; name it like step1000 or pass a step.`
      )
    }
    return { found: [describe(root, step)], skipped: [] }
  }
  const found: FoundCheckpoint[] = []
  const skipped: { path: string; reason: string }[] = []
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue
    const path = join(root, entry.name)
    const step = parseStep(entry.name)
    if (step === null) {
      skipped.push({ path, reason: 'no training step in the folder name (expected step1000, iter_0001000, checkpoint-1000 or c1000)' })
      continue
    }
    try {
      found.push(describe(path, step))
    } catch (err) {
      if (!(err instanceof UserError)) throw err
      skipped.push({ path, reason: err.message })
    }
  }
  found.sort((a, b) => a.step - b.step)
  if (found.length === 0 && skipped.length === 0) {
    throw new UserError(`${root} holds no checkpoint folders (subfolders named like step1000 with a config.json).`)
  }
  return { found, skipped }
}

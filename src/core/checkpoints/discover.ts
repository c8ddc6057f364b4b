// Finding checkpoint folders and reading what each one is from its config.json.
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
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

/** A folder entry seen through symlinks: links to folders count as folders (series of links, HF cache snapshots). */
function entryKind(path: string): 'folder' | 'file' | 'broken-link' | 'other' {
  try {
    const st = statSync(path)
    return st.isDirectory() ? 'folder' : st.isFile() ? 'file' : 'other'
  } catch {
    return lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() ? 'broken-link' : 'other'
  }
}

/**
 * A Hugging Face hub cache folder (`models--org--name`, or its `snapshots/`): `refs/<revision>` files hold
 * the commit hash whose snapshot is `snapshots/<hash>/`. Revisions named by step (Pythia's `step1000`
 * branches) become the series; snapshots no ref names by a step are reported, never guessed.
 */
function hubCacheSeries(root: string): DiscoveryResult | null {
  const repo = basename(root) === 'snapshots' && basename(dirname(root)).startsWith('models--') ? dirname(root) : root
  if (!basename(repo).startsWith('models--') || !existsSync(join(repo, 'snapshots'))) return null
  const refsDir = join(repo, 'refs')
  const refs = new Map<string, string[]>() // commit hash → revision names
  for (const file of existsSync(refsDir) ? listRefs(refsDir) : []) {
    const hash = readFileSync(join(refsDir, file), 'utf8').trim()
    refs.set(hash, [...(refs.get(hash) ?? []), file])
  }
  const found: FoundCheckpoint[] = []
  const skipped: { path: string; reason: string }[] = []
  for (const hash of readdirSync(join(repo, 'snapshots')).sort()) {
    const path = join(repo, 'snapshots', hash)
    if (entryKind(path) !== 'folder') continue
    const names = refs.get(hash) ?? []
    const stepped = names.map((n) => ({ n, step: parseStep(basename(n)) })).filter((x) => x.step !== null)
    if (stepped.length === 0) {
      skipped.push({
        path,
        reason: names.length
          ? `its revision ${names.map((n) => `"${n}"`).join(', ')} names no training step: register it with a step (checkpoints add ${path} --step N)`
          : `no ref in ${refsDir} names this snapshot, so its step is unknown: register it with a step (checkpoints add ${path} --step N)`
      })
      continue
    }
    try {
      found.push({ ...describe(path, stepped[0]!.step!), name: basename(stepped[0]!.n) })
    } catch (err) {
      if (!(err instanceof UserError)) throw err
      skipped.push({ path, reason: err.message })
    }
  }
  found.sort((a, b) => a.step - b.step)
  return { found, skipped }
}

/** Ref files below refs/, with nested names (refs/pr/1) as paths. */
function listRefs(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listRefs(dir, join(prefix, e.name)) : e.isFile() ? [join(prefix, e.name)] : []
  )
}

/** Why a folder that is neither a checkpoint nor a series of them is not one: what it holds, what to do. */
function notACheckpointFolder(root: string): string {
  const names = readdirSync(root).filter((n) => !n.startsWith('.'))
  const has = (n: string): boolean => names.includes(n)
  if (has('model.safetensors') || has('model.safetensors.index.json')) {
    return `${root} holds weights but no config.json: a Hugging Face checkpoint folder needs the config.json that save_pretrained writes beside them.`
  }
  if (names.some((n) => /^pytorch_model.*\.bin$|\.pt$|\.pth$|\.ckpt$/.test(n))) {
    return `${root} holds PyTorch pickle weights (${names
      .filter((n) => /\.(bin|pt|pth|ckpt)$/.test(n))
      .slice(0, 3)
      .join(
        ', '
      )}) and no config.json. FeatureTrace reads safetensors only: load the model in Python and call save_pretrained(folder, safe_serialization=True).`
  }
  if (names.some((n) => n.startsWith('models--'))) {
    return `${root} is a Hugging Face hub cache: give one model's folder (${names.find((n) => n.startsWith('models--'))}), whose refs name the revisions.`
  }
  if (basename(root) === 'blobs' && basename(dirname(root)).startsWith('models--')) {
    return `${root} is the blob store of a Hugging Face cache: give ${dirname(root)} (or one of its snapshots/ folders) instead.`
  }
  return `${root} holds no checkpoint folders (subfolders named like step1000 with a config.json, or links to them)${names.length ? `; it has ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}` : ' and is empty'}.`
}

/**
 * A folder is either one checkpoint (it has config.json), a Hugging Face cache folder (`models--org--name`,
 * revisions named by step), or a series of checkpoint subfolders named by step; subfolders may be symlinks
 * (a series of `stepN` links into a cache). `explicitStep` overrides the parsed step of a single checkpoint.
 */
export function discoverCheckpoints(folder: string, explicitStep?: number): DiscoveryResult {
  const root = resolve(folder)
  if (entryKind(root) !== 'folder') {
    throw new UserError(
      entryKind(root) === 'broken-link'
        ? `${root} is a link to ${readlinkSync(root)}, which does not exist.`
        : `${root} is not a folder. Give the folder that holds the checkpoint subfolders.`
    )
  }
  if (existsSync(join(root, 'config.json'))) {
    const step = explicitStep ?? parseStep(basename(root))
    if (step === null) {
      throw new UserError(`Cannot tell the training step of ${root} from its name; name it like step1000 or pass a step.`)
    }
    return { found: [describe(root, step)], skipped: [] }
  }
  const cache = hubCacheSeries(root)
  if (cache) {
    if (cache.found.length === 0 && cache.skipped.length === 0) throw new UserError(`${root} is a Hugging Face cache folder with no snapshots.`)
    return cache
  }
  const names = readdirSync(root).sort()
  // The hub root holds one folder per model: say which to give rather than skipping them all.
  if (names.some((n) => n.startsWith('models--')) && !names.some((n) => parseStep(n) !== null)) throw new UserError(notACheckpointFolder(root))
  const found: FoundCheckpoint[] = []
  const skipped: { path: string; reason: string }[] = []
  for (const name of names) {
    if (name.startsWith('.')) continue
    const path = join(root, name)
    const kind = entryKind(path)
    if (kind === 'broken-link') {
      if (parseStep(name) !== null) skipped.push({ path, reason: `a link to ${readlinkSync(path)}, which does not exist` })
      continue
    }
    if (kind !== 'folder') continue
    const step = parseStep(name)
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
  if (found.length === 0 && skipped.length === 0) throw new UserError(notACheckpointFolder(root))
  return { found, skipped }
}

// The name of the model a checkpoint folder holds, for the files FeatureTrace writes for other tools
// (SAELens' model_name): a Hugging Face id where the folder says one, never a local path.
import { existsSync, readFileSync } from 'node:fs'
import { basename, dirname, join, sep } from 'node:path'
import { parseStep } from './discover'

/** A Hugging Face repository id (name or org/name), as transformers writes _name_or_path for a downloaded model. */
const HUB_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/

/**
 * The model's name for a checkpoint folder: config.json's _name_or_path when it is a hub id (not a local path),
 * else org/name of a hub cache folder (models--org--name), else the series folder's name for a step folder
 * (pythia-160m/step1000 → pythia-160m), else the folder's own name.
 */
export function modelNameOf(checkpointDir: string): string {
  const config = join(checkpointDir, 'config.json')
  if (existsSync(config)) {
    try {
      const named = (JSON.parse(readFileSync(config, 'utf8')) as { _name_or_path?: unknown })._name_or_path
      if (typeof named === 'string' && HUB_ID.test(named) && !existsSync(named)) return named
    } catch {
      // An unreadable config.json names nothing; the folder's name is used.
    }
  }
  const cache = checkpointDir.split(sep).find((part) => /^models--[^-].*--./.test(part))
  if (cache) return cache.slice('models--'.length).replace('--', '/')
  const name = basename(checkpointDir)
  return parseStep(name) !== null ? basename(dirname(checkpointDir)) : name
}

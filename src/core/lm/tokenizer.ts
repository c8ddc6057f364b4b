// Tokenisation through Hugging Face's own JS library (@huggingface/tokenizers), never hand-written BPE.
import { Tokenizer } from '@huggingface/tokenizers'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../../shared/api'
import { prefixEncoder, type PrefixEncoder } from './prefix-tokens'

export interface ModelTokenizer {
  /** Token ids of a text, without special tokens. */
  encode(text: string): number[]
  /** At least the first `atLeast` ids of encode(text), exactly, without tokenising all of a long text. */
  encodePrefix: PrefixEncoder
  /** The id the model expects first in every sequence, or null when it uses none (Pythia, GPT-2). */
  bos: number | null
  tokenText(id: number): string
}

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${(err as Error).message}).`)
  }
}

export function loadTokenizer(folder: string): ModelTokenizer {
  const file = join(folder, 'tokenizer.json')
  if (!existsSync(file)) {
    throw new UserError(
      `Missing ${file}. FeatureTrace needs the fast tokenizer file: in Python, ` +
        'AutoTokenizer.from_pretrained(...).save_pretrained(folder) writes it.'
    )
  }
  const configFile = join(folder, 'tokenizer_config.json')
  const config = existsSync(configFile) ? readJson(configFile) : {}
  let tokenizer: Tokenizer
  const json = readJson(file)
  try {
    tokenizer = new Tokenizer(json, config)
  } catch (err) {
    throw new UserError(`${file} could not be loaded as a tokenizer: ${(err as Error).message}`)
  }
  // The post-processor decides whether the model sees a BOS: compare encodings with and without it.
  const probe = 'a'
  const withSpecial = tokenizer.encode(probe, { add_special_tokens: true }).ids
  const plain = tokenizer.encode(probe, { add_special_tokens: false }).ids
  const bos = withSpecial.length > plain.length && withSpecial[0] !== plain[0] ? (withSpecial[0] ?? null) : null
  const encode = (text: string): number[] => tokenizer.encode(text, { add_special_tokens: false }).ids
  return {
    encode,
    encodePrefix: prefixEncoder(json, encode),
    bos,
    tokenText: (id) => tokenizer.id_to_token(id) ?? `<${id}>`
  }
}

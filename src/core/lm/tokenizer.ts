// Tokenisation through Hugging Face's own JS library (@huggingface/tokenizers), never hand-written BPE,
// with what that library leaves out done here as transformers and the Rust `tokenizers` library do it:
// tokenizer_config.json's class rules (which special tokens go around a text, add_prefix_space) and the
// legacy fields of older tokenizer.json files. What cannot be reproduced is refused by name.
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
  /** The id transformers appends after every text (add_eos_token), or null. */
  eos: number | null
  /** Which file and key decided `bos` and `eos`, in a sentence for logs. */
  specialTokensReason: string
  tokenText(id: number): string
  /** The tokenizer.json read. */
  file: string
}

type Json = Record<string, unknown>

function readJson(file: string): Json {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${(err as Error).message}).`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UserError(`${file} does not hold a JSON object.`)
  return parsed as Json
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * tokenizer_config.json's classes whose rules are applied, by name without "Fast" (AutoTokenizer loads the
 * fast class either way): which special tokens surround a text, with transformers' defaults.
 */
export const TOKENIZER_CLASSES = {
  /** tokenizer.json's post_processor as it is. */
  PreTrainedTokenizer: { rebuildsPostProcessor: false, addBos: false, addEos: false, bos: null, eos: null, prefixSpace: 'kept', refusesAddBos: false },
  /** LlamaTokenizerFast.update_post_processor: "<s>" before, by default; add_prefix_space makes transformers rebuild from tokenizer.model. */
  LlamaTokenizer: { rebuildsPostProcessor: true, addBos: true, addEos: false, bos: '<s>', eos: '</s>', prefixSpace: 'refused', refusesAddBos: false },
  /** GPTNeoXTokenizerFast (transformers ≥ 4.38): the same rebuild, nothing added by default. */
  GPTNeoXTokenizer: {
    rebuildsPostProcessor: true,
    addBos: false,
    addEos: false,
    bos: '<|endoftext|>',
    eos: '<|endoftext|>',
    prefixSpace: 'applied',
    refusesAddBos: false
  },
  /** GPT2TokenizerFast: tokenizer.json's post_processor; add_bos_token is refused by transformers itself. */
  GPT2Tokenizer: {
    rebuildsPostProcessor: false,
    addBos: false,
    addEos: false,
    bos: '<|endoftext|>',
    eos: '<|endoftext|>',
    prefixSpace: 'applied',
    refusesAddBos: true
  }
} as const satisfies Record<
  string,
  {
    rebuildsPostProcessor: boolean
    addBos: boolean
    addEos: boolean
    bos: string | null
    eos: string | null
    prefixSpace: 'kept' | 'applied' | 'refused'
    refusesAddBos: boolean
  }
>
type TokenizerClass = keyof typeof TOKENIZER_CLASSES

/** transformers' tokenizer class for a model_type when tokenizer_config.json names none (AutoTokenizer's mapping). */
const CLASS_BY_MODEL_TYPE: Record<string, TokenizerClass> = { llama: 'LlamaTokenizer', gpt_neox: 'GPTNeoXTokenizer', gpt2: 'GPT2Tokenizer' }

/** A special token as tokenizer_config.json writes it: a string or an AddedToken object. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v
  if (isObject(v) && typeof v.content === 'string') return v.content
  return null
}

/**
 * Rewrites legacy and unsupported tokenizer.json pre-tokenizer fields into what the JS library computes
 * the way the Rust library does. Metaspace: add_prefix_space false → prepend_scheme "never"; no
 * prepend_scheme → "always"; split (default true) → an explicit split before every "▁" (MergedWithNext).
 */
function normalisePreTokenizer(pt: unknown, file: string, path: string): unknown {
  if (!isObject(pt)) return pt
  if (pt.type === 'Sequence') {
    const list = Array.isArray(pt.pretokenizers) ? pt.pretokenizers : []
    return { ...pt, pretokenizers: list.map((p, i) => normalisePreTokenizer(p, file, `${path}.pretokenizers[${i}]`)) }
  }
  if (pt.type === 'Metaspace') {
    const replacement = typeof pt.replacement === 'string' ? pt.replacement : '▁'
    let scheme = typeof pt.prepend_scheme === 'string' ? pt.prepend_scheme : 'always'
    if (pt.add_prefix_space === false) {
      if (typeof pt.prepend_scheme === 'string' && pt.prepend_scheme !== 'never') {
        throw new UserError(
          `${file}: ${path} sets add_prefix_space false and prepend_scheme "${pt.prepend_scheme}"; the tokenizers library refuses this file too. Keep one of them.`
        )
      }
      scheme = 'never'
    }
    const metaspace = { type: 'Metaspace', replacement, prepend_scheme: scheme, split: false }
    if (pt.split === false) return metaspace
    // Every piece starts at a replacement character, as Rust's split(replacement, MergedWithNext) cuts.
    const r = replacement.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    return { type: 'Sequence', pretokenizers: [metaspace, { type: 'Split', pattern: { Regex: `${r}[^${r}]*|[^${r}]+` }, behavior: 'Isolated', invert: true }] }
  }
  if (pt.type === 'Split') {
    const behavior = String(pt.behavior ?? 'Isolated')
    if (pt.invert === true || !['Isolated', 'Removed'].includes(behavior)) {
      throw new UserError(
        `${file}: ${path} is a Split pre-tokenizer with behavior "${behavior}"${pt.invert === true ? ' and invert true' : ''}, which FeatureTrace's tokenizer library does not compute as Hugging Face's does (only Isolated and Removed, not inverted).`
      )
    }
  }
  return pt
}

/** Fields of tokenizer.json's model the JS library ignores while the Rust library does not. */
function checkModel(model: unknown, file: string): void {
  if (!isObject(model)) return
  if (typeof model.dropout === 'number' && model.dropout > 0) {
    throw new UserError(
      `${file}: model.dropout is ${model.dropout}, so Hugging Face's tokenizer skips merges at random on every call. Set it to null for a deterministic tokenisation.`
    )
  }
  if (model.type === 'BPE' && typeof model.continuing_subword_prefix === 'string' && model.continuing_subword_prefix !== '') {
    throw new UserError(
      `${file}: model.continuing_subword_prefix "${model.continuing_subword_prefix}" is not computed by FeatureTrace's tokenizer library for BPE models.`
    )
  }
}

interface Surround {
  prefix: number[]
  suffix: number[]
  what: string
}

/** The ids tokenizer.json's post_processor puts around a single text, as the Rust library reads it. */
function postProcessorSurround(pp: unknown, file: string, idOf: (t: string) => number | undefined): Surround {
  if (pp === null || pp === undefined) return { prefix: [], suffix: [], what: 'tokenizer.json has no post_processor' }
  if (!isObject(pp)) throw new UserError(`${file}: post_processor is not an object.`)
  const type = String(pp.type)
  if (type === 'ByteLevel') return { prefix: [], suffix: [], what: "tokenizer.json's post_processor (ByteLevel) adds none" }
  if (type === 'Sequence') {
    const parts = (Array.isArray(pp.processors) ? pp.processors : []).map((p) => postProcessorSurround(p, file, idOf))
    return {
      prefix: parts.flatMap((p) => p.prefix),
      suffix: parts.flatMap((p) => p.suffix),
      what: `tokenizer.json's post_processor (a Sequence: ${parts.map((p) => p.what.replace(/^tokenizer\.json's post_processor /, '')).join(', ')})`
    }
  }
  if (type === 'TemplateProcessing') {
    const single = Array.isArray(pp.single) ? (pp.single as Json[]) : []
    const specials = isObject(pp.special_tokens) ? pp.special_tokens : {}
    const at = single.findIndex((item) => isObject(item.Sequence))
    if (at < 0) throw new UserError(`${file}: post_processor's single template has no $A (the text itself).`)
    const ids = (items: Json[]): number[] =>
      items.flatMap((item) => {
        const name = isObject(item.SpecialToken) ? String(item.SpecialToken.id) : ''
        const entry = specials[name]
        if (isObject(entry) && Array.isArray(entry.ids)) return entry.ids as number[]
        throw new UserError(`${file}: post_processor's template uses "${name}", which its special_tokens do not define.`)
      })
    return { prefix: ids(single.slice(0, at)), suffix: ids(single.slice(at + 1)), what: "tokenizer.json's post_processor (TemplateProcessing) says so" }
  }
  if (type === 'RobertaProcessing' || type === 'BertProcessing') {
    const id = (pair: unknown): number =>
      Array.isArray(pair) && typeof pair[1] === 'number' ? pair[1] : (idOf(String(Array.isArray(pair) ? pair[0] : '')) ?? -1)
    return { prefix: [id(pp.cls)], suffix: [id(pp.sep)], what: `tokenizer.json's post_processor (${type}) says so` }
  }
  throw new UserError(
    `${file}: post_processor type "${type}" is not one FeatureTrace reads (TemplateProcessing, ByteLevel, Sequence, RobertaProcessing, BertProcessing).`
  )
}

function tokenLabel(id: number, text: string | undefined): string {
  return `${text ?? '?'} (id ${id})`
}

/**
 * Loads `folder`'s tokenizer.json with tokenizer_config.json's class rules, the way transformers'
 * AutoTokenizer builds the fast tokenizer: the class comes from tokenizer_config.json's tokenizer_class,
 * else from config.json's model_type (`knownModelType`, when the caller has read it); LlamaTokenizerFast and GPTNeoXTokenizerFast rebuild the
 * post-processor from add_bos_token / add_eos_token (defaults true/false and false/false); GPT2TokenizerFast
 * and GPTNeoXTokenizerFast apply add_prefix_space (default false) to the top-level pre-tokenizer.
 * Errors (UserError naming the file and key): missing or broken files; a tokenizer class or field
 * FeatureTrace cannot reproduce; special tokens tokenizer.json lacks; more than one token around a text.
 */
export function loadTokenizer(folder: string, knownModelType?: string): ModelTokenizer {
  const file = join(folder, 'tokenizer.json')
  if (!existsSync(file)) {
    throw new UserError(
      `Missing ${file}. FeatureTrace needs the fast tokenizer file: in Python, ` + 'AutoTokenizer.from_pretrained(...).save_pretrained(folder) writes it.'
    )
  }
  const configFile = join(folder, 'tokenizer_config.json')
  const hasConfig = existsSync(configFile)
  const config = hasConfig ? readJson(configFile) : {}
  const modelConfigFile = join(folder, 'config.json')
  // Known when the caller read config.json already (CheckpointFolder): it is not read again.
  const modelType = knownModelType ?? (existsSync(modelConfigFile) ? readJson(modelConfigFile).model_type : undefined)
  const json = readJson(file)

  // Which class transformers would build, and why.
  let cls: TokenizerClass
  let clsWhy: string
  const autoMap = isObject(config.auto_map) ? config.auto_map.AutoTokenizer : undefined
  if (autoMap !== undefined) {
    throw new UserError(
      `${configFile}: auto_map.AutoTokenizer names custom tokenizer code (${JSON.stringify(autoMap)}), which transformers runs only with trust_remote_code and FeatureTrace cannot run.`
    )
  }
  if (typeof config.tokenizer_class === 'string') {
    const name = config.tokenizer_class.replace(/Fast$/, '')
    if (!(name in TOKENIZER_CLASSES)) {
      throw new UserError(
        `${configFile}: tokenizer_class "${config.tokenizer_class}" has rules FeatureTrace does not apply (it knows ${Object.keys(TOKENIZER_CLASSES)
          .map((c) => `${c}Fast`)
          .join(', ')}). ` + 'If tokenizer.json alone defines the tokenisation, set "tokenizer_class": "PreTrainedTokenizerFast".'
      )
    }
    cls = name as TokenizerClass
    clsWhy = `${configFile} names ${config.tokenizer_class}`
  } else if (typeof modelType === 'string' && modelType in CLASS_BY_MODEL_TYPE) {
    cls = CLASS_BY_MODEL_TYPE[modelType]!
    clsWhy = `${hasConfig ? `${configFile} names no tokenizer_class, so` : `there is no ${configFile}, so`} ${modelConfigFile}'s model_type "${modelType}" selects ${cls}Fast (as AutoTokenizer does)`
  } else {
    cls = 'PreTrainedTokenizer'
    clsWhy = `${hasConfig ? `${configFile} names no tokenizer_class` : `there is no ${configFile}`} and no model_type selects a class, so tokenizer.json is used as it is (PreTrainedTokenizerFast)`
  }
  const rules = TOKENIZER_CLASSES[cls]

  if (config.split_special_tokens === true) {
    throw new UserError(
      `${configFile}: split_special_tokens is true (special tokens in the text are tokenised as plain text); FeatureTrace's tokenizer library always matches them. Remove the key.`
    )
  }
  const addedTokens = Array.isArray(json.added_tokens) ? (json.added_tokens as Json[]) : []
  const singleWord = addedTokens.find((t) => t.single_word === true)
  if (singleWord) {
    throw new UserError(
      `${file}: added token ${JSON.stringify(singleWord.content)} has single_word true, which FeatureTrace's tokenizer library does not honour.`
    )
  }
  checkModel(json.model, file)
  let preTokenizer = json.pre_tokenizer
  const prefixSpace = config.add_prefix_space
  if (rules.prefixSpace === 'refused' && prefixSpace !== undefined && prefixSpace !== null) {
    throw new UserError(
      `${configFile}: add_prefix_space is ${JSON.stringify(prefixSpace)}; with it ${cls}Fast rebuilds the tokenizer from tokenizer.model (SentencePiece) instead of tokenizer.json, which FeatureTrace cannot do. ` +
        'Remove the key, or save the tokenizer again with save_pretrained so tokenizer.json holds the setting.'
    )
  }
  if (rules.prefixSpace === 'applied' && isObject(preTokenizer) && typeof preTokenizer.add_prefix_space === 'boolean') {
    const want = typeof prefixSpace === 'boolean' ? prefixSpace : false
    // transformers overwrites the top-level pre-tokenizer's add_prefix_space with the class argument.
    if (preTokenizer.add_prefix_space !== want) preTokenizer = { ...preTokenizer, add_prefix_space: want }
  }
  preTokenizer = normalisePreTokenizer(preTokenizer, file, 'pre_tokenizer')

  let tokenizer: Tokenizer
  // What the JS library runs, and so what the prefix encoder must reason about.
  const effective = { ...json, pre_tokenizer: preTokenizer ?? null, normalizer: json.normalizer ?? null, decoder: json.decoder ?? null, post_processor: null }
  try {
    // Only the tokenizer's own keys: tokenizer_config.json's remove_space, do_lowercase_and_remove_accent, …
    // are slow-tokenizer settings the JS library would apply but transformers' fast tokenizer does not.
    const jsConfig: Json = {}
    for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const c = tokenContent(config[k])
      if (c !== null) jsConfig[k] = c
    }
    tokenizer = new Tokenizer(effective, jsConfig)
  } catch (err) {
    throw new UserError(`${file} could not be loaded as a tokenizer: ${(err as Error).message}`)
  }
  const idOf = (t: string): number | undefined => tokenizer.token_to_id(t)

  // Special tokens tokenizer_config.json names must exist: transformers would add missing ones with new ids.
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
    const c = tokenContent(config[key])
    if (c !== null && idOf(c) === undefined) {
      throw new UserError(
        `${configFile}: ${key} ${JSON.stringify(c)} is not in ${file}; transformers would add it as a new token with a new id. Save the tokenizer again with save_pretrained so both files agree.`
      )
    }
  }
  for (const t of Array.isArray(config.additional_special_tokens) ? config.additional_special_tokens : []) {
    const c = tokenContent(t)
    if (c !== null && idOf(c) === undefined) {
      throw new UserError(
        `${configFile}: additional_special_tokens holds ${JSON.stringify(c)}, which is not in ${file}; transformers would add it with a new id. Save the tokenizer again with save_pretrained.`
      )
    }
  }
  if (isObject(config.added_tokens_decoder)) {
    for (const [id, entry] of Object.entries(config.added_tokens_decoder)) {
      if (!isObject(entry)) continue
      const same = addedTokens.find((t) => String(t.id) === id)
      const differs = !same
        ? 'is missing there'
        : ['content', 'lstrip', 'rstrip', 'normalized', 'single_word'].find((k) => (same[k] ?? false) !== (entry[k] ?? false))
      if (differs) {
        throw new UserError(
          `${configFile}: added_tokens_decoder["${id}"] (${JSON.stringify(entry.content)}) ${differs === 'is missing there' ? `is not among ${file}'s added_tokens` : `has ${differs} ${JSON.stringify(entry[differs])} while ${file} has ${JSON.stringify(same![differs])}`}; ` +
            'transformers would re-add it with these settings. Save the tokenizer again with save_pretrained so both files agree.'
        )
      }
    }
  }

  // Which tokens surround a text, and which file and key decided it.
  let surround: Surround
  if (rules.rebuildsPostProcessor) {
    const flag = (key: 'add_bos_token' | 'add_eos_token', dflt: boolean): { on: boolean; why: string } =>
      typeof config[key] === 'boolean'
        ? { on: config[key] as boolean, why: `${key} ${String(config[key])}` }
        : { on: dflt, why: `${key} (absent: default ${String(dflt)})` }
    const bosFlag = flag('add_bos_token', rules.addBos)
    const eosFlag = flag('add_eos_token', rules.addEos)
    const special = (key: 'bos_token' | 'eos_token', dflt: string | null, flagKey: string): number => {
      const content = key in config ? tokenContent(config[key]) : dflt
      if (content === null) throw new UserError(`${configFile}: ${flagKey} is true but ${key} is null; transformers refuses this too. Set ${key}.`)
      const id = idOf(content)
      if (id === undefined)
        throw new UserError(`${configFile}: ${flagKey} is true but ${key} ${JSON.stringify(content)} is not in ${file}. Set ${key} to the model's token.`)
      return id
    }
    surround = {
      prefix: bosFlag.on ? [special('bos_token', rules.bos, 'add_bos_token')] : [],
      suffix: eosFlag.on ? [special('eos_token', rules.eos, 'add_eos_token')] : [],
      what: `which builds the post-processor from ${hasConfig ? "tokenizer_config.json's " : ''}${bosFlag.why} and ${eosFlag.why} (tokenizer.json's post_processor is not used)`
    }
  } else {
    if (rules.refusesAddBos && config.add_bos_token === true) {
      throw new UserError(
        `${configFile}: add_bos_token is true, which transformers' ${cls}Fast refuses (only the slow ${cls} adds a BOS). Remove the key, or add the BOS to tokenizer.json's post_processor.`
      )
    }
    surround = postProcessorSurround(json.post_processor, file, idOf)
    surround.what = `which keeps tokenizer.json's post_processor: ${surround.what}`
  }
  if (surround.prefix.length > 1 || surround.suffix.length > 1) {
    throw new UserError(
      `${file}: the tokenizer puts ${surround.prefix.length} tokens before and ${surround.suffix.length} after every text; FeatureTrace supports at most one on each side.`
    )
  }
  const bos = surround.prefix[0] ?? null
  const eos = surround.suffix[0] ?? null
  const said = [
    bos === null ? 'no BOS' : `BOS ${tokenLabel(bos, tokenizer.id_to_token(bos))} in front of every sequence`,
    eos === null ? 'no EOS' : `EOS ${tokenLabel(eos, tokenizer.id_to_token(eos))} after every document`
  ].join(', ')
  const encode = (text: string): number[] => tokenizer.encode(text, { add_special_tokens: false }).ids
  return {
    encode,
    encodePrefix: prefixEncoder(effective, encode),
    bos,
    eos,
    specialTokensReason: `${said}: ${clsWhy}, ${surround.what}.`,
    tokenText: (id) => tokenizer.id_to_token(id) ?? `<${id}>`,
    file
  }
}

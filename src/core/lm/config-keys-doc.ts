// docs/config-keys.md, rendered from the tables the loader reads (config keys, weight layouts, tokenizer
// classes), so the page cannot drift from the code: tests/integration/model-config.test.ts compares them.
import { CONFIG_KEYS, MODEL_TYPES, ROPE_TYPES, type ConfigKey, type ModelSpec, type ModelType } from './model-config'
import { WEIGHT_LAYOUTS } from './model'
import { TOKENIZER_CLASSES } from './tokenizer'

const code = (s: string): string => `\`${s}\``
const cell = (s: string): string => s.replace(/\|/g, '\\|')

function defaultCell(k: ConfigKey): string {
  if ('value' in k.default) return k.default.value === null ? 'unset' : code(JSON.stringify(k.default.value))
  if ('from' in k.default) return k.default.from
  return 'required'
}

function keyRow(k: ConfigKey): string {
  const read = k.read.map(code).join(', ')
  const supports = k.kind === 'absent' ? 'refused when set' : k.supports ? cell(k.supports.describe) : 'any'
  const when = k.ropeTypes ? ` (rope_type ${k.ropeTypes.map((t) => code(t)).join(', ')})` : ''
  return `| ${code(k.name)} | ${read} | ${defaultCell(k)} | ${supports} | ${cell(k.note)}${when} |`
}

/** A spec with every optional tensor switched on or off, to list each architecture's weights. */
function sampleSpec(modelType: ModelType, biases: boolean): ModelSpec {
  return {
    modelType,
    file: 'config.json',
    vocab: 1,
    dModel: 1,
    layers: 1,
    heads: 1,
    kvHeads: 1,
    headDim: 1,
    intermediate: 1,
    eps: 0,
    activation: 'gelu',
    maxPositions: 1,
    rope: null,
    parallelResidual: true,
    attentionBias: biases,
    mlpBias: biases,
    scaleAttention: true,
    scaleByInverseLayer: false,
    resolved: {}
  }
}

function weightLines(modelType: ModelType): string[] {
  const layout = WEIGHT_LAYOUTS[modelType]
  const p = layout.prefixes[0]!
  const on = layout.plan(sampleSpec(modelType, true), p)
  const off = new Set(
    [...layout.plan(sampleSpec(modelType, false), p).global, ...layout.plan(sampleSpec(modelType, false), p).blocks.flat()].map((w) => w.name)
  )
  const name = (n: string): string => code(n.replace('.0.', '.{i}.'))
  const listed = [...on.global, ...on.blocks.flat()].map((w) => `${name(w.name)}${off.has(w.name) ? '' : ' (only with a bias setting true)'}`)
  return [
    `- Read: ${listed.join(', ')}.`,
    `- Prefix ${code(p)}, or none when the weights were saved from the base model class (${layout.prefixes.map((x) => code(x || "''")).join(' or ')}).`,
    `- LM head, kept but never used for the residual stream: ${on.head.map(code).join(', ')}.`,
    `- Buffers ignored on purpose: ${on.buffers.map((re) => code(re.source)).join(', ')}.`
  ]
}

/** The Markdown of docs/config-keys.md. */
export function renderConfigKeysPage(): string {
  const lines: string[] = [
    '# Model config keys FeatureTrace reads',
    '',
    '<!-- Rendered from src/core/lm/model-config.ts, model.ts and tokenizer.ts by src/core/lm/config-keys-doc.ts.',
    '     Do not edit: run `FT_WRITE_DOCS=1 npx vitest run tests/integration/model-config.test.ts` after changing the tables. -->',
    '',
    'FeatureTrace computes what Hugging Face transformers computes for a checkpoint, or refuses it naming the file, the',
    'key and the value. `config.json` is read only through the tables below: for each key, every place it may be written',
    "(the top level, transformers v5's `rope_parameters`, v4's `rope_scaling`, older names such as `rotary_pct`,",
    "`rotary_emb_base`, `n_embd`), the default transformers' config class gives it, and what FeatureTrace computes.",
    '',
    '- A value outside "computes" is refused by name, as is a required key that is missing.',
    '- A key written in two of its places with different values is refused: transformers versions disagree on which',
    '  one wins (v4 ignores `rope_parameters`; v5 prefers it, and for gpt_neox lets `rotary_pct` override it).',
    "- `null` reads as unset. Every other key is ignored, as transformers' modelling code for that `model_type`",
    '  ignores it (dropout rates, `initializer_range`, `use_cache`, token ids, `torch_dtype`: FeatureTrace computes in',
    '  float32 whatever the stored dtype, as `from_pretrained` does by default in transformers v4).',
    `- RoPE variants (\`rope_type\`): ${ROPE_TYPES.map(code).join(', ')}, computed as \`modeling_rope_utils.py\` does`,
    "  (YaRN's attention factor multiplies cos and sin). `dynamic` depends on the sequence length T: above",
    '  `max_position_embeddings` the base grows as transformers computes it for a freshly loaded model running that',
    '  sequence; at or below it the plain frequencies hold. Other variants (`longrope`, …) are refused by name.',
    ''
  ]
  for (const t of MODEL_TYPES) {
    lines.push(`## ${code(t)}`, '', '| key | read from (in order) | default | FeatureTrace computes | note |', '|---|---|---|---|---|')
    for (const k of CONFIG_KEYS[t]) lines.push(keyRow(k))
    lines.push('', 'Weights:', '', ...weightLines(t), '')
  }
  lines.push(
    '## Weights',
    '',
    'Every tensor in the checkpoint must be one the forward pass reads, an LM head or a known buffer: any other is',
    'refused by name (a bias with `attention_bias` false, layers beyond `num_hidden_layers`, quantized tensors, another',
    'architecture), never skipped. A tensor the forward pass needs and cannot find is refused by name, and so is one',
    "whose shape differs from what `config.json` implies. Token ids are checked against the embedding's rows before",
    'any compute.',
    '',
    '## Tokenizer',
    '',
    "`tokenizer.json` is read by `@huggingface/tokenizers`; `tokenizer_config.json`'s class decides which special tokens",
    "surround a text, as transformers' AutoTokenizer does (the class is `tokenizer_class` without `Fast`, or the",
    "`model_type`'s class when none is named). Every harvest prints this decision and the file and key that made it.",
    '',
    '| class | post-processor | add_bos_token default | add_eos_token default | BOS / EOS tokens | add_prefix_space |',
    '|---|---|---|---|---|---|'
  )
  for (const [name, r] of Object.entries(TOKENIZER_CLASSES)) {
    const bosDefault = r.rebuildsPostProcessor ? code(String(r.addBos)) : r.refusesAddBos ? 'true refused (transformers refuses it)' : '—'
    const prefixSpace =
      r.prefixSpace === 'applied'
        ? 'applied to the top-level pre-tokenizer (default false)'
        : r.prefixSpace === 'refused'
          ? 'refused (transformers rebuilds from tokenizer.model)'
          : "tokenizer.json's"
    lines.push(
      `| ${code(`${name}Fast`)} | ${r.rebuildsPostProcessor ? 'rebuilt from add_bos_token / add_eos_token' : "tokenizer.json's"} | ${bosDefault} | ` +
        `${r.rebuildsPostProcessor ? code(String(r.addEos)) : '—'} | ${r.bos === null ? '—' : cell(`${code(r.bos)} / ${code(r.eos!)}`)} | ${prefixSpace} |`
    )
  }
  lines.push(
    '',
    "Legacy `tokenizer.json` fields are read as the Rust `tokenizers` library reads them: a Metaspace pre-tokenizer's",
    '`add_prefix_space` (false: `prepend_scheme` "never"; absent scheme: "always") and `split` (absent: true, a piece',
    'starting at every "▁"); merges as strings or pairs. Refused by name: Split behaviours other than Isolated and',
    'Removed, inverted Split patterns, BPE dropout, `continuing_subword_prefix` on BPE, `single_word` added tokens,',
    '`split_special_tokens`, custom tokenizer code (`auto_map`), and special tokens or `added_tokens_decoder` entries in',
    '`tokenizer_config.json` that `tokenizer.json` lacks or defines differently (transformers would add them with new ids).',
    "`tokenizer_config.json`'s `legacy` changes nothing here: transformers uses it only when it rebuilds a tokenizer from",
    '`tokenizer.model`; `clean_up_tokenization_spaces` and `model_max_length` affect decoding and truncation, which a',
    'harvest does not use; slow-tokenizer settings (`remove_space`, `do_lower_case`, …) are not applied, as the fast',
    'tokenizer does not apply them.',
    '',
    '## Reference',
    '',
    "Each variant above is checked against an independent float64 PyTorch implementation of transformers' semantics",
    '(`tests/fixtures/make_tiny_models.py`, compared in `tests/integration/forward.test.ts` and',
    '`tests/integration/model-config.test.ts`). A comparison against transformers itself needs a machine with',
    'transformers installed and has not been recorded yet.',
    ''
  )
  return lines.join('\n')
}

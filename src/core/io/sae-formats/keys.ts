// The declared table of every configuration key, path element and tensor each SAE format's reader looks at:
// its aliases, the source library's default, and whether FeatureTrace honours it, refuses it unless it has
// its default (naming file, key and value), or knows it has no effect on the latents. The readers fetch
// keys only through this table, and docs/sae-formats.md is rendered from it (a test keeps them equal).
import { UserError } from '../../../shared/api'
import type { SaeFormat } from './common'

export type KeyHandling = 'read' | 'refused unless default' | 'no effect'

export interface SaeConfigKey {
  /** The key as written; nested keys dotted (metadata.hook_name); path elements in angle brackets. */
  key: string
  /** Older or other names the source writes, tried in order after `key`. */
  aliases: string[]
  /** The source library's default as JSON text; null when the key is required. */
  default: string | null
  handling: KeyHandling
  /** What the key means to the source library and what FeatureTrace does with it. */
  effect: string
  /** Values FeatureTrace refuses (for the test that every refusal names file, key and value). */
  refused?: unknown[]
}

export interface SaeTensorSpec {
  name: string
  aliases: string[]
  shape: string
  /** When the tensor must be present (always, or under which setting). */
  when: string
  effect: string
}

export interface SaeFormatTable {
  format: SaeFormat
  /** The configuration file (or the path, for Gemma Scope). */
  config: string
  /** The weights file. */
  weights: string
  /** The source code whose rule FeatureTrace follows. */
  follows: string
  /** How the latents are computed from a residual-stream row x. */
  rule: string
  keys: SaeConfigKey[]
  tensors: SaeTensorSpec[]
}

const NO_EFFECT = (keys: string[], effect: string): SaeConfigKey[] => keys.map((key) => ({ key, aliases: [], default: null, handling: 'no effect', effect }))

export const SAE_KEY_TABLES: Record<SaeFormat, SaeFormatTable> = {
  saelens: {
    format: 'saelens',
    config: 'cfg.json',
    weights: 'sae_weights.safetensors (+ optional sparsity.safetensors: sparsity [d_sae], log10 firing density)',
    follows:
      'SAELens 6.x sae_lens/saes/{sae,topk_sae,jumprelu_sae,standard_sae,batchtopk_sae}.py and handle_pre_6_0_config in loading/pretrained_sae_loaders.py (5.x configs)',
    rule: 'sae_in = norm(x) − b_dec·apply_b_dec_to_input; pre = sae_in·W_enc + b_enc; topk: ReLU of the k largest of pre (× ‖W_dec[i]‖ first when rescale_acts_by_decoder_norm); jumprelu: ReLU(pre)·[pre > threshold]; standard: ReLU(pre)',
    keys: [
      {
        key: 'architecture',
        aliases: [],
        default: '"standard"',
        handling: 'read',
        effect:
          "topk, jumprelu, standard: encoded by SAELens' rule. batchtopk, matryoshka_batchtopk (training checkpoints): converted as SAELens' save_inference_model does, to a JumpReLU whose every threshold is the topk_threshold buffer (decoder norms folded first when rescale_acts_by_decoder_norm). gated, transcoder, skip_transcoder, jumprelu_transcoder and any other: refused. The default applies to configs older than SAELens 6.",
        refused: ['gated', 'transcoder', 'skip_transcoder', 'jumprelu_transcoder', 'matryoshka']
      },
      { key: 'd_in', aliases: [], default: null, handling: 'read', effect: "Input width; checked against W_enc and the checkpoint's d_model." },
      { key: 'd_sae', aliases: [], default: null, handling: 'read', effect: 'Number of latents; checked against every tensor.' },
      {
        key: 'k',
        aliases: ['activation_fn_kwargs.k'],
        default: '100',
        handling: 'read',
        effect: "TopK's k (TopKSAEConfig's default 100). The alias is SAELens 5.x's."
      },
      {
        key: 'rescale_acts_by_decoder_norm',
        aliases: [],
        default: 'false',
        handling: 'read',
        effect:
          "topk and batchtopk: pre-activations are multiplied by ‖W_dec[i]‖ before the top k, and latents divided by it before decoding. FeatureTrace folds the norms in as SAELens' _fold_norm_topk does (W_enc and b_enc × ‖W_dec[i]‖, W_dec ÷ ‖W_dec[i]‖): the same latents and reconstruction. TopKTrainingSAEConfig's default is true and it always writes the key. Other architectures: SAELens ignores it."
      },
      { key: 'apply_b_dec_to_input', aliases: [], default: 'true', handling: 'read', effect: 'Subtract b_dec from the (normalised) input before the encoder.' },
      {
        key: 'normalize_activations',
        aliases: [],
        default: '"none"',
        handling: 'read',
        effect:
          "none; layer_norm: (x − mean)/(std + 1e-5), std with Bessel's correction (run_time_activation_ln_in); constant_norm_rescale: x·√d_in/‖x‖; expected_average_only_in: SAELens' load_from_disk applies no scaling (from_pretrained folds in a release's norm_scaling_factor, which a folder does not carry), nor does FeatureTrace, and says so. SAELens 5.x booleans: false = none, true = expected_average_only_in; null = none. Any other value: refused.",
        refused: ['batch_norm']
      },
      {
        key: 'reshape_activations',
        aliases: [],
        default: '"none"',
        handling: 'refused unless default',
        effect:
          '"hook_z": an SAE on attention heads\' outputs, a stream FeatureTrace does not harvest. SAELens 5.x configs default to "hook_z" when the hook name contains hook_z.',
        refused: ['hook_z']
      },
      {
        key: 'metadata.hook_name',
        aliases: ['hook_name', 'hook_point'],
        default: 'null',
        handling: 'read',
        effect:
          'The hook the SAE reads: its stream and layer (docs/sae-formats.md, Streams). Residual hooks are attached to their layer; any other stream is refused; without a hook, --layer is needed.'
      },
      {
        key: 'metadata.hook_head_index',
        aliases: ['hook_head_index', 'hook_point_head_index'],
        default: 'null',
        handling: 'refused unless default',
        effect: "One attention head's output: not a stream FeatureTrace harvests.",
        refused: [3]
      },
      {
        key: 'activation_fn',
        aliases: ['activation_fn_str'],
        default: '"relu"',
        handling: 'read',
        effect:
          'SAELens 5.x: "topk" with activation_fn_kwargs.k makes a TopK SAE, "relu" keeps the architecture\'s own rule; any other ("tanh-relu", …) is refused.',
        refused: ['tanh-relu']
      },
      {
        key: 'finetuning_scaling_factor',
        aliases: [],
        default: 'false',
        handling: 'read',
        effect:
          "With a scaling_factor tensor that is not all ones, SAELens 5.x multiplies the latents by it before decoding: FeatureTrace folds it into W_dec's rows (latents unchanged, same reconstruction). A scaling_factor of all ones is dropped, as SAELens drops it."
      },
      {
        key: 'sae_lens_version',
        aliases: ['metadata.sae_lens_version'],
        default: 'null',
        handling: 'read',
        effect: "Absent or below 6.0.0: SAELens' pre-6 renames and defaults apply (handle_pre_6_0_config)."
      },
      {
        key: 'dtype',
        aliases: [],
        default: '"float32"',
        handling: 'no effect',
        effect:
          'SAELens computes in this dtype; FeatureTrace reads F32, F16 or BF16 weights and computes in float32 (a bfloat16 SAELens run rounds differently).'
      },
      {
        key: 'featuretrace.format_version',
        aliases: [],
        default: '1',
        handling: 'read',
        effect:
          "FeatureTrace's own SAEs. 2: the weights and the SAELens keys above give the latents of raw activations (a scaling SAELens has no key for folded in: unit norm as constant_norm_rescale with W_enc/√d, b_dec·√d, W_dec·√d; constant s as none with W_enc·s, b_dec/s, W_dec/s), so SAELens encodes as FeatureTrace does. 1 (absent): written before that; input_scaling is applied to raw inputs first and normalize_activations is ignored."
      },
      {
        key: 'featuretrace.input_scaling',
        aliases: [],
        default: 'null',
        handling: 'read',
        effect:
          "FeatureTrace's own SAEs: the input scaling it was trained with (unit_norm, constant, layer_norm, none), which warm starts continue in. Format 1: applied to inputs, overriding normalize_activations."
      },
      {
        key: 'featuretrace.scaling_factor',
        aliases: [],
        default: '1',
        handling: 'read',
        effect: 'FeatureTrace\'s own SAEs: the constant of input_scaling "constant".'
      },
      {
        key: 'featuretrace.layer',
        aliases: [],
        default: 'null',
        handling: 'read',
        effect: "FeatureTrace's own SAEs: the residual-stream layer (after block L)."
      },
      { key: 'featuretrace.checkpoint_step', aliases: [], default: 'null', handling: 'read', effect: "FeatureTrace's own SAEs: the checkpoint step." },
      ...NO_EFFECT(
        [
          'device',
          'model_name',
          'hook_layer',
          'context_size',
          'dataset_path',
          'dataset_trust_remote_code',
          'prepend_bos',
          'neuronpedia_id',
          'model_from_pretrained_kwargs',
          'seqpos_slice',
          'sae_lens_training_version',
          'model_class_name',
          'exclude_special_tokens'
        ],
        'Descriptive metadata; kept in the imported cfg.json where SAELens keeps it.'
      ),
      ...NO_EFFECT(
        [
          'decoder_init_norm',
          'use_sparse_activations',
          'aux_loss_coefficient',
          'jumprelu_init_threshold',
          'jumprelu_bandwidth',
          'jumprelu_sparsity_loss_mode',
          'l0_coefficient',
          'l0_warm_up_steps',
          'pre_act_loss_coefficient',
          'jumprelu_tanh_scale',
          'l1_coefficient',
          'lp_norm',
          'l1_warm_up_steps',
          'topk_threshold_lr',
          'matryoshka_widths',
          'normalize_sae_decoder',
          'noise_scale',
          'decoder_heuristic_init',
          'init_encoder_as_decoder_transpose',
          'scale_sparsity_penalty_by_decoder_norm',
          'b_dec_init_method',
          'mse_loss_normalization',
          'decoder_orthogonal_init'
        ],
        'Training settings: they shaped the weights, not the encoding rule.'
      )
    ],
    tensors: [
      { name: 'W_enc', aliases: [], shape: '[d_in, d_sae]', when: 'always', effect: 'Encoder.' },
      { name: 'W_dec', aliases: [], shape: '[d_sae, d_in]', when: 'always', effect: 'Decoder rows (drift and geometry read them).' },
      { name: 'b_enc', aliases: [], shape: '[d_sae]', when: 'always', effect: 'Encoder bias.' },
      { name: 'b_dec', aliases: [], shape: '[d_in]', when: 'always', effect: 'Decoder bias (and input centring when apply_b_dec_to_input).' },
      {
        name: 'threshold',
        aliases: ['log_threshold'],
        shape: '[d_sae]',
        when: 'jumprelu',
        effect: 'Per-latent threshold; log_threshold (JumpReLUTrainingSAE) is exponentiated as SAELens does.'
      },
      {
        name: 'topk_threshold',
        aliases: [],
        shape: '[] (float64)',
        when: 'batchtopk, matryoshka_batchtopk',
        effect: "The global threshold that becomes every latent's JumpReLU threshold."
      },
      { name: 'scaling_factor', aliases: [], shape: '[d_sae]', when: 'optional', effect: 'finetuning_scaling_factor: folded into W_dec (all ones: dropped).' }
    ]
  },
  sparsify: {
    format: 'sparsify',
    config: '<hookpoint>/cfg.json',
    weights: '<hookpoint>/sae.safetensors',
    follows: 'EleutherAI sparsify sparsify/{config,sparse_coder,fused_encoder}.py (SparseCoderConfig; SparseCoder.encode) and trainer.py (the run folder)',
    rule: 'pre = ReLU((x − b_dec)·encoder.weightᵀ + encoder.bias); the k largest of pre',
    keys: [
      { key: 'd_in', aliases: [], default: null, handling: 'read', effect: 'Input width (sparsify writes it beside the SparseCoderConfig).' },
      {
        key: 'activation',
        aliases: [],
        default: '"topk"',
        handling: 'refused unless default',
        effect: '"groupmax" (the max of each of k groups) is refused.',
        refused: ['groupmax']
      },
      { key: 'num_latents', aliases: [], default: '0', handling: 'read', effect: 'Number of latents; 0 means expansion_factor × d_in.' },
      { key: 'expansion_factor', aliases: [], default: '32', handling: 'read', effect: 'Latents per input dimension when num_latents is 0.' },
      { key: 'k', aliases: [], default: '32', handling: 'read', effect: 'Latents kept per token.' },
      {
        key: 'transcode',
        aliases: [],
        default: 'false',
        handling: 'refused unless default',
        effect: 'A transcoder: it reads one hook without b_dec centring and predicts another; refused.',
        refused: [true]
      },
      {
        key: 'signed',
        aliases: [],
        default: 'false',
        handling: 'refused unless default',
        effect: "Signed activations (EleutherAI/sae, sparsify's predecessor): not a ReLU TopK; refused.",
        refused: [true]
      },
      {
        key: 'skip_connection',
        aliases: [],
        default: 'false',
        handling: 'read',
        effect:
          'Latents unchanged; W_skip adds x·W_skipᵀ to the reconstruction, which the imported SAELens layout cannot hold: it is not carried over, and the import says so.'
      },
      { key: 'normalize_decoder', aliases: [], default: 'true', handling: 'no effect', effect: 'Training: keeps decoder rows at unit norm.' },
      { key: 'multi_topk', aliases: [], default: 'false', handling: 'no effect', effect: 'Training loss (top 4k); inference keeps the top k.' },
      {
        key: '<hookpoint>',
        aliases: [],
        default: null,
        handling: 'read',
        effect:
          "The folder's name is the hookpoint, a module of the model's base_model: layers.N is the residual stream after block N+1; layers.N.mlp, layers.N.self_attn, … other streams, refused. embed_tokens / embed_in: layer 0."
      },
      {
        key: '<run folder>',
        aliases: [],
        default: null,
        handling: 'no effect',
        effect:
          'Beside the hookpoint folders the trainer writes config.json (TrainConfig), state.pt, rank_N_state.pt, optimizer_N.pt, lr_scheduler_N.pt (training state, never loaded) and best/<hookpoint>/ (the lowest-loss copy); --hookpoint matches the path below the step folder (layers.2, best/layers.2).'
      }
    ],
    tensors: [
      { name: 'encoder.weight', aliases: [], shape: '[num_latents, d_in]', when: 'always', effect: 'Encoder (transposed to W_enc).' },
      { name: 'encoder.bias', aliases: [], shape: '[num_latents]', when: 'always', effect: 'b_enc.' },
      { name: 'W_dec', aliases: [], shape: '[num_latents, d_in]', when: 'always', effect: 'Decoder rows.' },
      { name: 'b_dec', aliases: [], shape: '[d_in]', when: 'always', effect: 'Decoder bias and input centring.' },
      { name: 'W_skip', aliases: [], shape: '[d_in, d_in]', when: 'skip_connection', effect: 'Reconstruction only: not carried over (said at import).' }
    ]
  },
  'gemma-scope': {
    format: 'gemma-scope',
    config: 'the path: gemma-scope-<model>-<kind>/layer_L/width_W/average_l0_N/params.npz',
    weights: 'params.npz',
    follows: "SAELens' Gemma Scope loader (get_gemma_2_config_from_hf, gemma_2_sae_huggingface_loader) and JumpReLUSAE.encode",
    rule: 'pre = x·W_enc + b_enc (no b_dec on the input); ReLU(pre)·[pre > threshold]',
    keys: [
      {
        key: '<release kind>',
        aliases: [],
        default: null,
        handling: 'read',
        effect:
          "The release name's suffix is the stream: -res reads blocks.L.hook_resid_post (embedding: hook_embed); -mlp (hook_mlp_out), -att (attn.hook_z) and -transcoders are refused. Without a release name in the path the stream is unknown and --layer is needed."
      },
      {
        key: '<layer_L>',
        aliases: ['<embedding>'],
        default: null,
        handling: 'read',
        effect: 'layer_L of a -res release reads the output of block L (0-based): FeatureTrace layer L+1; embedding: layer 0.'
      },
      { key: '<width_W>, <average_l0_N>', aliases: [], default: null, handling: 'no effect', effect: 'Names the SAE among its siblings.' }
    ],
    tensors: [
      { name: 'W_enc', aliases: [], shape: '[d, n]', when: 'always', effect: 'Encoder.' },
      { name: 'W_dec', aliases: [], shape: '[n, d]', when: 'always', effect: 'Decoder rows.' },
      { name: 'b_enc', aliases: [], shape: '[n]', when: 'always', effect: 'Encoder bias; gives n.' },
      { name: 'b_dec', aliases: [], shape: '[d]', when: 'always', effect: 'Decoder bias; gives d (not subtracted from the input).' },
      { name: 'threshold', aliases: [], shape: '[n]', when: 'always', effect: 'Per-latent JumpReLU threshold.' }
    ]
  },
  'llm-jp-sae': {
    format: 'llm-jp-sae',
    config: 'config.json',
    weights: 'model.safetensors',
    follows: 'llm-jp/llm-jp-sae model.py (TopKSAE.encode), train.py and config.py (return_save_dir), as of 2025-09-17',
    rule: 'x ← x/‖x‖ (train.py and evaluation.py normalise every input); pre = ReLU((x − b_dec)·encoder.weightᵀ + encoder.bias); the k largest of pre',
    keys: [
      { key: 'd_in', aliases: [], default: '2048', handling: 'read', effect: "Input width (TopKSAEConfig's default; save_pretrained always writes it)." },
      { key: 'num_latents', aliases: [], default: '32768', handling: 'read', effect: 'Number of latents.' },
      { key: 'k', aliases: [], default: '32', handling: 'read', effect: 'Latents kept per token.' },
      { key: 'model_type', aliases: [], default: '"topk_sae"', handling: 'read', effect: 'Recognises the folder (or num_latents with d_in).' },
      ...NO_EFFECT(['architectures', 'torch_dtype', 'transformers_version'], "Written by transformers' save_pretrained."),
      {
        key: '<layerN>',
        aliases: ['<layer_N>'],
        default: null,
        handling: 'read',
        effect:
          'train.py saves into {save_dir}/{model}/layerN/n{num_latents}_k{k}/lr{lr}. Since 2025-09-17 --layer N ≥ 1 hooks model.layers[N−1]: the output of block N, FeatureTrace layer N. The versions of 2025-09-15 hooked model.layers[N] (FeatureTrace layer N+1): give --layer for SAEs trained with those; layer0 can only come from them and is read as layer 1.'
      },
      {
        key: '<model folder>',
        aliases: [],
        default: null,
        handling: 'read',
        effect: 'The model path with / replaced by _ (…_iter_0001000, …_step1000): its trailing step names the checkpoint.'
      }
    ],
    tensors: [
      { name: 'encoder.weight', aliases: [], shape: '[num_latents, d_in]', when: 'always', effect: 'Encoder (transposed to W_enc).' },
      { name: 'encoder.bias', aliases: [], shape: '[num_latents]', when: 'always', effect: 'b_enc.' },
      {
        name: 'decoder.weight',
        aliases: ['W_dec'],
        shape: '[d_in, num_latents] (W_dec: [num_latents, d_in])',
        when: 'always',
        effect: 'Decoder (nn.Linear(n, d) without bias; older versions save W_dec).'
      },
      { name: 'b_dec', aliases: [], shape: '[d_in]', when: 'always', effect: 'Decoder bias and input centring.' }
    ]
  }
}

/** The table entry of `key` in a format's table (a programming error when absent: every key read is declared). */
export function keyEntry(format: SaeFormat, key: string): SaeConfigKey {
  const entry = SAE_KEY_TABLES[format].keys.find((k) => k.key === key)
  if (!entry) throw new Error(`SAE key ${key} is not declared in the ${format} key table`)
  return entry
}

function at(cfg: Record<string, unknown>, dotted: string): unknown {
  let v: unknown = cfg
  for (const part of dotted.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
    v = (v as Record<string, unknown>)[part]
  }
  return v
}

/** A declared key's value in `cfg` (first of key and aliases present), with the name it was found under; undefined when absent. */
export function configValue(format: SaeFormat, cfg: Record<string, unknown>, key: string): { value: unknown; name: string } | undefined {
  const entry = keyEntry(format, key)
  for (const name of [entry.key, ...entry.aliases]) {
    const value = at(cfg, name)
    if (value !== undefined) return { value, name }
  }
  return undefined
}

/** The refusal of a key set to something FeatureTrace does not compute: names the file, the key and the value. */
export function keyRefusal(file: string, key: string, value: unknown, why: string): UserError {
  return new UserError(`${file}: ${key} = ${JSON.stringify(value)} ${why}`)
}

/** Top-level keys of `cfg` the format's table does not declare (worth a note: their effect is unknown). */
export function undeclaredKeys(format: SaeFormat, cfg: Record<string, unknown>): string[] {
  const known = new Set(SAE_KEY_TABLES[format].keys.flatMap((k) => [k.key, ...k.aliases].map((n) => n.split('.')[0]!)))
  return Object.keys(cfg).filter((k) => !known.has(k))
}

/** Tensors present that the format's table does not declare: refused by name, never skipped. */
export function undeclaredTensors(format: SaeFormat, names: Iterable<string>): string[] {
  const known = new Set(SAE_KEY_TABLES[format].tensors.flatMap((t) => [t.name, ...t.aliases]))
  return [...names].filter((n) => n !== '__metadata__' && !known.has(n))
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

/** The tables as Markdown, as docs/sae-formats.md holds them between its markers. */
export function renderKeyTables(): string {
  const out: string[] = []
  for (const t of Object.values(SAE_KEY_TABLES)) {
    out.push(`### ${t.format}`, '', `Config: \`${t.config}\`; weights: \`${t.weights}\`. Follows ${t.follows}.`, '', `Rule: ${t.rule}.`, '')
    out.push('| key | aliases | default | handling | effect |', '|---|---|---|---|---|')
    const effectful = t.keys.filter((k) => k.handling !== 'no effect' || k.effect.length > 0)
    const grouped = new Map<string, string[]>()
    for (const k of effectful) {
      if (k.handling === 'no effect' && k.default === null && k.aliases.length === 0) {
        grouped.set(k.effect, [...(grouped.get(k.effect) ?? []), k.key])
        continue
      }
      out.push(
        `| \`${cell(k.key)}\` | ${k.aliases.map((a) => `\`${cell(a)}\``).join(', ') || '—'} | ${k.key.startsWith('<') ? '—' : k.default === null ? 'required' : `\`${cell(k.default)}\``} | ${k.handling} | ${cell(k.effect)} |`
      )
    }
    for (const [effect, keys] of grouped) out.push(`| ${keys.map((k) => `\`${cell(k)}\``).join(', ')} | — | — | no effect | ${cell(effect)} |`)
    out.push('', '| tensor | aliases | shape | present | effect |', '|---|---|---|---|---|')
    for (const s of t.tensors)
      out.push(`| \`${s.name}\` | ${s.aliases.map((a) => `\`${a}\``).join(', ') || '—'} | ${cell(s.shape)} | ${cell(s.when)} | ${cell(s.effect)} |`)
    out.push('', 'Any other tensor is refused by name.', '')
  }
  return out.join('\n')
}

// A checkpoint's weights on disk: one safetensors file or the shards of an index, read tensor by tensor.
import * as tf from '@tensorflow/tfjs-core'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../../shared/api'
import { SafetensorsFile, type TensorInfo } from '../io/safetensors'
import { weightFiles } from '../checkpoints/discover'

/**
 * The prefixes transformers' task models put before their base model's names (base_model_prefix of
 * GPTNeoXForCausalLM, LlamaForCausalLM, GPT2LMHeadModel). Weights saved from the base class lack them;
 * transformers then adds the prefix to every name when no stored name has it, and so do we.
 */
const BASE_PREFIXES = ['gpt_neox.', 'model.', 'transformer.'] as const

/** Tensor names that tell an architecture apart, for saying what a checkpoint's weights really are. */
const SIGNATURES: [arch: string, pattern: RegExp][] = [
  ['gpt_neox', /(^|\.)embed_in\.weight$|attention\.query_key_value\./],
  ['llama', /(^|\.)embed_tokens\.weight$|self_attn\.q_proj\./],
  ['gpt2', /(^|\.)wte\.weight$|attn\.c_attn\./]
]

export class CheckpointWeights {
  /** The base-model prefixes some stored name carries: for those, names are never stripped. */
  private readonly prefixed: Set<string>

  private constructor(
    readonly folder: string,
    private readonly files: SafetensorsFile[],
    private readonly where: Map<string, SafetensorsFile>
  ) {
    this.prefixed = new Set(BASE_PREFIXES.filter((p) => [...where.keys()].some((n) => n.startsWith(p))))
  }

  static async open(folder: string): Promise<CheckpointWeights> {
    const paths = weightFiles(folder)
    if (paths.length === 0) {
      throw new UserError(
        `No model.safetensors or model.safetensors.index.json in ${folder}. FeatureTrace reads safetensors only: ` +
          'load the model in Python and call save_pretrained(folder, safe_serialization=True).'
      )
    }
    for (const p of paths) {
      if (!existsSync(p)) {
        throw new UserError(`Missing weight shard ${p} named by ${join(folder, 'model.safetensors.index.json')} (an interrupted download?). Download it again.`)
      }
    }
    const files: SafetensorsFile[] = []
    const where = new Map<string, SafetensorsFile>()
    try {
      for (const p of paths) {
        const f = await SafetensorsFile.open(p)
        files.push(f)
        for (const name of f.header.tensors.keys()) where.set(name, f)
      }
    } catch (err) {
      await Promise.all(files.map((f) => f.close()))
      throw err
    }
    return new CheckpointWeights(folder, files, where)
  }

  /** The name a tensor is stored under: `name` itself, or without its base-model prefix for base-class weights. */
  storedName(name: string): string | null {
    if (this.where.has(name)) return name
    for (const p of BASE_PREFIXES) {
      if (!name.startsWith(p)) continue
      const bare = name.slice(p.length)
      if (this.where.has(bare) && !this.prefixed.has(p)) return bare
    }
    return null
  }

  has(name: string): boolean {
    return this.storedName(name) !== null
  }

  names(): string[] {
    return [...this.where.keys()]
  }

  info(name: string): TensorInfo & { file: string } {
    const stored = this.storedName(name)
    if (stored === null) throw new UserError(this.missing(name))
    const f = this.where.get(stored)!
    return { ...f.info(stored), file: f.file }
  }

  /** Why `name` is absent: another architecture's names, fewer layers than config.json says, or what is there. */
  private missing(name: string): string {
    const names = this.names()
    const config = join(this.folder, 'config.json')
    const wanted = SIGNATURES.find(([, re]) => re.test(name))?.[0]
    const actual = SIGNATURES.find(([, re]) => names.some((n) => re.test(n)))?.[0]
    if (wanted && actual && wanted !== actual) {
      return `${this.folder} has no weight "${name}": its tensor names are those of a ${actual} model (e.g. "${names.find((n) => SIGNATURES.find(([a]) => a === actual)![1].test(n))}") but ${config} says ${wanted}. The config and the weights belong to different models.`
    }
    const layer = /(?:^|\.)(?:layers|h)\.(\d+)\./.exec(name)
    if (layer) {
      const present = new Set(names.map((n) => /(?:^|\.)(?:layers|h)\.(\d+)\./.exec(n)?.[1]).filter((x) => x !== undefined))
      if (!present.has(layer[1]!)) {
        return `${this.folder} has no weights for layer ${layer[1]} ("${name}"): the weights hold ${present.size} layers but ${config} implies more. The config and the weights belong to different models.`
      }
    }
    const sample = names.slice(0, 4).map((n) => `"${n}"`).join(', ')
    return `${this.folder} has no weight "${name}" (its ${names.length} tensors include ${sample}): the weights do not match ${config}.`
  }

  /** Reads one tensor as float32, checking its shape against what config.json implies. */
  async tensor(name: string, expected: number[]): Promise<tf.Tensor> {
    const info = this.info(name)
    if (info.shape.length !== expected.length || info.shape.some((s, i) => s !== expected[i])) {
      throw new UserError(
        `${info.file}: tensor "${name}" has shape [${info.shape.join(', ')}] but ${join(this.folder, 'config.json')} ` +
          `implies [${expected.join(', ')}]. The config and the weights belong to different models.`
      )
    }
    if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
      throw new UserError(`${info.file}: tensor "${name}" has dtype ${info.dtype}; model weights must be F32, F16 or BF16.`)
    }
    const stored = this.storedName(name)!
    const data = await this.where.get(stored)!.readFloat32(stored)
    return tf.tensor(data, expected, 'float32')
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()))
  }
}

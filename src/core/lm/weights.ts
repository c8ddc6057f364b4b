// A checkpoint's weights on disk: one safetensors file or the shards of an index, read tensor by tensor.
import * as tf from '@tensorflow/tfjs-core'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../../shared/api'
import { SafetensorsFile, type TensorInfo } from '../io/safetensors'
import { weightFiles } from '../checkpoints/discover'

/** Tensor names that tell an architecture apart, for saying what a checkpoint's weights really are. */
const SIGNATURES: [arch: string, pattern: RegExp][] = [
  ['gpt_neox', /(^|\.)embed_in\.weight$|attention\.query_key_value\./],
  ['llama', /(^|\.)embed_tokens\.weight$|self_attn\.q_proj\./],
  ['gpt2', /(^|\.)wte\.weight$|attn\.c_attn\./]
]

/**
 * Why a checkpoint lacks the weight `name` its config implies: another architecture's tensor names, fewer layers
 * than config.json says, or null when neither explains it. Used by the weight plan (model.ts) for its refusals.
 */
export function whyMissing(folder: string, names: readonly string[], name: string, config = join(folder, 'config.json')): string | null {
  const wanted = SIGNATURES.find(([, re]) => re.test(name))?.[0]
  const actual = SIGNATURES.find(([, re]) => names.some((n) => re.test(n)))?.[0]
  if (wanted && actual && wanted !== actual) {
    return `${folder} has no weight "${name}": its tensor names are those of a ${actual} model (e.g. "${names.find((n) => SIGNATURES.find(([a]) => a === actual)![1].test(n))}") but ${config} says ${wanted}. The config and the weights belong to different models.`
  }
  const layer = /(?:^|\.)(?:layers|h)\.(\d+)\./.exec(name)
  if (layer) {
    const present = new Set(names.map((n) => /(?:^|\.)(?:layers|h)\.(\d+)\./.exec(n)?.[1]).filter((x) => x !== undefined))
    if (!present.has(layer[1]!)) {
      return `${folder} has no weights for layer ${layer[1]} ("${name}"): the weights hold ${present.size} layers but ${config} implies more. The config and the weights belong to different models.`
    }
  }
  return null
}

export class CheckpointWeights {
  private constructor(
    readonly folder: string,
    private readonly files: SafetensorsFile[],
    private readonly where: Map<string, SafetensorsFile>
  ) {}

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

  /** Names are the stored ones: which prefix a checkpoint uses (base-class weights have none) is the weight plan's choice. */
  has(name: string): boolean {
    return this.where.has(name)
  }

  names(): string[] {
    return [...this.where.keys()]
  }

  /** Names of tensors with at least one element: an empty tensor holds nothing a forward pass could use or miss. */
  namesWithData(): string[] {
    return this.names().filter((n) => !this.where.get(n)!.info(n).shape.includes(0))
  }

  info(name: string): TensorInfo & { file: string } {
    const f = this.where.get(name)
    if (!f) throw new UserError(this.missing(name))
    return { ...f.info(name), file: f.file }
  }

  /** Why `name` is absent: another architecture's names, fewer layers than config.json says, or what is there. */
  private missing(name: string): string {
    const names = this.names()
    const sample = names
      .slice(0, 4)
      .map((n) => `"${n}"`)
      .join(', ')
    return (
      whyMissing(this.folder, names, name) ??
      `${this.folder} has no weight "${name}" (its ${names.length} tensors include ${sample}): the weights do not match ${join(this.folder, 'config.json')}.`
    )
  }

  /** Reads one tensor as a float32 tfjs tensor, checking its shape against what config.json implies (float32()). */
  async tensor(name: string, expected: number[]): Promise<tf.Tensor> {
    return tf.tensor(await this.float32(name, expected), expected, 'float32')
  }

  /**
   * Reads one tensor onto the host as float32 (F16, BF16 and F64 converted), row-major in `expected`, checking its
   * shape against what config.json implies. Errors: UserError naming the file, the tensor, the shapes or the dtype.
   */
  async float32(name: string, expected: number[]): Promise<Float32Array> {
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
    return this.where.get(name)!.readFloat32(name)
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()))
  }
}

// A checkpoint's weights on disk: one safetensors file or the shards of an index, read tensor by tensor.
import * as tf from '@tensorflow/tfjs-core'
import { join } from 'node:path'
import { UserError } from '../../shared/api'
import { SafetensorsFile, type TensorInfo } from '../io/safetensors'
import { weightFiles } from '../checkpoints/discover'

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

  has(name: string): boolean {
    return this.where.has(name)
  }

  names(): string[] {
    return [...this.where.keys()]
  }

  info(name: string): TensorInfo & { file: string } {
    const f = this.where.get(name)
    if (!f) {
      throw new UserError(`${this.folder} has no weight "${name}": the weights do not match config.json's model_type or layer count.`)
    }
    return { ...f.info(name), file: f.file }
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
    const data = await this.where.get(name)!.readFloat32(name)
    return tf.tensor(data, expected, 'float32')
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()))
  }
}

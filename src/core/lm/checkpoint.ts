// One checkpoint folder, read once: config.json through the key table (model-config.ts), the tokenizer and
// the weight index with its safetensors headers, each the first time it is needed, then kept. Harvest, the
// model loader and the weights all take this object, so a harvest reads config.json once, not four times.
import { join } from 'node:path'
import { UserError } from '../../shared/api'
import { readCheckpointConfig, SUPPORTED_MODEL_TYPES, type CheckpointConfig } from '../checkpoints/discover'
import { parseModelConfig, type ModelSpec, type ModelType } from './model-config'
import { loadTokenizer, type ModelTokenizer } from './tokenizer'
import { CheckpointWeights } from './weights'

export class CheckpointFolder {
  private tokenizerLoaded: ModelTokenizer | null = null
  private weightsOpening: Promise<CheckpointWeights> | null = null

  private constructor(
    readonly folder: string,
    /** config.json as discovery reads it (architecture, widths) and as it stands. */
    readonly config: CheckpointConfig,
    /** Every setting the forward pass uses, through the key table; a key it does not compute was refused. */
    readonly spec: ModelSpec
  ) {}

  /**
   * Reads config.json through the key table: a refused key stops here, before anything else is read.
   * Errors: no or broken config.json, a model_type FeatureTrace does not run, every refusal of parseModelConfig.
   */
  static open(folder: string): CheckpointFolder {
    const config = readCheckpointConfig(folder)
    const file = join(folder, 'config.json')
    if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(config.modelType)) {
      throw new UserError(
        `${file}: model_type "${config.modelType}" is not supported (FeatureTrace runs ${SUPPORTED_MODEL_TYPES.join(', ')}). ` +
          'Harvest its activations with resources/harvest_activations.py and import them.'
      )
    }
    return new CheckpointFolder(folder, config, parseModelConfig(config.modelType as ModelType, config.raw, file))
  }

  /** The tokenizer (tokenizer.json with tokenizer_config.json's rules), loaded on first use. */
  tokenizer(): ModelTokenizer {
    return (this.tokenizerLoaded ??= loadTokenizer(this.folder, this.config.modelType))
  }

  /** The weight files (model.safetensors or the index's shards) with their headers, opened on first use. */
  weights(): Promise<CheckpointWeights> {
    return (this.weightsOpening ??= CheckpointWeights.open(this.folder))
  }

  /** Closes the weight files if they were opened. */
  async close(): Promise<void> {
    const opening = this.weightsOpening
    this.weightsOpening = null
    if (!opening) return
    try {
      await (await opening).close()
    } catch (err) {
      // Opening failed: that error went to whoever asked for the weights; there is nothing to close.
      if (!(err instanceof UserError)) throw err
    }
  }
}

// Harvesting: run a checkpoint over a corpus and store the residual stream of the chosen layers.
import * as tf from '@tensorflow/tfjs-core'
import { resolve } from 'node:path'
import { UserError } from '../../shared/api'
import { ActivationStoreWriter, checkStorable, unstorableMessage, type StoreManifest, type StoreSettings } from '../io/activation-store'
import { JobCancelled, type JobContext } from '../jobs/job'
import { ProgressMeter } from '../jobs/progress'
import { OrtDenseProducts } from '../ort/engine'
import { initBackend, type BackendName } from '../tf/backend'
import { ortProducts } from '../tf/products'
import { VERSION } from '../version'
import { Corpus } from './corpus'
import { CheckpointFolder } from './checkpoint'
import { embeddingOf, loadModel } from './model'
import { buildSequences, type TokenSequence } from './sequences'
import type { ModelTokenizer } from './tokenizer'

export interface HarvestOptions {
  model: string
  corpus: string
  /** Language tag for plain-text corpora (JSON Lines carry their own). */
  corpusLang?: string
  layers: number[]
  /** Output folder for each layer's store. */
  out: (layer: number) => string
  context?: number
  maxTokens?: number
  dtype?: 'f16' | 'f32'
  seed?: number
  dropShort?: boolean
  /** For the last layer: apply the final norm, as Hugging Face's last hidden_states entry does. */
  finalNorm?: boolean
  checkpointStep?: number | null
  /** Sequences per forward pass. */
  batchSequences?: number
  shardRows?: number
  /** Bytes of activations per shard (default SHARD_BYTES). */
  shardBytes?: number
  backend?: BackendName
  /** Lines worth saying before the work starts (which special tokens go around the text, and why). */
  log?: (line: string) => void
}

export interface HarvestResult {
  backend: string
  stores: { layer: number; dir: string; rows: number; manifest: StoreManifest }[]
  tokensPerSecond: number | null
  /** The BOS / EOS decision and which file and key made it. */
  specialTokens: string
  /** What is worth telling the user about the input that did not stop the harvest. */
  notes: string[]
}

/** Consecutive sequences of equal length, so a batch needs no padding. */
export function* batchesOf(seqs: TokenSequence[], from: number, size: number): Generator<{ start: number; items: TokenSequence[] }> {
  let i = from
  while (i < seqs.length) {
    const len = seqs[i]!.ids.length
    const items: TokenSequence[] = []
    const start = i
    while (i < seqs.length && items.length < size && seqs[i]!.ids.length === len) items.push(seqs[i++]!)
    yield { start, items }
  }
}

/**
 * Every token id the harvest will feed the model, checked against the rows of its embedding before any
 * compute. Errors: UserError naming the ids, their tokens, the tokenizer file, the embedding tensor and its
 * file, the first document that has them, and the fix.
 */
async function checkTokenIds(checkpoint: CheckpointFolder, tokenizer: ModelTokenizer, seqs: TokenSequence[], docs: Pick<Corpus, 'info'>): Promise<void> {
  const { rows, tensor, file } = await embeddingOf(checkpoint)
  const beyond = new Set<number>()
  let firstDoc: number | null = null
  for (const id of [tokenizer.bos, tokenizer.eos]) if (id !== null && id >= rows) beyond.add(id)
  for (const s of seqs) {
    for (const id of s.ids) {
      if (id < rows) continue
      beyond.add(id)
      firstDoc ??= s.doc
    }
  }
  if (beyond.size === 0) return
  const ids = [...beyond].sort((a, b) => a - b)
  const doc = firstDoc === null ? null : docs.info(firstDoc)
  throw new UserError(
    `${tokenizer.file} gives token ids ${ids
      .slice(0, 8)
      .map((id) => `${id} ${JSON.stringify(tokenizer.tokenText(id))}`)
      .join(', ')}${ids.length > 8 ? ` and ${ids.length - 8} more` : ''}, ` +
      `but the embedding "${tensor}" in ${file} has ${rows} rows (ids 0–${rows - 1})${doc ? `; the first is in document ${doc.id}${doc.source ? ` (${doc.source})` : ''} of the corpus` : ''}. ` +
      'The tokenizer has tokens this checkpoint was never given: use the tokenizer the checkpoint was trained with, or resize the embedding ' +
      '(transformers: model.resize_token_embeddings(len(tokenizer))) and save the checkpoint again.'
  )
}

/** The settings that decide which windows a harvest stores. */
export type WindowOptions = Pick<HarvestOptions, 'corpus' | 'corpusLang' | 'context' | 'maxTokens' | 'seed' | 'dropShort' | 'log'>

/**
 * The windows (token sequences of `context` tokens, without the BOS the model adds) a harvest of `checkpoint` with
 * these settings stores, in the order it stores them, their token ids checked against the embedding; and the
 * tokenizer and the indexed corpus (closed: its document info stays readable). Everything that runs the model over
 * "the windows of a harvest" (harvest itself, SAE evaluation) takes them from here.
 * Errors: UserError for an unreadable corpus, no sequences, token ids beyond the embedding.
 */
export async function harvestWindows(
  checkpoint: CheckpointFolder,
  opts: WindowOptions
): Promise<{ context: number; seed: number; tokenizer: ModelTokenizer; seqs: TokenSequence[]; corpus: Corpus }> {
  const context = opts.context ?? 64
  const tokenizer = checkpoint.tokenizer()
  opts.log?.(`tokens: ${tokenizer.specialTokensReason}`)
  const corpus = Corpus.open(opts.corpus, { lang: opts.corpusLang })
  const seed = opts.seed ?? 0
  let seqs: TokenSequence[]
  try {
    seqs = buildSequences(corpus, tokenizer, { context, dropShort: opts.dropShort ?? false, seed, maxTokens: opts.maxTokens })
  } finally {
    corpus.close()
  }
  if (seqs.length === 0) throw new UserError(`${opts.corpus} gave no sequences of ${context} tokens; lower --context or turn off dropping short sequences.`)
  await checkTokenIds(checkpoint, tokenizer, seqs, corpus)
  return { context, seed, tokenizer, seqs, corpus }
}

export async function harvest(opts: HarvestOptions, ctx: JobContext): Promise<HarvestResult> {
  // The harvest reads every tensor asynchronously, so it may run on WebGPU.
  const backend = await initBackend(opts.backend, { asyncReads: true })
  // config.json is read through the key table first: a refused key stops the harvest before anything else is read.
  // The checkpoint is read once: config, tokenizer and weights are what the model and the checks use.
  const checkpoint = CheckpointFolder.open(opts.model)
  try {
    return await harvestCheckpoint(checkpoint, backend, opts, ctx)
  } finally {
    await checkpoint.close()
  }
}

async function harvestCheckpoint(
  checkpoint: CheckpointFolder,
  backend: Awaited<ReturnType<typeof initBackend>>,
  opts: HarvestOptions,
  ctx: JobContext
): Promise<HarvestResult> {
  const config = checkpoint.spec
  const layers = [...new Set(opts.layers)].sort((a, b) => a - b)
  for (const L of layers) {
    if (!Number.isInteger(L) || L < 0 || L > config.layers) {
      throw new UserError(`Layer ${L} is out of range for ${opts.model}: it has ${config.layers} layers, so layers 0–${config.layers} exist.`)
    }
  }
  const { context, seed, tokenizer, seqs, corpus } = await harvestWindows(checkpoint, opts)

  const settings = (layer: number): StoreSettings => ({
    model: resolve(opts.model),
    modelType: config.modelType,
    checkpointStep: opts.checkpointStep ?? null,
    layer,
    finalNorm: Boolean(opts.finalNorm) && layer === config.layers,
    d: config.dModel,
    dtype: opts.dtype ?? 'f16',
    context,
    bos: tokenizer.bos !== null,
    seed,
    corpus: resolve(opts.corpus),
    maxTokens: opts.maxTokens ?? null,
    dropShort: opts.dropShort ?? false,
    createdBy: `FeatureTrace ${VERSION}`
  })
  const stores: HarvestResult['stores'] = []
  const writers: { layer: number; w: ActivationStoreWriter }[] = []
  for (const L of layers) {
    const begun = ActivationStoreWriter.begin(opts.out(L), settings(L), opts.shardRows, opts.shardBytes)
    if ('complete' in begun) stores.push({ layer: L, dir: opts.out(L), rows: begun.manifest.rows, manifest: begun.manifest })
    else writers.push({ layer: L, w: begun })
  }
  if (writers.length === 0) return { backend: backend.name, stores, tokensPerSecond: null, specialTokens: tokenizer.specialTokensReason, notes: corpus.notes }

  // Every layer's store resumes from the earliest point any of them reached.
  const from = Math.min(...writers.map((x) => x.w.sequencesDone))
  const total = seqs.reduce((s, q) => s + q.ids.length, 0)
  let done = seqs.slice(0, from).reduce((s, q) => s + q.ids.length, 0)
  const meter = new ProgressMeter(total, 'tok')
  const started = performance.now()
  let computed = 0
  // Under `ort` the projections run on onnxruntime (every core) and the rest of the forward pass on tfjs beside it.
  const forwardOn = backend.name === 'ort' ? `${backend.name}: projections on onnxruntime, the rest on tfjs ${backend.tfjs}` : backend.name
  ctx.progress(meter.update(done, `loading ${config.modelType} (${forwardOn})`))
  let model: Awaited<ReturnType<typeof loadModel>>
  try {
    // Under `ort` every projection runs on onnxruntime: held on the host only, out of tfjs-wasm's heap.
    model = await loadModel(checkpoint, Math.max(...layers), { projections: backend.name === 'ort' ? 'host' : 'tfjs' })
  } catch (err) {
    // A checkpoint that cannot be loaded leaves no empty DIR.partial behind.
    for (const { w } of writers) w.abandonIfEmpty()
    throw err
  }
  const dtype = opts.dtype ?? 'f16'
  const which = opts.checkpointStep != null ? `checkpoint step ${opts.checkpointStep} (${opts.model})` : opts.model
  // Set when values cannot be stored in the chosen dtype: then no partial store is kept to resume.
  let refused = false
  // A harvest job is the only tfjs work in its process, so the forward pass may await onnxruntime between products.
  const ort = backend.name === 'ort' ? new OrtDenseProducts() : null
  const products = ort ? ortProducts(ort) : null
  try {
    const bos = tokenizer.bos
    for (const batch of batchesOf(seqs, from, opts.batchSequences ?? 16)) {
      if (ctx.signal.aborted) break
      const T = batch.items[0]!.ids.length + (bos === null ? 0 : 1)
      const ids = new Int32Array(batch.items.length * T)
      batch.items.forEach((s, b) => {
        const row = bos === null ? s.ids : [bos, ...s.ids]
        ids.set(row, b * T)
      })
      const idTensor = tf.tensor2d(ids, [batch.items.length, T], 'int32')
      const wanted = writers.map((x) => x.layer)
      let states: tf.Tensor3D[]
      try {
        states = products
          ? await model.hiddenStatesAsync(idTensor, wanted, products, { finalNorm: opts.finalNorm })
          : model.hiddenStates(idTensor, wanted, { finalNorm: opts.finalNorm })
      } finally {
        idTensor.dispose()
      }
      const offset = bos === null ? 0 : 1
      const n = batch.items.reduce((a, s) => a + s.ids.length, 0)
      for (const [k, { layer, w }] of writers.entries()) {
        // The BOS position is dropped: it carries no information about the text.
        const sliced = tf.tidy(() => tf.slice(states[k]!, [0, offset, 0], [-1, T - offset, -1]))
        const data = (await sliced.data()) as Float32Array
        sliced.dispose()
        const check = checkStorable(data, dtype)
        if (check.overflow || check.nonFinite) {
          refused = true
          tf.dispose(states)
          const where = `Harvest stopped at layer ${layer} of ${which}, tokens ${(done + 1).toLocaleString('en')}–${(done + n).toLocaleString('en')} of ${total.toLocaleString('en')}`
          throw new UserError(unstorableMessage(where, check, dtype))
        }
        const perSeq = (T - offset) * config.dModel
        for (const [b, s] of batch.items.entries()) {
          if (batch.start + b < w.sequencesDone) continue
          await w.appendSequence(
            data.subarray(b * perSeq, (b + 1) * perSeq),
            s.doc,
            s.ids.map((_, i) => s.start + i),
            s.ids
          )
        }
      }
      tf.dispose(states)
      done += n
      computed += n
      ctx.progress(meter.update(done, `${done.toLocaleString('en')} / ${total.toLocaleString('en')} tokens`))
    }
  } finally {
    model.dispose()
    await ort?.release()
    // Keep what was computed so a later run resumes after it, unless the run was refused.
    for (const { w } of writers) {
      if (refused) w.abandon()
      else await w.flush()
    }
  }
  if (ctx.signal.aborted) throw new JobCancelled()
  const documents = [...new Set(seqs.map((q) => q.doc))].sort((a, b) => a - b).map((id) => corpus.info(id))
  for (const { layer, w } of writers) {
    const manifest = await w.finish(documents, tokenizer.tokenText)
    stores.push({ layer, dir: w.dir, rows: manifest.rows, manifest })
  }
  const seconds = (performance.now() - started) / 1000
  return {
    backend: backend.name,
    stores: stores.sort((a, b) => a.layer - b.layer),
    tokensPerSecond: computed / seconds,
    specialTokens: tokenizer.specialTokensReason,
    notes: corpus.notes
  }
}

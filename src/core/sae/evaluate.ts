// SAE evaluation by splicing: how much of a checkpoint's next-token loss survives when its SAE's reconstruction
// replaces the residual stream after block L (SAELens' evals.py "ce_loss_score" / loss recovered; Gao et al. 2024's
// downstream loss). Runs the one model (lm/model.ts, its logits() hook) over exactly the windows a harvest with the
// same settings stores (lm/harvest.ts, harvestWindows), with the one Sae and its own encoding rule.
import * as tf from '@tensorflow/tfjs-core'
import { resolve } from 'node:path'
import { UserError } from '../../shared/api'
import { JobCancelled, type JobContext } from '../jobs/job'
import { ProgressMeter } from '../jobs/progress'
import { CheckpointFolder } from '../lm/checkpoint'
import { batchesOf, harvestWindows, type WindowOptions } from '../lm/harvest'
import { loadModel, type Splice } from '../lm/model'
import { OrtDenseProducts } from '../ort/engine'
import { initBackend, type BackendName } from '../tf/backend'
import { ortProducts } from '../tf/products'
import { Sae } from './sae'

export interface EvaluateOptions extends WindowOptions {
  /** The checkpoint folder (Hugging Face layout). */
  model: string
  /** The SAE folder (SAELens layout: FeatureTrace's own, or an imported one). */
  sae: string
  /** The residual stream after block L is replaced (0 = the embeddings). */
  layer: number
  /** Sequences per forward pass (default: as many as keep a batch's logits under 2^23 values, at most 16). */
  batchSequences?: number
  backend?: BackendName
}

/** What `featuretrace evaluate` writes: the contract's keys (snake_case, as SAELens' eval outputs) and context. */
export interface SaeEvaluationReport {
  /** Mean next-token cross-entropy (nats) of the unchanged model over the predictions. */
  ce_clean: number
  /** The same with the stored positions of the stream after block L replaced by the SAE's reconstruction. */
  ce_spliced: number
  /** The same with those positions replaced by zeros (zero ablation). */
  ce_zero: number
  /** (ce_zero − ce_spliced) / (ce_zero − ce_clean); null when zeroing the stream does not change the loss. */
  loss_recovered: number | null
  /** KL(clean ‖ spliced) of the next-token distributions (nats), averaged over the predictions. */
  kl: number
  /** Σ‖x − x̂‖² / Σ‖x − mean(x)‖² over every stored position, raw (unscaled) residual stream. */
  fvu: number
  /** 1 − fvu. */
  explained_variance: number
  /** Mean number of active latents per stored position. */
  l0: number
  /** Predictions: each stored token of a window but its last, predicting the next stored token. */
  tokens: number
  /** Stored positions (the windows' tokens; a BOS the model adds is not one). */
  positions: number
  windows: number
  layer: number
  model: string
  sae: string
  corpus: string
  context: number
  max_tokens: number | null
  seed: number
  /** Whether the model's BOS was put in front of each window (kept clean). */
  bos: boolean
  /** The SAE's encoding rule: topk, jumprelu or standard, and its input scaling. */
  architecture: string
  input_scaling: string
  backend: string
  seconds: number
}

/** Running mean and sum of squared deviations per dimension (Chan et al.'s pairwise merge), in float64. */
class Moments {
  count = 0
  readonly mean: Float64Array
  readonly m2: Float64Array
  constructor(readonly d: number) {
    this.mean = new Float64Array(d)
    this.m2 = new Float64Array(d)
  }
  /** Adds rows [rows, d] (row-major). */
  add(x: Float32Array, rows: number): void {
    const { d } = this
    const bm = new Float64Array(d)
    for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) bm[j]! += x[r * d + j]!
    for (let j = 0; j < d; j++) bm[j]! /= rows
    const bm2 = new Float64Array(d)
    for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) bm2[j]! += (x[r * d + j]! - bm[j]!) ** 2
    const n = this.count + rows
    for (let j = 0; j < d; j++) {
      const delta = bm[j]! - this.mean[j]!
      this.mean[j]! += (delta * rows) / n
      this.m2[j]! += bm2[j]! + (delta * delta * this.count * rows) / n
    }
    this.count = n
  }
  /** Σ‖x − mean(x)‖² over every row added. */
  get total(): number {
    return this.m2.reduce((a, b) => a + b, 0)
  }
}

/** The layer an SAE's cfg.json says it reads (featuretrace.layer, or a TransformerLens residual hook), if it says. */
function saeLayer(sae: Sae): number | null {
  if (typeof sae.featuretrace.layer === 'number') return sae.featuretrace.layer
  const hook = sae.hook ?? ''
  if (hook === 'blocks.0.hook_resid_pre') return 0
  const m = /^blocks\.(\d+)\.hook_resid_post$/.exec(hook)
  return m ? Number(m[1]) + 1 : null
}

/**
 * Evaluates an SAE by splicing it into its checkpoint's forward pass. Windows: exactly those `harvest` with the same
 * corpus, context, max-tokens, seed and drop-short stores (harvestWindows); a BOS the model adds goes in front and is
 * never replaced. Each stored position but a window's last predicts the window's next stored token; three forward
 * passes per batch (clean; the stream after block L at the stored positions replaced by the SAE's reconstruction, the
 * input scaling applied and undone (Sae.reconstruct); replaced by zeros) give the mean cross-entropies, loss recovered
 * = (CE_zero − CE_spliced) / (CE_zero − CE_clean) and KL(clean ‖ spliced) averaged over the predictions (as SAELens'
 * evals.py, which also keeps BOS clean); FVU and explained variance are over every stored position, pooled, with the
 * variance about the mean. Sums run in float64 on the host; the model computes in float32.
 * Errors (UserError): the layer out of range, an SAE whose d_in is not the model's d_model or whose cfg.json names
 * another layer, and every error of harvestWindows, Sae.load and loadModel (a missing LM head among them).
 * Cancelled through ctx.signal (JobCancelled).
 */
export async function evaluateSae(opts: EvaluateOptions, ctx: JobContext): Promise<SaeEvaluationReport> {
  const backend = await initBackend(opts.backend)
  const started = performance.now()
  const checkpoint = CheckpointFolder.open(opts.model)
  try {
    const spec = checkpoint.spec
    const L = opts.layer
    if (!Number.isInteger(L) || L < 0 || L > spec.layers) {
      throw new UserError(`Layer ${L} is out of range for ${opts.model}: it has ${spec.layers} layers, so layers 0–${spec.layers} exist.`)
    }
    const sae = await Sae.load(opts.sae)
    if (sae.d !== spec.dModel) {
      throw new UserError(
        `${opts.sae}: the SAE reads d_in = ${sae.d} values per token but ${spec.file} gives d_model = ${spec.dModel}: it belongs to another model.`
      )
    }
    const own = saeLayer(sae)
    if (own !== null && own !== L) {
      throw new UserError(
        `${opts.sae}/cfg.json says the SAE reads the residual stream after block ${own}, not ${L}: evaluate it at --layer ${own} (a reconstruction spliced elsewhere measures nothing).`
      )
    }
    const { context, seed, tokenizer, seqs } = await harvestWindows(checkpoint, opts)
    const total = seqs.reduce((s, q) => s + q.ids.length, 0)
    const meter = new ProgressMeter(total, 'tok')
    ctx.progress(meter.update(0, `loading ${spec.modelType} with its LM head (${backend.name})`))
    // Under `ort` the projections and the LM head run on onnxruntime (every core), so they are held on the host only
    // (loadModel's projections: 'host'), out of tfjs-wasm's heap; an evaluation job is the only tfjs work in its
    // process, so the forward pass may await onnxruntime between products.
    const model = await loadModel(checkpoint, spec.layers, { head: true, projections: backend.name === 'ort' ? 'host' : 'tfjs' })
    const ort = backend.name === 'ort' ? new OrtDenseProducts() : null
    const products = ort ? ortProducts(ort) : null
    const logitsOf = async (ids: tf.Tensor2D, splice?: Splice): Promise<tf.Tensor3D> =>
      products ? model.logitsAsync(ids, products, splice) : model.logits(ids, splice)
    const bos = tokenizer.bos
    const off = bos === null ? 0 : 1
    const V = spec.vocab
    const d = spec.dModel
    const perBatch = opts.batchSequences ?? Math.max(1, Math.min(16, Math.floor(2 ** 23 / ((context + off) * V))))
    let ceClean = 0
    let ceSpliced = 0
    let ceZero = 0
    let kl = 0
    let predictions = 0
    let sse = 0
    let active = 0
    const moments = new Moments(d)
    let done = 0
    try {
      void sae.params // the SAE's tensors are made once, outside any tidy
      for (const batch of batchesOf(seqs, 0, perBatch)) {
        if (ctx.signal.aborted) throw new JobCancelled()
        const b = batch.items.length
        const len = batch.items[0]!.ids.length
        const T = len + off
        const ids = new Int32Array(b * T)
        batch.items.forEach((s, i) => ids.set(bos === null ? s.ids : [bos, ...s.ids], i * T))
        const idTensor = tf.tensor2d(ids, [b, T], 'int32')
        // Predictions: stored position i (0 … len − 2) predicts stored token i + 1; flat indices into [b·(len − 1), V].
        const P = b * (len - 1)
        const flat = new Int32Array(P)
        batch.items.forEach((s, i) => {
          for (let t = 0; t < len - 1; t++) flat[i * (len - 1) + t] = (i * (len - 1) + t) * V + s.ids[t + 1]!
        })
        const targets = tf.tensor1d(flat, 'int32')
        /** Log-probabilities at the predicting positions, [b·(len − 1), V]. */
        const predicting = (logits: tf.Tensor3D): tf.Tensor2D =>
          tf.tidy(() => tf.reshape(tf.logSoftmax(tf.slice(logits, [0, off, 0], [-1, len - 1, -1])), [P, V]))
        const crossEntropy = (lp: tf.Tensor2D): number => {
          if (P === 0) return 0
          const s = tf.tidy(() => tf.neg(tf.gather(tf.reshape(lp, [-1]), targets)))
          const v = s.dataSync()
          s.dispose()
          let sum = 0
          for (const x of v) sum += x
          return sum
        }
        /** Replaces the stored positions of the stream [b, T, d] by fn's rows (BOS kept). */
        const replacing =
          (fn: (x: tf.Tensor2D) => tf.Tensor2D) =>
          (stream: tf.Tensor3D): tf.Tensor3D => {
            const x = tf.tidy((): tf.Tensor2D => tf.reshape(tf.slice(stream, [0, off, 0], [-1, -1, -1]), [b * len, d]))
            const y = fn(x)
            x.dispose()
            const out = tf.tidy(() => {
              const stored = tf.reshape(y, [b, len, d])
              return off === 0 ? tf.clone(stored) : tf.concat([tf.slice(stream, [0, 0, 0], [-1, off, -1]), stored], 1)
            })
            y.dispose()
            return out as tf.Tensor3D
          }

        // Not inside a tidy: the model caches its causal mask and rotary tables on the first batch of each length.
        const cleanLogits = await logitsOf(idTensor)
        const clean = predicting(cleanLogits)
        cleanLogits.dispose()
        ceClean += crossEntropy(clean)
        const splicedLogits = await logitsOf(idTensor, {
          layer: L,
          replace: replacing((x) => {
            const { xhat, active: a } = sae.reconstruct(x)
            const [xs, xh] = [x.dataSync() as Float32Array, xhat.dataSync() as Float32Array]
            for (let i = 0; i < xs.length; i++) sse += (xs[i]! - xh[i]!) ** 2
            moments.add(xs, b * len)
            active += a
            return xhat
          })
        })
        const spliced = predicting(splicedLogits)
        splicedLogits.dispose()
        ceSpliced += crossEntropy(spliced)
        if (P > 0) {
          const k = tf.tidy(() => tf.sum(tf.mul(tf.exp(clean), tf.sub(clean, spliced))))
          kl += k.dataSync()[0]!
          k.dispose()
        }
        spliced.dispose()
        const zeroLogits = await logitsOf(idTensor, { layer: L, replace: replacing((x) => tf.zerosLike(x) as tf.Tensor2D) })
        const zero = predicting(zeroLogits)
        zeroLogits.dispose()
        ceZero += crossEntropy(zero)
        tf.dispose([zero, clean, targets, idTensor])
        predictions += P
        done += b * len
        ctx.progress(meter.update(done, `${done.toLocaleString('en')} / ${total.toLocaleString('en')} tokens, three passes each`))
      }
    } finally {
      model.dispose()
      sae.dispose()
      await ort?.release()
    }
    if (predictions === 0) throw new UserError(`${opts.corpus} gave windows of one token only: there is nothing to predict. Raise --context or --max-tokens.`)
    const sst = moments.total
    const fvu = sst > 0 ? sse / sst : 0
    const c = { clean: ceClean / predictions, spliced: ceSpliced / predictions, zero: ceZero / predictions }
    return {
      ce_clean: c.clean,
      ce_spliced: c.spliced,
      ce_zero: c.zero,
      loss_recovered: c.zero !== c.clean ? (c.zero - c.spliced) / (c.zero - c.clean) : null,
      kl: kl / predictions,
      fvu,
      explained_variance: 1 - fvu,
      l0: active / total,
      tokens: predictions,
      positions: total,
      windows: seqs.length,
      layer: L,
      model: resolve(opts.model),
      sae: resolve(opts.sae),
      corpus: resolve(opts.corpus),
      context,
      max_tokens: opts.maxTokens ?? null,
      seed,
      bos: bos !== null,
      architecture: sae.rule.architecture,
      input_scaling: sae.rule.scaling.kind,
      backend: backend.name,
      seconds: (performance.now() - started) / 1000
    }
  } finally {
    await checkpoint.close()
  }
}

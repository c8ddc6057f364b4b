// Training one TopK SAE: initialise (or warm-start), stream batches, step, log, checkpoint, evaluate, save.
// Output is written under OUT.partial (with the resumable training state) and renamed to OUT when done.
import * as tf from '@tensorflow/tfjs-core'
import { appendFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { freemem, totalmem } from 'node:os'
import { resolve } from 'node:path'
import { UserError } from '../../shared/api'
import { JobCancelled, type JobContext } from '../jobs/job'
import { ProgressMeter } from '../jobs/progress'
import { Rng } from '../random'
import { initBackend, onDevice, WASM_HEAP_BYTES, type BackendChoice, type BackendName } from '../tf/backend'
import { resolveConfig, type InputScaling, type PresetName, type TrainConfig, type TrainOverrides } from './config'
import { modelNameOf } from '../checkpoints/model-name'
import { openRowSource, TrainingRows, type StreamPosition } from './data'
import { isCompleteSae, Sae, type FeatureTraceMeta } from './sae'
import { loadState, removeState, saveState } from './train-state'
import { evaluate, type EvalMetrics } from './metrics'
import { constantFactor, geometricMedian, isTrainingScaling, mean, scaleInputs, type Scaling } from './scaling'
import { gradientsFor, optimizerFor } from './sparse-host'
import { disposeParams, PARAM_NAMES, removeParallel, unitRows, type SaeTensors } from './topk'

export interface TrainMetric {
  step: number
  tokens: number
  loss: number
  auxLoss: number
  l0: number
  deadFraction: number
  lr: number
  tokensPerSecond: number | null
}

export interface TrainOptions {
  activations: string
  out: string
  preset: PresetName
  overrides?: TrainOverrides
  /** Warm start: every parameter (b_dec included) from this SAE folder. */
  init?: string
  backend?: BackendName
  /** What the activations do not say (a plain activation file says none of it); a store's manifest gives the rest. */
  meta?: { checkpointStep?: number | null; layer?: number | null; modelName?: string | null; hookName?: string | null; contextSize?: number }
  onMetric?: (m: TrainMetric) => void
}

export interface TrainResult {
  dir: string
  config: TrainConfig
  steps: number
  tokens: number
  eval: EvalMetrics
  backend: BackendChoice
  resumed: boolean
}

const INIT_SAMPLE_ROWS = 8192
/** Training metrics, one JSON object a line, kept beside the SAE. */
export const TRAINING_LOG = 'training_log.jsonl'

/** Bytes a training step needs, roughly: parameters with Adam moments, plus the batch's [B, n] work. */
export function estimateBytes(d: number, n: number, k: number, batch: number, auxK: number, backend: BackendName): number {
  // On a device backend Adam's two moments and its temporaries live beside the parameters; elsewhere on the host.
  const params = 4 * (2 * d * n + n + d) * (onDevice(backend) ? 5 : 1)
  const grads = 4 * (2 * d * n + n + d) * 2
  const batchWork = 4 * batch * n * (auxK > 0 ? 4 : 3) + 4 * batch * (k + auxK) * d * 4
  return params + grads + batchWork
}

const WASM_HEAP = WASM_HEAP_BYTES

function memoryLimit(backend: BackendName): number {
  if (backend === 'wasm') return WASM_HEAP
  return Math.min(0.8 * totalmem(), freemem() + 0.25 * totalmem())
}

/** Under `ort` the [B, n] work lives in onnxruntime; tfjs-wasm's heap holds the parameters and their gradients. */
function wasmHeapBytes(d: number, n: number): number {
  return 4 * (2 * d * n + n + d) * 3
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`
}

/** Reads a scalar tensor and frees it. */
async function scalarOf(t: tf.Tensor): Promise<number> {
  const v = (await t.data())[0]!
  t.dispose()
  return v
}

/** Share of latents that have not fired for `window` tokens. */
function deadShare(since: tf.Tensor, window: number): Promise<number> {
  return scalarOf(tf.tidy(() => tf.mean(tf.cast(tf.greaterEqual(since, window), 'float32'))))
}

function configKey(cfg: TrainConfig, activations: string, init: string | null): string {
  return JSON.stringify({ ...cfg, logEvery: undefined, checkpointEvery: undefined, activations, init })
}

export async function trainSae(opts: TrainOptions, ctx: JobContext): Promise<TrainResult> {
  // Training reads every tensor asynchronously, so it may run on WebGPU.
  const backend = await initBackend(opts.backend, { asyncReads: true })
  const source = await openRowSource(resolve(opts.activations))
  const d = source.d
  const initSae = opts.init ? await Sae.load(resolve(opts.init)) : null
  if (initSae && initSae.d !== d) {
    throw new UserError(`--init ${opts.init} was trained on d=${initSae.d} activations but ${opts.activations} has d=${d}.`)
  }
  if (initSae && (initSae.rule.architecture !== 'topk' || !initSae.rule.applyBDecToInput || !isTrainingScaling(initSae.trainedScaling.kind))) {
    throw new UserError(
      `--init ${opts.init} encodes by a rule FeatureTrace does not train (${initSae.rule.architecture}, input scaling ${initSae.trainedScaling.kind}); warm-start from a TopK SAE that subtracts b_dec from its input.`
    )
  }
  if (initSae && opts.overrides?.n !== undefined && opts.overrides.n !== initSae.n) {
    throw new UserError(`--init ${opts.init} has ${initSae.n} latents; --latents ${opts.overrides.n} cannot warm-start from it.`)
  }
  // A warm start continues in the space its SAE was trained in (saved SAEs hold the scaling folded in).
  const warm = initSae?.trainingForm() ?? null
  const cfg = resolveConfig(opts.preset, d, { ...(warm ? { n: warm.n, inputScaling: warm.scaling.kind as InputScaling } : {}), ...opts.overrides })
  const need = estimateBytes(d, cfg.n, cfg.k, cfg.batchSize, cfg.auxK, backend.name)
  if (need > memoryLimit(backend.name)) {
    const fit = Math.max(1, Math.floor(cfg.batchSize * (memoryLimit(backend.name) / need) * 0.8))
    throw new UserError(
      `Batch ${cfg.batchSize} with n = ${cfg.n} latents needs about ${gib(need)}, more than the ${gib(memoryLimit(backend.name))} ` +
        `the ${backend.name} backend can use here. Lower --batch (about ${2 ** Math.floor(Math.log2(fit))} fits) or the number of latents.`
    )
  }

  if (backend.name === 'ort' && backend.tfjs === 'wasm' && wasmHeapBytes(d, cfg.n) > WASM_HEAP) {
    throw new UserError(
      `n = ${cfg.n} latents at d = ${d} need about ${gib(wasmHeapBytes(d, cfg.n))} of parameters and gradients, more than tfjs-wasm's ${gib(WASM_HEAP)} heap beside onnxruntime. Lower the number of latents.`
    )
  }

  const out = resolve(opts.out)
  if (isCompleteSae(out)) throw new UserError(`${out} already holds an SAE; remove it or choose another output folder.`)
  if (existsSync(out) && readdirSync(out).length > 0) throw new UserError(`${out} exists and is not empty; choose an empty or new output folder.`)
  const partial = `${out}.partial`
  try {
    mkdirSync(partial, { recursive: true })
    writeFileSync(`${partial}/.write-test`, '')
    rmSync(`${partial}/.write-test`)
  } catch (err) {
    throw new UserError(`Cannot write the SAE to ${out}: ${(err as Error).message}. Choose a writable output folder.`)
  }

  ctx.progress({ fraction: 0, rate: null, rateUnit: null, etaSeconds: null, message: `engine ${backend.name}: ${backend.reason}` })
  const rows = await TrainingRows.create(source, cfg.evalRows, cfg.seed)
  const key = configKey(cfg, resolve(opts.activations), initSae?.dir ?? null)
  const saved = await loadState(partial)
  const resumed = saved !== null && saved.state.configKey === key

  let scaling: Scaling
  let step = 0
  let tokens = 0
  let position: StreamPosition = { epoch: 0, row: 0 }
  let params: SaeTensors
  let since: tf.Tensor1D
  let counts: tf.Tensor1D
  const variable = (data: Float32Array | Float64Array, shape: number[]): tf.Variable => tf.variable(tf.tensor(Float32Array.from(data), shape))

  if (resumed) {
    const { state, tensors } = saved
    scaling = state.scaling
    step = state.step
    tokens = state.tokens
    position = state.position
    params = {
      Wenc: variable(tensors.Wenc!, [d, cfg.n]),
      benc: variable(tensors.benc!, [cfg.n]),
      Wdec: variable(tensors.Wdec!, [cfg.n, d]),
      bdec: variable(tensors.bdec!, [d])
    }
    since = tf.tensor1d(tensors.tokens_since_fired!)
    counts = tf.tensor1d(tensors.fire_counts!)
  } else if (warm) {
    scaling = warm.scaling
    params = warm.variables()
    since = tf.zeros([cfg.n])
    counts = tf.zeros([cfg.n])
  } else {
    ctx.progress({ fraction: 0, rate: null, rateUnit: null, etaSeconds: null, message: `initialising (${cfg.bDecInit} b_dec)` })
    const sample = await rows.sample(INIT_SAMPLE_ROWS)
    scaling = { kind: cfg.inputScaling, factor: cfg.inputScaling === 'constant' ? constantFactor(sample, d) : 1 }
    const scaled = tf.tidy(() => scaleInputs(tf.tensor2d(sample, [sample.length / d, d]), scaling))
    const scaledData = (await scaled.data()) as Float32Array
    scaled.dispose()
    const bdec = cfg.bDecInit === 'geometric_median' ? geometricMedian(scaledData, d) : cfg.bDecInit === 'mean' ? mean(scaledData, d) : new Float64Array(d)
    // Our own generator, not tf.randomNormal: tfjs treats seed 0 as "unseeded", and runs must repeat exactly.
    const rng = new Rng(cfg.seed)
    const gaussian = new Float32Array(cfg.n * d)
    for (let i = 0; i < gaussian.length; i++) gaussian[i] = rng.gaussian()
    const Wdec = tf.tidy(() => unitRows(tf.tensor2d(gaussian, [cfg.n, d])))
    params = { Wenc: tf.variable(tf.transpose(Wdec)), benc: tf.variable(tf.zeros([cfg.n])), Wdec: tf.variable(Wdec), bdec: variable(bdec, [d]) }
    Wdec.dispose()
    since = tf.zeros([cfg.n])
    counts = tf.zeros([cfg.n])
  }
  if (!resumed) {
    removeState(partial)
    rmSync(`${partial}/${TRAINING_LOG}`, { force: true })
  }

  // sparse-host.ts keys its all-on-device step and Adam on 'tensorflow'; WebGPU takes the same path.
  const placement = onDevice(backend.name) ? 'tensorflow' : backend.name
  const adam = optimizerFor(placement, params, cfg)
  if (resumed) {
    for (const name of PARAM_NAMES) adam.importMoments(name, saved.tensors[`adam_m.${name}`]!, saved.tensors[`adam_v.${name}`]!)
  }
  // Sparse parts on the host for wasm/cpu (measured faster there), all in tfjs on a device backend.
  const gradients = gradientsFor(placement)
  const totalTokens = cfg.tokens ?? rows.trainingRows
  const totalSteps = Math.max(1, Math.ceil(totalTokens / cfg.batchSize))
  const meter = new ProgressMeter(totalSteps * cfg.batchSize, 'tok')
  const started = performance.now()
  const startTokens = tokens
  const persist = (): Promise<void> =>
    saveState(partial, params, adam, since, counts, { step, tokens, position, scaling, configKey: key, warmStartedFrom: initSae?.dir ?? null })

  try {
    const stream = rows.batches(cfg.batchSize, position)
    while (step < totalSteps) {
      if (ctx.signal.aborted) {
        await persist()
        throw new JobCancelled()
      }
      const next = await stream.next()
      const { x, next: after } = next.value!
      const lr = cfg.lr * (cfg.warmupSteps > 0 ? Math.min(1, (step + 1) / cfg.warmupSteps) : 1)
      const dead = cfg.auxK > 0 ? (tf.tidy(() => tf.cast(tf.greaterEqual(since, cfg.deadAfterTokens), 'float32')) as tf.Tensor1D) : null
      const deadCount = dead ? await scalarOf(tf.sum(dead)) : 0
      const batch = tf.tidy(() => scaleInputs(tf.tensor2d(x, [cfg.batchSize, d]), scaling))
      const r = await gradients(params, batch, cfg, dead, deadCount)
      batch.dispose()
      dead?.dispose()
      if (cfg.removeParallelGrad) {
        const g = removeParallel(r.grads.Wdec, params.Wdec)
        r.grads.Wdec.dispose()
        r.grads.Wdec = g
      }
      // Adam, then (cfg.decoderUnitNorm) W_dec's rows back to unit norm.
      await adam.apply(params, r.grads, step + 1, lr)
      const nextSince = tf.tidy(() => tf.where(tf.greater(r.fired, 0), tf.zerosLike(since), tf.add(since, cfg.batchSize))) as tf.Tensor1D
      const nextCounts = tf.add(counts, r.fired) as tf.Tensor1D
      since.dispose()
      counts.dispose()
      since = nextSince
      counts = nextCounts
      step++
      tokens += cfg.batchSize
      position = after
      if (step % cfg.logEvery === 0 || step === totalSteps) {
        const [loss, auxLoss, l0] = (await Promise.all([r.loss.array(), r.auxLoss.array(), r.l0.array()])) as number[]
        const deadFraction = await deadShare(since, Math.min(cfg.deadAfterTokens, tokens))
        const seconds = (performance.now() - started) / 1000
        const metric: TrainMetric = {
          step,
          tokens,
          loss: loss!,
          auxLoss: auxLoss!,
          l0: l0!,
          deadFraction,
          lr,
          tokensPerSecond: seconds > 0 ? (tokens - startTokens) / seconds : null
        }
        opts.onMetric?.(metric)
        appendFileSync(`${partial}/${TRAINING_LOG}`, JSON.stringify(metric) + '\n')
        ctx.progress(
          meter.update(tokens, `step ${step}/${totalSteps} · FVU ${loss!.toFixed(4)} · L0 ${l0!.toFixed(1)} · dead ${(100 * deadFraction).toFixed(1)}%`)
        )
      }
      tf.dispose([r.grads.Wenc, r.grads.benc, r.grads.Wdec, r.grads.bdec, r.loss, r.auxLoss, r.l0, r.fired])
      if (step % cfg.checkpointEvery === 0 && step < totalSteps) await persist()
    }
    await stream.return(undefined)

    ctx.progress({ fraction: 1, rate: null, rateUnit: null, etaSeconds: null, message: 'evaluating on held-out rows' })
    const heldOut = await rows.heldOut(cfg.evalRows)
    const evalRows = heldOut.length > 0 ? heldOut : await rows.sample(Math.min(cfg.evalRows || 1024, rows.trainingRows))
    const deadAtEnd = await deadShare(since, Math.min(cfg.deadAfterTokens, tokens))
    const ev = await evaluate(params, scaling, cfg.k, evalRows, d, deadAtEnd, heldOut.length === 0)
    const manifest = source.store?.manifest
    const meta: Omit<FeatureTraceMeta, 'input_scaling' | 'scaling_factor' | 'format_version'> = {
      checkpoint_step: opts.meta?.checkpointStep ?? manifest?.checkpointStep ?? null,
      layer: opts.meta?.layer ?? manifest?.layer ?? null,
      preset: opts.preset,
      tokens_seen: tokens,
      steps: step,
      warm_started_from: initSae?.dir ?? null,
      config: cfg,
      metrics: { fvu: ev.fvu, explained_variance: ev.explainedVariance, cosine: ev.cosine, l0: ev.l0, dead_fraction: ev.deadFraction, eval_rows: ev.rows },
      activations: resolve(opts.activations)
    }
    const trained = await Sae.fromTensors(params, cfg.k, scaling, ev.density)
    await trained.save(partial, {
      meta,
      modelName: opts.meta?.modelName !== undefined ? opts.meta.modelName : manifest ? modelNameOf(manifest.model) : null,
      hookName: opts.meta?.hookName ?? null,
      contextSize: opts.meta?.contextSize ?? manifest?.context ?? null,
      datasetPath: manifest?.corpus ?? null,
      prependBos: manifest?.bos ?? null
    })
    removeState(partial)
    if (existsSync(out)) rmSync(out, { recursive: true })
    renameSync(partial, out)
    return { dir: out, config: cfg, steps: step, tokens, eval: ev, backend, resumed }
  } catch (err) {
    if (err instanceof JobCancelled) throw err
    const message = (err as Error).message ?? ''
    if (/out of memory|Cannot allocate|Array buffer allocation failed|memory access out of bounds/i.test(message)) {
      throw new UserError(
        `Ran out of memory training with batch ${cfg.batchSize} and n = ${cfg.n} on ${backend.name}. Lower --batch and run again; the run resumes from its last saved state.`
      )
    }
    throw err
  } finally {
    disposeParams(params)
    adam.dispose()
    since.dispose()
    counts.dispose()
  }
}

// Live text: a researcher's own text through a feature set's checkpoint and SAE. The text is tokenised as a
// harvest tokenises a document (the checkpoint's tokenizer, its BOS in front and EOS after by the same rules),
// run as one sequence through the forward pass to the SAE's layer (the residual stream after block L, as a
// harvest stores it) and encoded by the SAE's own rule (TopK, JumpReLU or ReLU: imported SAELens SAEs as ours).
// The host checks the request against the project; the analysis process computes, keeping the last checkpoints'
// models and SAEs loaded between requests.
import * as tf from '@tensorflow/tfjs-core'
import type { Checkpoint, FeatureSetInfo, LiveTextResult, LiveTextStatus, SaeInfo } from '../../shared/api'
import { LIVE_TEXT_MAX_TOKENS, LIVE_TEXT_TOP_FEATURES, UserError } from '../../shared/api'
import { isSaeOnly, saeOnlyRefusal } from '../checkpoints/sae-only'
import { ActivationStore } from '../io/activation-store'
import { JobCancelled } from '../jobs/job'
import { CheckpointFolder } from '../lm/checkpoint'
import { loadModel, type LanguageModel } from '../lm/model'
import type { Project } from '../project'
import { Sae } from '../sae/sae'
import { initBackend } from '../tf/backend'

/** What the analysis process needs for one request, resolved from the project on the host. */
export interface LiveTextInput {
  setId: number
  feature: number
  step: number
  layer: number
  /** The checkpoint folder (Hugging Face layout). */
  model: string
  /** The SAE folder (SAELens layout, ours or imported). */
  sae: string
  /** Apply the final norm at the last layer, as the harvest the SAE was trained on did. */
  finalNorm: boolean
  text: string
}

interface Target {
  set: FeatureSetInfo
  sae: SaeInfo
  checkpoint: Checkpoint
  finalNorm: boolean
  harvestContext: number | null
}

/**
 * The set's SAE and checkpoint, checked for live text. Errors (UserError, written for the user): an imported
 * feature set (no SAE), an SAE no longer recorded, an SAE-only checkpoint (no weights), an architecture
 * FeatureTrace does not run.
 */
function targetOf(project: Project, setId: number): Target {
  const set = project.features.set(setId)
  if (set.source !== 'sae' || set.saeId === null) {
    throw new UserError(
      `"${set.name}" is an imported feature set: its features have no SAE in this project, and live text needs the SAE and the checkpoint's model. ` +
        'Import the SAE (saes.import) and compute its feature statistics to use live text.'
    )
  }
  const sae = project.saes.get(set.saeId)
  if (!sae) throw new UserError(`The SAE of "${set.name}" (#${set.saeId}) is no longer recorded in this project.`)
  const checkpoint = project.checkpoints.get(sae.checkpointId)
  if (isSaeOnly(checkpoint))
    throw saeOnlyRefusal([checkpoint.step], 'live text (running your text through the model)', 'label its features from their examples')
  if (!checkpoint.supported) {
    throw new UserError(
      `Checkpoint step ${checkpoint.step} is a ${checkpoint.modelType} model, which FeatureTrace does not run itself (it runs gpt_neox, llama and gpt2), so live text cannot run on it.`
    )
  }
  // The store the SAE was trained on says whether the last layer was taken after the final norm (HF's hidden_states[L]).
  const store = project.activations.forCheckpoint(checkpoint.id).find((s) => s.layer === sae.layer)
  let finalNorm = false
  if (store && checkpoint.layers !== null && sae.layer === checkpoint.layers) {
    try {
      finalNorm = ActivationStore.readManifest(store.path).finalNorm
    } catch {
      // The store is gone or damaged: the residual stream before the final norm, as TransformerLens' hooks read it.
    }
  }
  return { set, sae, checkpoint, finalNorm, harvestContext: store?.context ?? null }
}

/** Whether live text can run on a feature set, and if not why (host side: the project's records only). */
export function liveTextStatus(project: Project, setId: number): LiveTextStatus {
  const set = project.features.set(setId)
  const base = { setId, step: set.step, layer: set.layer, maxTokens: LIVE_TEXT_MAX_TOKENS }
  try {
    const t = targetOf(project, setId)
    // config.json through the key table: a checkpoint the forward pass would refuse says so here, before any typing.
    const positions = CheckpointFolder.open(t.checkpoint.path!).spec.maxPositions
    return { ...base, available: true, reason: null, harvestContext: t.harvestContext, maxTokens: Math.min(LIVE_TEXT_MAX_TOKENS, positions ?? Infinity) }
  } catch (err) {
    if (!(err instanceof UserError)) throw err
    return { ...base, available: false, reason: err.message, harvestContext: null }
  }
}

/** Host side of liveText.run: the set's SAE and checkpoint folders, checked. Errors: as targetOf, a feature beyond the set. */
export function prepareLiveText(project: Project, req: { setId: number; feature: number; text: string }): LiveTextInput {
  const t = targetOf(project, req.setId)
  if (req.feature >= t.sae.n) throw new UserError(`Feature ${req.feature} is beyond the ${t.sae.n} latents of the SAE of "${t.set.name}".`)
  return {
    setId: t.set.id,
    feature: req.feature,
    step: t.checkpoint.step,
    layer: t.sae.layer,
    model: t.checkpoint.path!,
    sae: t.sae.path,
    finalNorm: t.finalNorm,
    text: req.text
  }
}

interface LoadedModel {
  checkpoint: CheckpointFolder
  model: LanguageModel
  /** The deepest layer the model was loaded for (blocks beyond were never read). */
  upTo: number
}

/**
 * The analysis process's loaded checkpoints and SAEs for live text, most recently used last: at most
 * `models` checkpoints (a model's tensors are freed and its weight files closed when it leaves) and `saes`
 * SAEs (their encoding tensors freed). A request being loaded is shared by requests that ask for it meanwhile.
 */
export class LoadedModels {
  private readonly models = new Map<string, Promise<LoadedModel>>()
  private readonly saes = new Map<string, Promise<Sae>>()

  constructor(private readonly capacity: { models: number; saes: number } = { models: 2, saes: 4 }) {}

  /** The checkpoint in `folder` loaded for layers up to at least `layer`; `cached` says whether it was already loaded. */
  async model(folder: string, layer: number): Promise<LoadedModel & { cached: boolean }> {
    const held = this.models.get(folder)
    if (held) {
      const m = await held.catch(() => null)
      if (m && m.upTo >= layer) {
        this.touch(this.models, folder, held)
        return { ...m, cached: true }
      }
      if (this.models.get(folder) === held) this.models.delete(folder)
      if (m) await release(m)
    }
    const loading = (async () => {
      const checkpoint = CheckpointFolder.open(folder)
      try {
        return { checkpoint, model: await loadModel(checkpoint, layer), upTo: layer }
      } catch (err) {
        await checkpoint.close()
        throw err
      }
    })()
    this.models.set(folder, loading)
    loading.catch(() => this.models.get(folder) === loading && this.models.delete(folder))
    await this.evict(this.models, this.capacity.models, release)
    return { ...(await loading), cached: false }
  }

  /** The SAE in `dir`, read on first use (Sae.load: our format and SAELens', with its encoding rule). */
  async sae(dir: string): Promise<Sae> {
    const held = this.saes.get(dir)
    if (held) {
      this.touch(this.saes, dir, held)
      return held
    }
    const loading = Sae.load(dir)
    this.saes.set(dir, loading)
    loading.catch(() => this.saes.get(dir) === loading && this.saes.delete(dir))
    await this.evict(this.saes, this.capacity.saes, async (s) => s.dispose())
    return loading
  }

  /** How many checkpoints and SAEs are held now. */
  get size(): { models: number; saes: number } {
    return { models: this.models.size, saes: this.saes.size }
  }

  /** Frees every model and SAE held. */
  async dispose(): Promise<void> {
    const models = [...this.models.values()]
    const saes = [...this.saes.values()]
    this.models.clear()
    this.saes.clear()
    for (const m of models) await m.then(release, () => {})
    for (const s of saes)
      await s.then(
        (x) => x.dispose(),
        () => {}
      )
  }

  private touch<T>(map: Map<string, Promise<T>>, key: string, value: Promise<T>): void {
    map.delete(key)
    map.set(key, value)
  }

  private async evict<T>(map: Map<string, Promise<T>>, keep: number, free: (x: T) => Promise<void>): Promise<void> {
    while (map.size > keep) {
      const [key, oldest] = map.entries().next().value as [string, Promise<T>]
      map.delete(key)
      await oldest.then(free, () => {})
    }
  }
}

/** Sequences are padded (with token 0, after the text) to a multiple of this many positions. */
const PAD_TO = 64

async function release(m: LoadedModel): Promise<void> {
  m.model.dispose()
  await m.checkpoint.close()
}

/**
 * The feature's activation at every token of the text and the top features at each token.
 * Tokens: tokenizer.encode(text), then its EOS when the tokenizer appends one (transformers' add_eos_token), with
 * its BOS run in front and dropped from the result, exactly as harvest.ts builds a window; the whole text is one
 * window (padded after its end, which a causal model never reads back), so it equals a harvest whose --context
 * covers the text. Activations: the residual stream after block
 * `layer` [T, d_in] (the final norm at the last layer when the SAE's store had it), encoded by Sae.encode
 * (SAELens' encode for each architecture) into latents [T, d_sae]. Errors (UserError): no tokens, more than
 * LIVE_TEXT_MAX_TOKENS tokens or the model's positions, an SAE whose d_in is not the model's d_model, a feature
 * beyond d_sae, token ids beyond the embedding; JobCancelled when the signal aborts.
 */
export async function runLiveText(input: LiveTextInput, ctx: { signal: AbortSignal; models: LoadedModels }): Promise<LiveTextResult> {
  const started = performance.now()
  const stop = (): void => {
    if (ctx.signal.aborted) throw new JobCancelled()
  }
  await initBackend()
  // The SAE first: an SAE evicted meanwhile remakes its tensors on use, but a model evicted by another request
  // is gone, so from here to the forward pass nothing awaits.
  const sae = await ctx.models.sae(input.sae)
  stop()
  const { checkpoint, model, cached } = await ctx.models.model(input.model, input.layer)
  if (sae.d !== model.dModel) {
    throw new UserError(
      `${input.sae}: the SAE reads d_in ${sae.d} values but ${input.model} has d_model ${model.dModel}; it does not belong to this checkpoint.`
    )
  }
  if (input.feature >= sae.n) throw new UserError(`Feature ${input.feature} is beyond the SAE's ${sae.n} latents (${input.sae}).`)
  const tokenizer = checkpoint.tokenizer()
  const ids = tokenizer.encode(input.text)
  if (tokenizer.eos !== null) ids.push(tokenizer.eos)
  if (ids.length === 0) throw new UserError('The text gives no tokens: type some words.')
  const bos = tokenizer.bos
  const positions = model.maxPositions === null ? Infinity : model.maxPositions - (bos === null ? 0 : 1)
  const cap = Math.min(LIVE_TEXT_MAX_TOKENS, positions)
  if (ids.length > cap) {
    throw new UserError(
      `The text is ${ids.length.toLocaleString('en')} tokens; live text runs at most ${cap} tokens at once` +
        `${cap < LIVE_TEXT_MAX_TOKENS ? ` (the model's ${model.maxPositions} positions)` : ''}. Shorten it and run again.`
    )
  }
  stop()
  const T = ids.length
  const row = bos === null ? ids : [bos, ...ids]
  // Padded at the end to a multiple of PAD_TO: causal attention keeps later positions from changing earlier
  // ones, and the model keeps one mask (and RoPE table) per length, so texts of every length share a few.
  const length = Math.min(Math.ceil(row.length / PAD_TO) * PAD_TO, model.maxPositions ?? Infinity)
  const padded = new Int32Array(length)
  padded.set(row)
  const idTensor = tf.tensor2d(padded, [1, length], 'int32')
  let states: tf.Tensor3D[]
  try {
    states = model.hiddenStates(idTensor, [input.layer], { finalNorm: input.finalNorm })
  } finally {
    idTensor.dispose()
  }
  // The BOS position is dropped, as a harvest drops it.
  const x = tf.tidy(() => tf.reshape(tf.slice(states[0]!, [0, row.length - T, 0], [1, T, model.dModel]), [T, model.dModel]) as tf.Tensor2D)
  tf.dispose(states)
  const { values, indices } = sae.encode(x)
  x.dispose()
  const width = values.shape[1]
  const [v, idx] = (await Promise.all([values.data(), indices.data()])) as [Float32Array, Int32Array]
  tf.dispose([values, indices])
  stop()
  const acts: number[] = []
  const top: { feature: number; act: number }[][] = []
  for (let t = 0; t < T; t++) {
    let mine = 0
    const here: { feature: number; act: number }[] = []
    // Codes come largest first; inactive slots hold 0.
    for (let j = 0; j < width; j++) {
      const a = v[t * width + j]!
      if (!(a > 0)) break
      const f = idx[t * width + j]!
      if (f === input.feature) mine = a
      if (here.length < LIVE_TEXT_TOP_FEATURES) here.push({ feature: f, act: a })
    }
    acts.push(mine)
    top.push(here)
  }
  return {
    setId: input.setId,
    feature: input.feature,
    step: input.step,
    layer: input.layer,
    architecture: sae.rule.architecture,
    tokens: ids.map((id) => tokenizer.tokenText(id)),
    ids,
    acts,
    top,
    bos: bos !== null,
    modelCached: cached,
    ms: performance.now() - started
  }
}

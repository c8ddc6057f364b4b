// The evaluate-saes job: every current SAE of a layer evaluated by splicing (evaluate.ts), in step order, each
// stored as it finishes its checkpoint; the checkpoint view charts them over the series.
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import type { JobRequestOf } from '../../shared/api'
import { UserError } from '../../shared/api'
import { ActivationStore } from '../io/activation-store'
import type { JobKindDefinition } from '../jobs/job'
import { isSaeOnly } from '../checkpoints/sae-only'
import { currentBackend } from '../tf/backend'
import type { NewSaeEvaluation } from '../store/evaluations'
import type { SaeEvaluationReport } from './evaluate'

type EvaluateRequest = JobRequestOf<'evaluate-saes'>

interface EvaluateItem {
  saeId: number
  step: number
  model: string
  sae: string
  corpus: string
  lang?: string
  context: number
  maxTokens?: number
  seed: number
  dropShort: boolean
}

interface EvaluateInput {
  layer: number
  backend?: EvaluateRequest['backend']
  items: EvaluateItem[]
}

interface EvaluateOutput {
  layer: number
  backend: string
  evaluations: NewSaeEvaluation[]
}

/** What the project stores of a report. */
export function evaluationRow(saeId: number, r: SaeEvaluationReport): NewSaeEvaluation {
  return {
    saeId,
    ceClean: r.ce_clean,
    ceSpliced: r.ce_spliced,
    ceZero: r.ce_zero,
    lossRecovered: r.loss_recovered,
    kl: r.kl,
    fvu: r.fvu,
    explainedVariance: r.explained_variance,
    l0: r.l0,
    tokens: r.tokens,
    positions: r.positions,
    windows: r.windows,
    corpus: r.corpus,
    context: r.context,
    maxTokens: r.max_tokens,
    seed: r.seed,
    backend: r.backend
  }
}

export const evaluateSaesJob: JobKindDefinition<EvaluateRequest, EvaluateInput, EvaluateOutput> = {
  kind: 'evaluate-saes',
  prepare(project, request) {
    const { layer } = request
    const checkpoints = project.checkpoints.list()
    const saes = project.saes.list().filter((s) => s.layer === layer && (request.checkpointIds.length === 0 || request.checkpointIds.includes(s.checkpointId)))
    const missing = request.checkpointIds.filter((id) => !checkpoints.some((c) => c.id === id))
    if (missing.length) throw new UserError(`No checkpoint with id ${missing.join(', ')} in this project.`, 'not-found')
    const items: EvaluateItem[] = []
    for (const s of saes.sort((a, b) => a.step - b.step)) {
      const c = checkpoints.find((x) => x.id === s.checkpointId)!
      // An SAE-only checkpoint has no weights to splice into: left out unless asked for by name.
      if (isSaeOnly(c)) {
        if (request.checkpointIds.length)
          throw new UserError(`Step ${c.step} has no checkpoint weights (only its SAE): register its folder to evaluate its SAE.`)
        continue
      }
      if (!c.supported) throw new UserError(`FeatureTrace cannot run ${c.modelType} (step ${c.step}), so it cannot splice its SAE in.`)
      // The windows default to the harvest the SAE was trained on: its corpus, context, budget and seed.
      const store = project.activations.forCheckpoint(c.id).find((a) => a.layer === layer)
      const manifest = store && existsSync(store.path) ? ActivationStore.readManifest(store.path) : null
      const corpus = request.corpus ? resolve(request.corpus) : (store?.corpus ?? null)
      if (!corpus) {
        throw new UserError(
          `Step ${c.step} has no activation store at layer ${layer} to take the evaluation windows from: give a corpus (featuretrace evaluate-series --corpus FILE).`
        )
      }
      if (!existsSync(corpus))
        throw new UserError(`Missing corpus file ${corpus} (for step ${c.step}): give another with --corpus, or relocate the project's inputs.`)
      items.push({
        saeId: s.id,
        step: c.step,
        model: c.path!,
        sae: s.path,
        corpus,
        lang: request.lang,
        context: request.context ?? store?.context ?? 64,
        maxTokens: request.maxTokens ?? manifest?.maxTokens ?? undefined,
        seed: request.seed ?? manifest?.seed ?? 0,
        dropShort: request.dropShort ?? manifest?.dropShort ?? false
      })
    }
    if (items.length === 0) throw new UserError(`There are no SAEs at layer ${layer} on checkpoints with weights to evaluate; train or import some first.`)
    return { layer, backend: request.backend, items }
  },
  async run(input, ctx) {
    // Loaded here, in the worker: the host never needs TensorFlow.js.
    const { evaluateSae } = await import('./evaluate')
    const evaluations: NewSaeEvaluation[] = []
    const n = input.items.length
    for (const [i, item] of input.items.entries()) {
      const report = await evaluateSae(
        {
          model: item.model,
          sae: item.sae,
          layer: input.layer,
          corpus: item.corpus,
          corpusLang: item.lang,
          context: item.context,
          maxTokens: item.maxTokens,
          seed: item.seed,
          dropShort: item.dropShort,
          backend: input.backend
        },
        {
          signal: ctx.signal,
          progress: (p) => ctx.progress({ ...p, fraction: (i + p.fraction) / n, message: `step ${item.step} (${i + 1}/${n}): ${p.message ?? ''}` })
        }
      )
      evaluations.push(evaluationRow(item.saeId, report))
    }
    const b = currentBackend()
    return { layer: input.layer, backend: b ? `${b.name} (${b.reason})` : 'unknown', evaluations }
  },
  apply(project, output) {
    for (const e of output.evaluations) if (project.saes.get(e.saeId)) project.evaluations.put(e)
    return { evaluated: output.evaluations.length, layer: output.layer, backend: output.backend }
  }
}

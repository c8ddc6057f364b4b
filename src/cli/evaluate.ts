// `featuretrace evaluate` and `evaluate-series`: SAE evaluation by splicing (loss recovered, KL, FVU).
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { evaluateSae } from '../core/sae/evaluate'
import { backendOption, checkpointIdsAt, CliError, intOption, parse, PROJECT, requireOptions, runInProcess, runJobToEnd, withProject } from './options'

export const EVALUATE_USAGE = `  evaluate --model DIR --sae DIR --corpus FILE --layer L --out FILE.json [--context 64]
          [--max-tokens N] [--seed S] [--lang TAG] [--drop-short] [--batch B] [--backend NAME]
        Next-token cross-entropy of the checkpoint clean, with the residual stream after block L
        replaced by the SAE's reconstruction, and by zeros, over the windows a harvest with the
        same settings stores: ce_clean, ce_spliced, ce_zero, loss_recovered, kl, fvu,
        explained_variance, l0, tokens (predictions) in FILE.json.
  evaluate-series --project DIR --layer L [--checkpoint STEP ...] [--corpus FILE] [--context N]
          [--max-tokens N] [--seed S]
        The same for every SAE of the layer, as a job, stored in the project and charted in the
        checkpoint view; the windows default to each checkpoint's harvest at that layer.`

/** Options shared by `evaluate` and `evaluate-series`. */
const WINDOW_OPTIONS = {
  corpus: { type: 'string' },
  layer: { type: 'string' },
  context: { type: 'string' },
  'max-tokens': { type: 'string' },
  seed: { type: 'string' },
  lang: { type: 'string' },
  'drop-short': { type: 'boolean' },
  backend: { type: 'string' }
} as const

export async function cmdEvaluate(args: string[]): Promise<void> {
  const { values } = parse(args, { ...WINDOW_OPTIONS, model: { type: 'string' }, sae: { type: 'string' }, out: { type: 'string' }, batch: { type: 'string' } })
  requireOptions('evaluate', values, ['model', 'sae', 'corpus', 'layer', 'out'])
  const report = await runInProcess('evaluate', 'nothing was written.', (ctx) =>
    evaluateSae(
      {
        model: values.model!,
        sae: values.sae!,
        corpus: values.corpus!,
        corpusLang: values.lang,
        layer: intOption(values.layer, 'layer')!,
        context: intOption(values.context, 'context'),
        maxTokens: intOption(values['max-tokens'], 'max-tokens'),
        seed: intOption(values.seed, 'seed'),
        dropShort: Boolean(values['drop-short']),
        batchSequences: intOption(values.batch, 'batch'),
        backend: backendOption(values.backend),
        log: (line) => console.log(line)
      },
      ctx
    )
  )
  const out = values.out!
  try {
    mkdirSync(dirname(out), { recursive: true })
    writeFileSync(out, JSON.stringify(report, null, 2) + '\n')
  } catch (err) {
    throw new CliError(`Cannot write ${out}: ${(err as Error).message}`)
  }
  const f = (x: number | null): string => (x === null ? 'n/a' : x.toFixed(4))
  console.log(
    `layer ${report.layer}, ${report.tokens.toLocaleString('en')} predictions in ${report.windows} windows on ${report.backend}: ` +
      `CE clean ${f(report.ce_clean)}, spliced ${f(report.ce_spliced)}, zero ${f(report.ce_zero)}; loss recovered ${f(report.loss_recovered)}; ` +
      `KL ${f(report.kl)}; FVU ${f(report.fvu)}; L0 ${report.l0.toFixed(1)} → ${out}`
  )
}

export async function cmdEvaluateSeries(args: string[]): Promise<void> {
  const { values } = parse(args, { ...PROJECT, ...WINDOW_OPTIONS, checkpoint: { type: 'string', multiple: true } })
  if (values.layer === undefined) throw new CliError('evaluate-series needs --layer L.')
  const job = await withProject(values, async (ws) =>
    runJobToEnd(ws, {
      kind: 'evaluate-saes',
      checkpointIds: await checkpointIdsAt(ws, values.checkpoint),
      layer: intOption(values.layer, 'layer')!,
      corpus: values.corpus,
      lang: values.lang,
      context: intOption(values.context, 'context'),
      maxTokens: intOption(values['max-tokens'], 'max-tokens'),
      seed: intOption(values.seed, 'seed'),
      dropShort: values['drop-short'] ? true : undefined,
      backend: backendOption(values.backend)
    })
  )
  const r = job.result
  if (r) console.log(`evaluated ${r.evaluated} SAEs at layer ${r.layer} on ${r.backend}`)
}

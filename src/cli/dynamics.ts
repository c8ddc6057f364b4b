// `featuretrace drift` and `formation`: how features move and when they form along a series of SAEs.
import { writeFileSync } from 'node:fs'
import { computeDrift, writeDrift } from '../core/analysis/drift'
import { initBackend } from '../core/tf/backend'
import { backendOption, call, intListOption, oneLayer, parse, PROJECT, requireOptions, runInProcess, withProject } from './options'

export const DYNAMICS_USAGE = `  drift --sae DIR [--sae DIR …] [--match] --out FILE.safetensors
        Decoder-row cosines along a series of SAEs (given in step order): float32 cos_to_final and
        cos_to_previous [checkpoints, n]; with --match also int32 match_to_final and float32 match_cos
        (optimal one-to-one assignment by decoder cosine; exact up to 16,384 latents, greedy beyond).
  formation --project DIR --features F1,F2,… --out FILE.json [--layer L] [--threshold 0.5]
        SAE-Track's progress measure M_i(t) = S_feat(t) − S_rand(t) per checkpoint (and the raw,
        Jaccard and weighted-Jaccard variants), with each feature's formation step.`

export async function cmdDrift(args: string[]): Promise<void> {
  const { values } = parse(args, { sae: { type: 'string', multiple: true }, match: { type: 'boolean' }, out: { type: 'string' }, backend: { type: 'string' } })
  requireOptions('drift', values, ['sae', 'out'])
  await initBackend(backendOption(values.backend))
  const r = await runInProcess('drift', 'run it again to start over.', (ctx) => computeDrift(values.sae!, { match: Boolean(values.match) }, ctx))
  await writeDrift(values.out!, r)
  const T = r.steps.length
  const last = r.cosToPrevious.subarray((T - 1) * r.n)
  console.log(`${T} SAEs × ${r.n} latents → ${values.out!}${r.matchMethod ? ` (matching: ${r.matchMethod})` : ''}`)
  if (T > 1) console.log(`mean cosine to the previous SAE at the last step: ${(last.reduce((a, b) => a + b, 0) / r.n).toFixed(4)}`)
}

export async function cmdFormation(args: string[]): Promise<void> {
  const { values } = parse(args, {
    ...PROJECT,
    features: { type: 'string' },
    out: { type: 'string' },
    layer: { type: 'string' },
    threshold: { type: 'string' },
    backend: { type: 'string' }
  })
  requireOptions('formation', values, ['features', 'out'])
  const features = intListOption(values.features, 'features', 'feature ids like 3,17,42')
  const threshold = values.threshold === undefined ? undefined : Number(values.threshold)
  await withProject(values, async (ws) => {
    const layer = oneLayer(
      values.layer,
      (await call(ws, 'saes.list')).map((s) => s.layer),
      'SAEs',
      'No SAEs yet: run train-series first.'
    )
    const r = await call(ws, 'dynamics.formation', { layer, features, threshold, backend: backendOption(values.backend) })
    writeFileSync(values.out!, JSON.stringify(r, null, 2))
    for (const f of r.features)
      console.log(`feature ${f.feature}: forms at step ${f.formationStep.sae ?? 'never'} (M = ${f.m.sae.map((x) => x.toFixed(2)).join(' ')})`)
  })
}

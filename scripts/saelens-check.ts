// Checks a project's SAEs (or one SAE folder on an activation store) against SAELens' own loader: for each
// current SAE, its activation store's first rows
// (raw, as harvested) encoded by FeatureTrace and by SAELens' SAE.load_from_disk + encode, for every SAELens
// source tree in SAELENS_SRC (':'-separated). Prints, per SAE and SAELens version, the rows whose active set
// differs, the largest relative difference of the latents active in both, and the FVU of SAELens'
// reconstruction of the raw rows beside the held-out FVU FeatureTrace recorded. Exits 1 when any row differs or
// a value differs by more than 1e-5 relative.
//   SAELENS_SRC=/tmp/saelens-6.18.0:/tmp/saelens-5.11.0 npx tsx scripts/saelens-check.ts --project DIR [--rows N]
//   SAELENS_SRC=… npx tsx scripts/saelens-check.ts --sae SAE_DIR --activations STORE_DIR [--rows N]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ActivationStore } from '../src/core/io/activation-store'
import { Project } from '../src/core/project'
import { Sae } from '../src/core/sae/sae'
import { initBackend } from '../src/core/tf/backend'
import { compareCodes, SAELENS_SKIP_REASON, saelensEncode, saelensSources } from '../tests/fixtures/saelens'

const { values } = parseArgs({ options: { project: { type: 'string' }, sae: { type: 'string' }, activations: { type: 'string' }, rows: { type: 'string' } } })
if (!values.project && !(values.sae && values.activations))
  throw new Error('usage: saelens-check.ts --project DIR | --sae SAE_DIR --activations STORE_DIR [--rows N]')
const sources = saelensSources()
if (sources.length === 0) throw new Error(SAELENS_SKIP_REASON)
const want = Number(values.rows ?? 20_000)
await initBackend('cpu')
const project = values.project ? Project.open(resolve(values.project)) : null
const checks = project
  ? project.saes
      .list()
      .filter((s) => s.supersededBy === null)
      .map((info) => ({ info, store: project.activations.list().find((s) => s.checkpointId === info.checkpointId && s.layer === info.layer)?.path ?? null }))
  : [{ info: { path: resolve(values.sae!), step: '-', layer: '-', fvu: null as number | null }, store: resolve(values.activations!) }]
const scratch = mkdtempSync(join(tmpdir(), 'saelens-check-'))
let failed = false
try {
  for (const { info, store } of checks) {
    if (!store) {
      console.log(`step ${info.step} layer ${info.layer}: no activation store, skipped`)
      continue
    }
    const st = await ActivationStore.open(store)
    const d = st.d
    const rows = Math.min(want, st.rows)
    const x = new Float32Array(rows * d)
    for (let s = 0, filled = 0; filled < rows; s++) {
      const { acts } = await st.readShard(s)
      const take = Math.min(acts.length / d, rows - filled)
      x.set(acts.subarray(0, take * d), filled * d)
      filled += take
    }
    const sae = await Sae.load(info.path)
    const ours = await sae.dense(x, rows)
    sae.dispose()
    const mean = new Float64Array(d)
    for (let i = 0; i < x.length; i++) mean[i % d]! += x[i]! / rows
    for (const src of sources) {
      const run = saelensEncode(src, info.path, x, scratch)
      const c = compareCodes(ours, run.latents, rows, sae.n)
      let err = 0
      let total = 0
      for (let i = 0; i < x.length; i++) {
        err += (run.recon[i]! - x[i]!) ** 2
        total += (x[i]! - mean[i % d]!) ** 2
      }
      const bad = c.otherSet > 0 || c.maxRelative > 1e-5
      failed ||= bad
      console.log(
        `step ${String(info.step).padStart(5)} layer ${info.layer} (${sae.trainedScaling.kind} → ${run.info.normalize_activations}) SAELens ${run.info.version} ${run.info.class}: ` +
          `${c.otherSet}/${c.rows} rows with another active set, max relative difference ${c.maxRelative.toExponential(2)} over ${c.active} latents; ` +
          `FVU of SAELens' reconstruction of raw rows ${(err / total).toFixed(4)} (FeatureTrace's held-out FVU, in training space: ${info.fvu?.toFixed(4) ?? '–'})${bad ? '  DIFFERS' : ''}`
      )
    }
  }
} finally {
  project?.close()
  rmSync(scratch, { recursive: true, force: true })
}
process.exit(failed ? 1 : 0)

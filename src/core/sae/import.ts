// Importing SAEs trained elsewhere (SAELens, sparsify, Gemma Scope, llm-jp-sae): one SAE or a series of
// step folders, attached to the project's checkpoints by step. Each is converted into FeatureTrace's own
// SAELens layout under the project's artifacts, with its encoding rule in cfg.json, so feature statistics,
// labelling, drift (with matching) and formation use it exactly like an SAE trained here.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { basename, join, relative, resolve } from 'node:path'
import type { SaeImportItem, SaeImportRequest, SaeImportScan, SaeInfo } from '../../shared/api'
import { UserError } from '../../shared/api'
import { parseStep } from '../checkpoints/discover'
import { describeSae, WHAT_WE_READ, type ForeignSae } from '../io/sae-formats'
import { writeSafetensors } from '../io/safetensors'
import type { Project } from '../project'
import { CFG_FILE, SPARSITY_FILE, WEIGHTS_FILE } from './io'

const SAELENS_NORMALIZE: Record<string, string> = { none: 'none', unit_norm: 'none', constant: 'none', layer_norm: 'layer_norm', std_layer_norm: 'layer_norm', norm_rescale: 'constant_norm_rescale' }

interface Candidate {
  sae: ForeignSae
  /** The step the folder name (or --checkpoint, or the SAE's own config) gives. */
  step: number | null
}

/** SAE folders below `dir` (up to `depth` levels), for step folders that hold a hookpoint subfolder. */
async function saesBelow(dir: string, depth: number): Promise<ForeignSae[]> {
  const out: ForeignSae[] = []
  for (const name of readdirSync(dir).sort()) {
    const sub = join(dir, name)
    if (!statSync(sub).isDirectory()) continue
    const sae = await describeSae(sub)
    if (sae) out.push(sae)
    else if (depth > 1) out.push(...(await saesBelow(sub, depth - 1)))
  }
  return out
}

function problemText(err: unknown): string {
  if (err instanceof UserError) return err.message
  throw err
}

/** What is at `path`: one SAE, or step folders each holding one. Problems are collected, not thrown. */
async function findCandidates(req: SaeImportRequest): Promise<{ candidates: Candidate[]; problems: { path: string; reason: string }[] }> {
  const root = resolve(req.path)
  const problems: { path: string; reason: string }[] = []
  let single: ForeignSae | null
  try {
    single = await describeSae(root)
  } catch (err) {
    return { candidates: [], problems: [{ path: root, reason: problemText(err) }] }
  }
  if (single) return { candidates: [{ sae: single, step: req.step ?? single.step ?? parseStep(basename(root)) }], problems }
  const candidates: Candidate[] = []
  for (const name of readdirSync(root).sort()) {
    const sub = join(root, name)
    const step = parseStep(name)
    if (step === null || !statSync(sub).isDirectory()) continue
    try {
      let sae = await describeSae(sub)
      if (!sae) {
        let inside = await saesBelow(sub, 3)
        if (req.hookpoint) inside = inside.filter((s) => relative(sub, s.path).split(/[/\\]/).includes(req.hookpoint!))
        if (inside.length === 0) {
          problems.push({ path: sub, reason: req.hookpoint ? `no SAE under hookpoint "${req.hookpoint}".` : `no SAE found: expected ${WHAT_WE_READ}.` })
          continue
        }
        if (inside.length > 1) {
          problems.push({ path: sub, reason: `holds ${inside.length} SAEs (${inside.map((s) => relative(sub, s.path)).join(', ')}); choose one with --hookpoint NAME.` })
          continue
        }
        sae = inside[0]!
      }
      candidates.push({ sae, step })
    } catch (err) {
      problems.push({ path: sub, reason: problemText(err) })
    }
  }
  if (candidates.length === 0 && problems.length === 0) {
    // No step folders: one SAE somewhere below (a Gemma Scope release's layer_L/width_W/average_l0_N/params.npz).
    let inside = await saesBelow(root, 3).catch(() => [] as ForeignSae[])
    if (req.hookpoint) inside = inside.filter((s) => relative(root, s.path).split(/[/\\]/).includes(req.hookpoint!))
    if (inside.length === 1) return { candidates: [{ sae: inside[0]!, step: req.step ?? inside[0]!.step }], problems }
    if (inside.length > 1) {
      problems.push({ path: root, reason: `holds ${inside.length} SAEs and no step folders (${inside.map((s) => relative(root, s.path)).join(', ')}); give one SAE's folder, or --hookpoint NAME.` })
      return { candidates, problems }
    }
    problems.push({ path: root, reason: `no SAE found: expected ${WHAT_WE_READ}, or a folder of step folders (step1000, iter_0001000, checkpoint-1000) holding them.` })
  }
  return { candidates, problems }
}

function median(a: Float32Array): number {
  const s = Float32Array.from(a).sort()
  return s.length ? s[Math.floor(s.length / 2)]! : 0
}

export function importedSaeDir(project: Project, step: number, layer: number): string {
  return join(project.artifactsDir, 'saes', 'imported', `step${step}`, `layer${layer}`)
}

interface Planned {
  item: SaeImportItem
  sae: ForeignSae
  checkpointId: number
  step: number
  layer: number
}

/** What an import would do: every SAE found, attached to a checkpoint and layer, and every problem. */
async function plan(project: Project, req: SaeImportRequest): Promise<{ scan: SaeImportScan; planned: Planned[] }> {
  const { candidates, problems } = await findCandidates(req)
  const checkpoints = project.checkpoints.list()
  const storeLayers = [...new Set(project.activations.list().map((s) => s.layer))]
  const existing = project.saes.list()
  const planned: Planned[] = []
  const found: SaeImportItem[] = []
  const seen = new Set<string>()
  for (const { sae, step } of candidates) {
    const threshold = sae.rule.architecture === 'jumprelu' ? await sae.readThreshold() : null
    const layer = req.layer ?? sae.layer ?? (storeLayers.length === 1 ? storeLayers[0]! : null)
    const checkpoint = step === null ? undefined : checkpoints.find((c) => c.step === step)
    const item: SaeImportItem = {
      path: sae.path,
      format: sae.format,
      architecture: sae.rule.architecture,
      dIn: sae.d,
      dSae: sae.n,
      k: sae.rule.k,
      threshold: threshold ? { min: Math.min(...threshold), median: median(threshold), max: Math.max(...threshold) } : null,
      applyBDecToInput: sae.rule.applyBDecToInput,
      inputScaling: sae.rule.scaling.kind,
      dtype: sae.dtype,
      hook: sae.hook,
      step,
      checkpointId: checkpoint?.id ?? null,
      layer,
      notes: sae.notes
    }
    found.push(item)
    const problem = (reason: string): void => void problems.push({ path: sae.path, reason })
    if (step === null) problem('no checkpoint step: name the folder by step (step1000) or give --checkpoint STEP.')
    else if (!checkpoint) problem(`no registered checkpoint at step ${step}; register the checkpoint series first.`)
    else if (checkpoint.dModel !== sae.d) problem(`d_in ${sae.d} does not match the checkpoint's d_model ${checkpoint.dModel} at step ${step}.`)
    else if (layer === null) problem(`no layer: the SAE does not say which residual-stream layer it reads; give --layer L.`)
    else if (seen.has(`${step}/${layer}`)) problem(`a second SAE for step ${step}, layer ${layer}.`)
    else if (!req.replace && existing.some((s) => s.checkpointId === checkpoint.id && s.layer === layer)) {
      problem(
        `step ${step} already has a layer-${layer} SAE (${existing.find((s) => s.checkpointId === checkpoint.id && s.layer === layer)!.path}); ` +
          'import with --replace to make this one current (the old SAE, its feature set and labels are kept).'
      )
    } else {
      seen.add(`${step}/${layer}`)
      planned.push({ item, sae, checkpointId: checkpoint.id, step, layer })
    }
  }
  return { scan: { path: resolve(req.path), found, problems }, planned }
}

/** Looks without importing: what was found, and what could not be read and why. */
export async function scanSaeImport(project: Project, req: SaeImportRequest): Promise<SaeImportScan> {
  return (await plan(project, req)).scan
}

function finite(a: Float32Array, file: string, name: string): void {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) throw new UserError(`${file}: ${name} holds a non-finite value at index ${i}; the SAE is damaged.`)
}

async function writeConverted(dir: string, p: Planned): Promise<void> {
  const { sae, step, layer } = p
  const w = await sae.read()
  for (const [name, a] of Object.entries(w)) if (a) finite(a as Float32Array, sae.path, name)
  mkdirSync(dir, { recursive: true })
  const { d, n, rule } = sae
  const cfg = {
    architecture: rule.architecture,
    d_in: d,
    d_sae: n,
    ...(rule.k !== null ? { k: rule.k } : {}),
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: rule.applyBDecToInput,
    normalize_activations: SAELENS_NORMALIZE[rule.scaling.kind],
    reshape_activations: 'none',
    metadata: sae.metadata,
    featuretrace: {
      checkpoint_step: step,
      layer,
      preset: `import:${sae.format}`,
      input_scaling: rule.scaling.kind,
      scaling_factor: rule.scaling.factor,
      tokens_seen: 0,
      steps: 0,
      warm_started_from: null,
      imported_from: { format: sae.format, path: sae.path, dtype: sae.dtype, hook: sae.hook }
    }
  }
  await writeSafetensors(
    join(dir, WEIGHTS_FILE),
    {
      W_enc: { dtype: 'F32', shape: [d, n], data: w.W_enc },
      W_dec: { dtype: 'F32', shape: [n, d], data: w.W_dec },
      b_enc: { dtype: 'F32', shape: [n], data: w.b_enc },
      b_dec: { dtype: 'F32', shape: [d], data: w.b_dec },
      ...(w.threshold ? { threshold: { dtype: 'F32' as const, shape: [n], data: w.threshold } } : {})
    },
    { format: 'pt' }
  )
  if (w.sparsity) await writeSafetensors(join(dir, SPARSITY_FILE), { sparsity: { dtype: 'F32', shape: [n], data: w.sparsity } })
  // cfg.json last: a folder with it is complete.
  writeFileSync(join(dir, CFG_FILE), JSON.stringify(cfg, null, 2))
}

/**
 * Imports every SAE found, or nothing: all are read, checked and written to temporary folders first; only
 * when every one succeeded are they moved into place and registered, in one transaction.
 */
export async function importSaes(project: Project, req: SaeImportRequest): Promise<SaeInfo[]> {
  const { scan, planned } = await plan(project, req)
  if (scan.problems.length > 0) {
    const list = scan.problems.map((p) => `  ${p.reason.startsWith(p.path) ? p.reason : `${p.path}: ${p.reason}`}`).join('\n')
    throw new UserError(`Nothing was imported: ${scan.problems.length === 1 ? 'one SAE' : `${scan.problems.length} SAEs`} could not be read or attached.\n${list}`)
  }
  if (planned.length === 0) throw new UserError(`Nothing to import at ${scan.path}.`)
  const staged: { tmp: string; final: string; p: Planned }[] = []
  const moved: { final: string; old: string | null }[] = []
  try {
    for (const p of planned) {
      // Never over an SAE the project records: a replaced SAE keeps its folder, its feature set and its labels.
      const final = project.saes.freshPath(importedSaeDir(project, p.step, p.layer))
      const tmp = `${final}.partial-${process.pid}`
      rmSync(tmp, { recursive: true, force: true })
      staged.push({ tmp, final, p })
      await writeConverted(tmp, p)
    }
    for (const s of staged) {
      let old: string | null = null
      if (existsSync(s.final)) {
        old = `${s.final}.replaced-${process.pid}`
        renameSync(s.final, old)
      }
      moved.push({ final: s.final, old })
      renameSync(s.tmp, s.final)
    }
    const infos = project.db.transaction(() =>
      staged.map(({ final, p }) =>
        project.saes.upsert({
          checkpointId: p.checkpointId,
          layer: p.layer,
          path: final,
          preset: `import:${p.sae.format}`,
          d: p.sae.d,
          n: p.sae.n,
          k: p.sae.rule.k ?? 0,
          warmStarted: false,
          tokens: 0,
          steps: 0,
          fvu: null,
          explainedVariance: null,
          cosine: null,
          l0: null,
          deadFraction: null,
          backend: null
        })
      )
    )()
    for (const m of moved) if (m.old) rmSync(m.old, { recursive: true, force: true })
    return infos
  } catch (err) {
    // Undo in reverse: nothing half-imported.
    for (const m of moved.reverse()) {
      rmSync(m.final, { recursive: true, force: true })
      if (m.old) renameSync(m.old, m.final)
    }
    for (const s of staged) rmSync(s.tmp, { recursive: true, force: true })
    throw err
  }
}

// Importing SAEs trained elsewhere (SAELens, sparsify, Gemma Scope, llm-jp-sae): one SAE or a series of
// step folders, attached to the project's checkpoints by step. Each is converted into FeatureTrace's own
// SAELens layout under the project's artifacts, with its encoding rule in cfg.json, so feature statistics,
// labelling, drift (with matching) and formation use it exactly like an SAE trained here.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { basename, dirname, join, relative, resolve, sep } from 'node:path'
import type { Checkpoint, SaeImportItem, SaeImportRequest, SaeImportScan, SaeInfo } from '../../shared/api'
import { UserError } from '../../shared/api'
import { parseStep } from '../checkpoints/discover'
import { isSaeOnly } from '../checkpoints/sae-only'
import { describeSae, WHAT_WE_READ, type ForeignSae } from '../io/sae-formats'
import { STREAM_NAMES } from '../io/sae-formats/common'
import { stepOfModelFolder } from '../io/sae-formats/llm-jp-sae'
import { isSparsifyRunFile } from '../io/sae-formats/sparsify'
import { JobCancelled, type JobContext } from '../jobs/job'
import { ProgressMeter } from '../jobs/progress'
import type { Project } from '../project'
import { Sae } from './sae'

interface Candidate {
  sae: ForeignSae
  /** The step the folder name (or --checkpoint, or the SAE's own config or tree) gives. */
  step: number | null
  /** What was passed over beside it (training-state files of the run folder). */
  notes: string[]
}

/** A step in a folder name: step1000, iter_0001000, … or a model path's trailing step (llm-jp-sae's output tree). */
function stepOfName(name: string): number | null {
  return parseStep(name) ?? stepOfModelFolder(name)
}

/** What lies below a folder: the SAEs read, and the folders that look like SAEs but could not be read (and why). */
interface Below {
  saes: ForeignSae[]
  unreadable: { path: string; reason: string }[]
}

/** SAE folders below `dir` (up to `depth` levels), for step folders that hold a hookpoint subfolder. */
async function saesBelow(dir: string, depth: number, into: Below = { saes: [], unreadable: [] }): Promise<Below> {
  for (const name of readdirSync(dir).sort()) {
    const sub = join(dir, name)
    if (!statSync(sub).isDirectory()) continue
    let sae: ForeignSae | null = null
    try {
      sae = await describeSae(sub)
    } catch (err) {
      into.unreadable.push({ path: sub, reason: problemText(err) })
      continue
    }
    if (sae) into.saes.push(sae)
    else if (depth > 1) await saesBelow(sub, depth - 1, into)
  }
  return into
}

/** An SAE's place below `base` with forward slashes: its folder (a .npz names its folder). */
function placeOf(base: string, sae: ForeignSae): string {
  const at = sae.path.toLowerCase().endsWith('.npz') ? dirname(sae.path) : sae.path
  return relative(base, at).split(sep).join('/')
}

/**
 * What --hookpoint names below `base`: the path below `base` equal to it (layers.2 is not best/layers.2),
 * else the paths that end with it or lie under it (best/layers.2/layers.2). Without one, everything.
 */
function matchHookpoint(base: string, below: Below, hookpoint: string | undefined): Below {
  if (!hookpoint) return below
  const hp = hookpoint.replace(/\\/g, '/').replace(/^\/+|\/+$/g, '')
  const rel = (p: string): string =>
    relative(base, p.toLowerCase().endsWith('.npz') ? dirname(p) : p)
      .split(sep)
      .join('/')
  const pick = <T extends { path: string }>(xs: T[], exact: boolean): T[] =>
    xs.filter((x) => (exact ? rel(x.path) === hp : rel(x.path).endsWith(`/${hp}`) || rel(x.path).startsWith(`${hp}/`)))
  const exact = { saes: pick(below.saes, true), unreadable: pick(below.unreadable, true) }
  if (exact.saes.length || exact.unreadable.length) return exact
  return { saes: pick(below.saes, false), unreadable: pick(below.unreadable, false) }
}

/** How a found SAE is listed when the user must choose: its path below the folder, and its stream unless residual. */
function listed(base: string, saes: ForeignSae[]): string {
  return saes
    .map((s) => `${placeOf(base, s)}${s.stream.stream === 'residual' || s.stream.stream === 'none' ? '' : ` [${STREAM_NAMES[s.stream.stream]}]`}`)
    .join(', ')
}

/** sparsify's training-state files in a run folder (and its best/ copy), named relative to it. */
function trainingState(dir: string): string[] {
  const found: string[] = []
  const visit = (at: string, depth: number): void => {
    for (const name of readdirSync(at).sort()) {
      const p = join(at, name)
      const st = statSync(p)
      if (st.isFile() && isSparsifyRunFile(name)) found.push(relative(dir, p).split(sep).join('/'))
      else if (st.isDirectory() && depth > 0) visit(p, depth - 1)
    }
  }
  visit(dir, 2)
  return found
}

function stateNote(dir: string): string[] {
  const files = trainingState(dir)
  return files.length
    ? [
        `${dir}: ${files.join(', ')} ${files.length === 1 ? 'is' : 'are'} sparsify's training state (its Trainer saves optimizer, scheduler and counters beside the SAEs), not SAEs: not read.`
      ]
    : []
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
  if (single) return { candidates: [{ sae: single, step: req.step ?? single.step ?? stepOfName(basename(root)), notes: [] }], problems }
  // A file that is no SAE has nothing below it to look through.
  if (!statSync(root).isDirectory())
    return { candidates: [], problems: [{ path: root, reason: `is not an SAE FeatureTrace reads: expected ${WHAT_WE_READ}, or a folder holding them.` }] }
  const candidates: Candidate[] = []
  // Deep enough for a Hugging Face cache: models--google--gemma-scope-2b-pt-res/snapshots/<hash>/layer_L/width_W/average_l0_N.
  const DEPTH = 6
  const choose = '--hookpoint PATH (the path below the step folder: layers.2, best/layers.2, layer12/n32768_k32/lr0.001)'
  for (const name of readdirSync(root).sort()) {
    const sub = join(root, name)
    const step = stepOfName(name)
    if (step === null || !statSync(sub).isDirectory()) continue
    try {
      let sae = await describeSae(sub)
      if (!sae) {
        const below = matchHookpoint(sub, await saesBelow(sub, DEPTH), req.hookpoint)
        // A folder that looks like an SAE but cannot be read is never passed over in silence.
        if (below.unreadable.length) {
          problems.push(...below.unreadable)
          continue
        }
        const inside = below.saes
        if (inside.length === 0) {
          problems.push({ path: sub, reason: req.hookpoint ? `no SAE at hookpoint "${req.hookpoint}" below it.` : `no SAE found: expected ${WHAT_WE_READ}.` })
          continue
        }
        if (inside.length > 1) {
          problems.push({ path: sub, reason: `holds ${inside.length} SAEs (${listed(sub, inside)}); choose one with ${choose}.` })
          continue
        }
        sae = inside[0]!
      }
      candidates.push({ sae, step, notes: stateNote(sub) })
    } catch (err) {
      problems.push({ path: sub, reason: problemText(err) })
    }
  }
  // Step folders list as text (step100 before step30); the series is read in step order.
  candidates.sort((a, b) => (a.step ?? Infinity) - (b.step ?? Infinity))
  if (candidates.length === 0 && problems.length === 0) {
    // No step folders: one SAE somewhere below (a Gemma Scope release's layer_L/width_W/average_l0_N/params.npz, one model's llm-jp-sae tree).
    const below = matchHookpoint(root, await saesBelow(root, DEPTH), req.hookpoint)
    if (below.unreadable.length) return { candidates, problems: below.unreadable }
    const inside = below.saes
    if (inside.length === 1)
      return { candidates: [{ sae: inside[0]!, step: req.step ?? inside[0]!.step ?? stepOfName(basename(root)), notes: stateNote(root) }], problems }
    if (inside.length > 1) {
      problems.push({
        path: root,
        reason: `holds ${inside.length} SAEs and no step folders (${listed(root, inside)}); give one SAE's folder, or ${choose.replace('step folder', 'folder')}.`
      })
      return { candidates, problems }
    }
    problems.push({
      path: root,
      reason: `no SAE found: expected ${WHAT_WE_READ}, or a folder of step folders (step1000, iter_0001000, checkpoint-1000) holding them.`
    })
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
  /** null: an SAE-only checkpoint made for this step by the import. */
  checkpointId: number | null
  step: number
  layer: number
}

/**
 * The residual-stream layer an SAE is attached to, from its hook (or --layer), or why it cannot be: a
 * stream FeatureTrace does not harvest is refused whatever --layer says.
 */
function placeOnStream(
  sae: ForeignSae,
  req: SaeImportRequest,
  checkpoint: Checkpoint | undefined,
  storeLayers: number[]
): { layer: number | null; problem?: string; note?: string } {
  const { stream, layer } = sae.stream
  const hook = sae.hook ? ` (${sae.hook})` : ''
  switch (stream) {
    case 'residual':
      if (req.layer !== undefined && layer !== null && req.layer !== layer)
        return { layer: req.layer, note: `--layer ${req.layer} overrides layer ${layer}, which the hook${hook} reads.` }
      return { layer: req.layer ?? layer }
    case 'embed':
      if (layer === null || checkpoint?.modelType === 'gpt2') {
        return {
          layer: null,
          problem: `reads the token embeddings${hook} without the position embeddings GPT-2 adds; FeatureTrace's layer 0 includes them, so this SAE's inputs cannot be harvested.`
        }
      }
      return {
        layer: req.layer ?? layer,
        note: `the hook${hook} is the token embeddings: FeatureTrace's layer 0 for gpt_neox and llama (no learned positions).`
      }
    case 'none': {
      if (req.layer !== undefined || layer !== null) return { layer: req.layer ?? layer }
      if (storeLayers.length === 1)
        return {
          layer: storeLayers[0]!,
          note: `the SAE names no hook: attached to layer ${storeLayers[0]}, the project's only harvested layer (give --layer to choose another).`
        }
      return {
        layer: null,
        problem: 'no layer: the SAE does not say which residual-stream layer it reads; give --layer L (the residual stream after block L).'
      }
    }
    case 'unknown':
      if (req.layer !== undefined)
        return { layer: req.layer, note: `the hook${hook} is not one FeatureTrace recognises; attached to layer ${req.layer} as --layer says.` }
      return {
        layer: null,
        problem: `reads hook${hook || ' (unnamed)'}, which FeatureTrace does not recognise as the residual stream; if it is the residual stream after block L, give --layer L.`
      }
    default:
      return {
        layer: null,
        problem: `reads ${STREAM_NAMES[stream]}${hook}, not the residual stream, which is all FeatureTrace harvests: its inputs cannot be given to it here, so it is not imported${req.layer !== undefined ? ' (--layer does not change the stream an SAE reads)' : ''}.`
      }
  }
}

/** What an import would do: every SAE found, attached to a checkpoint and layer, and every problem. */
async function plan(project: Project, req: SaeImportRequest): Promise<{ scan: SaeImportScan; planned: Planned[] }> {
  const { candidates, problems } = await findCandidates(req)
  const checkpoints = project.checkpoints.list()
  // A project without weights takes SAE-only checkpoints without being asked.
  const saeOnly = req.saeOnly === true || !checkpoints.some((c) => !isSaeOnly(c))
  const storeLayers = [...new Set(project.activations.list().map((s) => s.layer))]
  const existing = project.saes.list()
  const planned: Planned[] = []
  const found: SaeImportItem[] = []
  const seen = new Set<string>()
  const newSteps = new Map<number, number>()
  for (const { sae, step, notes } of candidates) {
    const threshold = sae.rule.architecture === 'jumprelu' ? await sae.readThreshold() : null
    const checkpoint = step === null ? undefined : checkpoints.find((c) => c.step === step)
    const placed = placeOnStream(sae, req, checkpoint, storeLayers)
    const layer = placed.layer
    const newCheckpoint = !checkpoint && step !== null && saeOnly
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
      stream: sae.stream.stream,
      step,
      checkpointId: checkpoint?.id ?? null,
      newCheckpoint,
      layer,
      notes: [
        ...sae.notes,
        ...notes,
        ...(placed.note ? [placed.note] : []),
        ...(newCheckpoint
          ? [
              `step ${step} has no registered checkpoint: the import records it as an SAE-only checkpoint (no weights; drift, galaxy geometry and labels work on it, harvesting needs the model).`
            ]
          : [])
      ]
    }
    found.push(item)
    const problem = (reason: string): void => void problems.push({ path: sae.path, reason })
    if (placed.problem) problem(placed.problem)
    else if (step === null) problem('no checkpoint step: name the folder by step (step1000) or give --checkpoint STEP.')
    else if (!checkpoint && !saeOnly) {
      problem(
        `no registered checkpoint at step ${step}; register its folder first, or import with --sae-only to record step ${step} as an SAE-only checkpoint ` +
          '(no weights: drift, galaxy geometry and labels work on it; harvesting and statistics need the model or activations made elsewhere).'
      )
    } else if (checkpoint && checkpoint.dModel !== sae.d) problem(`d_in ${sae.d} does not match the checkpoint's d_model ${checkpoint.dModel} at step ${step}.`)
    else if (newCheckpoint && newSteps.has(step) && newSteps.get(step) !== sae.d)
      problem(`d_in ${sae.d} differs from the other SAE imported for the new SAE-only checkpoint at step ${step} (d_in ${newSteps.get(step)}).`)
    else if (layer === null) problem('no layer: give --layer L (the residual stream after block L).')
    else if (checkpoint && checkpoint.layers !== null && layer > checkpoint.layers)
      problem(`layer ${layer} does not exist at step ${step}: the checkpoint has ${checkpoint.layers} blocks (layers 0–${checkpoint.layers}).`)
    else if (seen.has(`${step}/${layer}`)) problem(`a second SAE for step ${step}, layer ${layer}.`)
    else if (checkpoint && !req.replace && existing.some((s) => s.checkpointId === checkpoint.id && s.layer === layer)) {
      problem(
        `step ${step} already has a layer-${layer} SAE (${existing.find((s) => s.checkpointId === checkpoint.id && s.layer === layer)!.path}); ` +
          'import with --replace to make this one current (the old SAE, its feature set and labels are kept).'
      )
    } else {
      seen.add(`${step}/${layer}`)
      if (newCheckpoint) newSteps.set(step, sae.d)
      planned.push({ item, sae, checkpointId: checkpoint?.id ?? null, step, layer })
    }
  }
  return { scan: { path: resolve(req.path), found, problems }, planned }
}

/** Looks without importing: what was found, and what could not be read and why. */
export async function scanSaeImport(project: Project, req: SaeImportRequest): Promise<SaeImportScan> {
  return (await plan(project, req)).scan
}

async function writeConverted(dir: string, p: Planned): Promise<void> {
  const { sae: found, step, layer } = p
  const sae = new Sae(await found.read())
  mkdirSync(dir, { recursive: true })
  // SAELens' hook for the layer it is attached to; the source's own hook is kept under imported_from.
  await sae.save(dir, {
    meta: {
      checkpoint_step: step,
      layer,
      preset: `import:${found.format}`,
      tokens_seen: 0,
      steps: 0,
      warm_started_from: null,
      imported_from: {
        format: found.format,
        path: found.path,
        dtype: found.dtype,
        hook: found.hook,
        stream: found.stream.stream,
        metadata: found.metadata,
        notes: found.notes
      }
    },
    modelName: typeof found.metadata.model_name === 'string' ? found.metadata.model_name : null,
    contextSize: typeof found.metadata.context_size === 'number' ? found.metadata.context_size : null,
    datasetPath: typeof found.metadata.dataset_path === 'string' ? found.metadata.dataset_path : null,
    prependBos: null
  })
}

/** An SAE converted into a temporary folder, with what registering it needs (plain data: it crosses from the worker). */
export interface StagedSae {
  tmp: string
  final: string
  checkpointId: number | null
  step: number
  layer: number
  d: number
  n: number
  k: number | null
  format: ForeignSae['format']
  hook: string | null
  source: string
  /** The source's model_name, as its metadata gave it. */
  modelName: unknown
}

/**
 * Reads, checks and converts every SAE found into temporary folders (the worker's part of an import), or throws
 * having removed them: nothing is registered here. Cancelled between SAEs.
 */
export async function stageSaeImport(project: Project, req: SaeImportRequest, ctx?: Pick<JobContext, 'signal' | 'progress'>): Promise<StagedSae[]> {
  const { scan, planned } = await plan(project, req)
  if (scan.problems.length > 0) {
    const list = scan.problems.map((p) => `  ${p.reason.startsWith(p.path) ? p.reason : `${p.path}: ${p.reason}`}`).join('\n')
    throw new UserError(
      `Nothing was imported: ${scan.problems.length === 1 ? 'one SAE' : `${scan.problems.length} SAEs`} could not be read or attached.\n${list}`
    )
  }
  if (planned.length === 0) throw new UserError(`Nothing to import at ${scan.path}.`)
  const staged: StagedSae[] = []
  const meter = new ProgressMeter(planned.length, 'SAE')
  try {
    for (const [i, p] of planned.entries()) {
      if (ctx?.signal.aborted) throw new JobCancelled()
      ctx?.progress(meter.update(i, `converting step ${p.step} layer ${p.layer} (${i + 1}/${planned.length})`))
      // Never over an SAE the project records: a replaced SAE keeps its folder, its feature set and its labels.
      const final = project.saes.freshPath(importedSaeDir(project, p.step, p.layer))
      const tmp = `${final}.partial-${process.pid}`
      rmSync(tmp, { recursive: true, force: true })
      const { sae } = p
      staged.push({
        tmp,
        final,
        checkpointId: p.checkpointId,
        step: p.step,
        layer: p.layer,
        d: sae.d,
        n: sae.n,
        k: sae.rule.k,
        format: sae.format,
        hook: sae.hook,
        source: sae.path,
        modelName: sae.metadata.model_name ?? null
      })
      await writeConverted(tmp, p)
    }
    ctx?.progress(meter.update(planned.length, 'converted'))
    return staged
  } catch (err) {
    for (const s of staged) {
      rmSync(s.tmp, { recursive: true, force: true })
      // The step folder made for it goes too when nothing else is in it.
      if (existsSync(dirname(s.tmp)) && readdirSync(dirname(s.tmp)).length === 0) rmSync(dirname(s.tmp), { recursive: true })
    }
    throw err
  }
}

/**
 * Moves staged SAEs into place and registers them in one transaction (the host's part of an import); on any
 * failure everything is undone, the temporary folders removed.
 */
export function commitSaeImport(project: Project, staged: StagedSae[]): SaeInfo[] {
  const moved: { final: string; old: string | null }[] = []
  try {
    for (const s of staged) {
      let old: string | null = null
      if (existsSync(s.final)) {
        old = `${s.final}.replaced-${process.pid}`
        renameSync(s.final, old)
      }
      moved.push({ final: s.final, old })
      renameSync(s.tmp, s.final)
    }
    const infos = project.db.transaction(() => {
      // Steps with no registered checkpoint become SAE-only checkpoints (no weights), one per step.
      const made = new Map<number, number>()
      for (const p of staged) {
        if (p.checkpointId !== null || made.has(p.step)) continue
        made.set(p.step, project.checkpoints.addWeightless(p.step, p.d, { imported_from: p.source, format: p.format, model_name: p.modelName }).id)
      }
      return staged.map((p) =>
        project.saes.upsert({
          checkpointId: p.checkpointId ?? made.get(p.step)!,
          layer: p.layer,
          path: p.final,
          preset: `import:${p.format}`,
          d: p.d,
          n: p.n,
          k: p.k ?? 0,
          warmStarted: false,
          tokens: 0,
          steps: 0,
          fvu: null,
          explainedVariance: null,
          cosine: null,
          l0: null,
          deadFraction: null,
          backend: null,
          hook: p.hook
        })
      )
    })()
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

/**
 * Imports every SAE found, or nothing: all are read, checked and written to temporary folders first; only
 * when every one succeeded are they moved into place and registered, in one transaction.
 */
export async function importSaes(project: Project, req: SaeImportRequest): Promise<SaeInfo[]> {
  return commitSaeImport(project, await stageSaeImport(project, req))
}

// When does a feature form? SAE-Track's progress measure (METHODS §2): with the final SAE on the final
// checkpoint's activations, take feature i's top 25 token positions; at every checkpoint t encode those
// positions with that checkpoint's SAE and average the cosine over all ordered pairs of their activation
// vectors (S_feat); do the same for 100 random positions fixed once (S_rand); M_i(t) = S_feat − S_rand.
// Variants: the same on raw activations, Jaccard of the active sets, weighted Jaccard Σmin/Σmax.
import { UserError } from '../../shared/api'
import { ActivationStore } from '../io/activation-store'
import { JobCancelled } from '../jobs/job'
import { Rng } from '../random'
import { OrtSaeEncoder } from '../ort/engine'
import { Sae } from '../sae/sae'
import { currentBackend } from '../tf/backend'

export const VARIANTS = ['sae', 'raw', 'jaccard', 'weightedJaccard'] as const
export type Variant = (typeof VARIANTS)[number]

export interface FormationCheckpoint {
  step: number
  sae: string
  activations: string
}

export interface FormationOptions {
  features: number[]
  topK?: number
  randomPositions?: number
  seed?: number
  /** M above which a feature counts as formed; the formation step is the first after which M stays above. */
  threshold?: number
  /** Called as the work advances (fraction in [0, 1]). */
  onProgress?: (fraction: number, message: string) => void
  /** Stops the work (JobCancelled) at the next shard or checkpoint. */
  signal?: AbortSignal
}

export interface FeatureFormation {
  feature: number
  /** The final SAE's top positions (global row indices of the activation stores). */
  positions: number[]
  m: Record<Variant, number[]>
  formationStep: Record<Variant, number | null>
}

export interface FormationResult {
  steps: number[]
  threshold: number
  topK: number
  randomPositions: number[]
  sRand: Record<Variant, number[]>
  features: FeatureFormation[]
}

/** Rows encoded per call, so the [rows, d_sae] pre-activations stay bounded (512 MiB at d_sae 32,768). */
const CODE_BATCH = 4096

/**
 * Sparse codes of rows [m, d]: for each row its active latents (value by index). With `ort` (the ort engine's
 * encoder) a TopK SAE encodes on onnxruntime (Sae.encodeRows).
 */
async function codes(s: Sae, rows: Float32Array, d: number, ort: OrtSaeEncoder | null): Promise<Map<number, number>[]> {
  const m = rows.length / d
  const out: Map<number, number>[] = []
  for (let r0 = 0; r0 < m; r0 += CODE_BATCH) {
    const b = Math.min(CODE_BATCH, m - r0)
    const { v, i, width: w } = await s.encodeRows(rows.subarray(r0 * d, (r0 + b) * d), b, ort)
    for (let r = 0; r < b; r++) {
      const map = new Map<number, number>()
      for (let j = 0; j < w; j++) if (v[r * w + j]! > 0) map.set(i[r * w + j]!, v[r * w + j]!)
      out.push(map)
    }
  }
  return out
}

function sparseCos(a: Map<number, number>, b: Map<number, number>): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (const [k, x] of a) {
    na += x * x
    const y = b.get(k)
    if (y !== undefined) dot += x * y
  }
  for (const y of b.values()) nb += y * y
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0
}

function jaccard(a: Map<number, number>, b: Map<number, number>): number {
  let inter = 0
  for (const k of a.keys()) if (b.has(k)) inter++
  const union = a.size + b.size - inter
  return union > 0 ? inter / union : 0
}

function weightedJaccard(a: Map<number, number>, b: Map<number, number>): number {
  let mn = 0
  let mx = 0
  for (const [k, x] of a) {
    const y = b.get(k) ?? 0
    mn += Math.min(x, y)
    mx += Math.max(x, y)
  }
  for (const [k, y] of b) if (!a.has(k)) mx += y
  return mx > 0 ? mn / mx : 0
}

function denseCos(rows: Float32Array, d: number, i: number, j: number): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let c = 0; c < d; c++) {
    const x = rows[i * d + c]!
    const y = rows[j * d + c]!
    dot += x * y
    na += x * x
    nb += y * y
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0
}

/** Mean of a similarity over all ordered pairs x ≠ x′ (symmetric, so over unordered pairs). */
function meanPairs(count: number, sim: (i: number, j: number) => number): number {
  let s = 0
  let pairs = 0
  for (let i = 0; i < count; i++) {
    for (let j = i + 1; j < count; j++) {
      s += sim(i, j)
      pairs++
    }
  }
  return pairs > 0 ? s / pairs : 0
}

/** Rows at given global indices, read shard by shard. */
async function rowsAt(store: ActivationStore, positions: number[]): Promise<Float32Array> {
  const d = store.d
  const out = new Float32Array(positions.length * d)
  const starts: number[] = []
  let acc = 0
  for (const s of store.manifest.shards) {
    starts.push(acc)
    acc += s.rows
  }
  const byShard = new Map<number, number[]>()
  positions.forEach((g, k) => {
    let s = starts.length - 1
    while (starts[s]! > g) s--
    const list = byShard.get(s)
    if (list) list.push(k)
    else byShard.set(s, [k])
  })
  for (const [s, ks] of byShard) {
    const { acts } = await store.readShard(s)
    for (const k of ks) {
      const local = positions[k]! - starts[s]!
      out.set(acts.subarray(local * d, (local + 1) * d), k * d)
    }
  }
  return out
}

function formationStep(steps: number[], m: number[], threshold: number): number | null {
  for (let t = 0; t < m.length; t++) if (m.slice(t).every((x) => x > threshold)) return steps[t]!
  return null
}

/**
 * SAE-Track's formation measure for `opts.features` over a series (steps in order, the last the final checkpoint).
 * Under the `ort` engine every encoding of a TopK SAE runs on onnxruntime. Errors: UserError for an empty series,
 * stores that do not hold the same positions, d mismatches and features that do not exist; JobCancelled.
 */
export async function computeFormation(series: FormationCheckpoint[], opts: FormationOptions): Promise<FormationResult> {
  const ort = currentBackend()?.name === 'ort' ? new OrtSaeEncoder() : null
  try {
    return await formationWith(series, opts, ort)
  } finally {
    await ort?.release()
  }
}

async function formationWith(series: FormationCheckpoint[], opts: FormationOptions, ort: OrtSaeEncoder | null): Promise<FormationResult> {
  if (series.length === 0) throw new UserError('Formation needs a series of checkpoints with SAEs and activations.')
  const topK = opts.topK ?? 25
  const threshold = opts.threshold ?? 0.5
  const final = series[series.length - 1]!
  const finalStore = await ActivationStore.open(final.activations)
  const stores = await Promise.all(series.map((c) => ActivationStore.open(c.activations)))
  for (const [t, s] of stores.entries()) {
    if (s.rows !== finalStore.rows || s.d !== finalStore.d) {
      throw new UserError(
        `${series[t]!.activations} does not hold the same token positions as the final checkpoint's store (${s.rows} vs ${finalStore.rows} rows). Harvest every checkpoint with the same corpus, context and seed.`
      )
    }
  }
  const d = finalStore.d
  // 1. The final SAE's top positions for each feature, over the final checkpoint's activations.
  const finalSae = await Sae.load(final.sae)
  if (finalSae.d !== d) {
    finalSae.dispose()
    throw new UserError(`${final.activations} has d=${d} but the SAE ${final.sae} expects d=${finalSae.d}.`)
  }
  const wanted = new Set(opts.features)
  const best = new Map<number, { v: number; row: number }[]>(opts.features.map((f) => [f, []]))
  // The final SAE's tensors go whatever happens below (a bad feature, a cancel).
  try {
    for (const f of opts.features)
      if (!Number.isInteger(f) || f < 0 || f >= finalSae.n) throw new UserError(`Feature ${f} does not exist: the SAEs have ${finalSae.n} latents.`)
    let base = 0
    for (let s = 0; s < finalStore.manifest.shards.length; s++) {
      const { acts } = await finalStore.readShard(s)
      const rows = acts.length / d
      for (let r0 = 0; r0 < rows; r0 += 4096) {
        if (opts.signal?.aborted) throw new JobCancelled()
        const m = Math.min(4096, rows - r0)
        const cs = await codes(finalSae, acts.subarray(r0 * d, (r0 + m) * d), d, ort)
        cs.forEach((c, r) => {
          for (const [f, v] of c) {
            if (!wanted.has(f)) continue
            const list = best.get(f)!
            list.push({ v, row: base + r0 + r })
            if (list.length > 4 * topK) list.sort((a, b) => b.v - a.v).splice(topK)
          }
        })
      }
      base += rows
      opts.onProgress?.((0.5 * (s + 1)) / finalStore.manifest.shards.length, `top positions: shard ${s + 1}/${finalStore.manifest.shards.length}`)
    }
  } finally {
    finalSae.dispose()
  }
  const positions = new Map(
    opts.features.map((f) => [
      f,
      best
        .get(f)!
        .sort((a, b) => b.v - a.v)
        .slice(0, topK)
        .map((x) => x.row)
    ])
  )
  // 2. Random positions, fixed once.
  const randomPositions = new Rng(opts.seed ?? 0).shuffle(Array.from({ length: finalStore.rows }, (_, i) => i)).slice(0, opts.randomPositions ?? 100)

  const empty = (): Record<Variant, number[]> => ({ sae: [], raw: [], jaccard: [], weightedJaccard: [] })
  const sRand = empty()
  const sFeat = new Map(opts.features.map((f) => [f, empty()]))
  const all = [...new Set([...randomPositions, ...[...positions.values()].flat()])]
  const at = new Map(all.map((g, i) => [g, i]))
  for (const [t, c] of series.entries()) {
    if (opts.signal?.aborted) throw new JobCancelled()
    const rows = await rowsAt(stores[t]!, all)
    const sae = t === series.length - 1 ? await Sae.load(final.sae) : await Sae.load(c.sae)
    if (sae.d !== d) {
      sae.dispose()
      throw new UserError(`${c.activations} has d=${d} but the SAE ${c.sae} expects d=${sae.d}.`)
    }
    let cs: Map<number, number>[]
    try {
      cs = await codes(sae, rows, d, ort)
    } finally {
      sae.dispose()
    }
    const stats = (pos: number[], into: Record<Variant, number[]>): void => {
      const idx = pos.map((g) => at.get(g)!)
      into.sae.push(meanPairs(idx.length, (i, j) => sparseCos(cs[idx[i]!]!, cs[idx[j]!]!)))
      into.raw.push(meanPairs(idx.length, (i, j) => denseCos(rows, d, idx[i]!, idx[j]!)))
      into.jaccard.push(meanPairs(idx.length, (i, j) => jaccard(cs[idx[i]!]!, cs[idx[j]!]!)))
      into.weightedJaccard.push(meanPairs(idx.length, (i, j) => weightedJaccard(cs[idx[i]!]!, cs[idx[j]!]!)))
    }
    stats(randomPositions, sRand)
    for (const f of opts.features) stats(positions.get(f)!, sFeat.get(f)!)
    opts.onProgress?.(0.5 + (0.5 * (t + 1)) / series.length, `M(t): step ${c.step} (${t + 1}/${series.length})`)
  }
  const steps = series.map((c) => c.step)
  return {
    steps,
    threshold,
    topK,
    randomPositions,
    sRand,
    features: opts.features.map((f) => {
      const m = empty()
      for (const v of VARIANTS) m[v] = sFeat.get(f)![v].map((x, t) => x - sRand[v][t]!)
      const formation = Object.fromEntries(VARIANTS.map((v) => [v, formationStep(steps, m[v], threshold)])) as Record<Variant, number | null>
      return { feature: f, positions: positions.get(f)!, m, formationStep: formation }
    })
  }
}

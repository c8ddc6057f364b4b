// The lobe scale of the feature cloud (METHODS.md §3): which features fire together in blocks of the
// corpus, five co-occurrence affinities, spectral clustering of them into lobes, and the two checks that
// lobes are visible in the geometry of the decoder rows (AMI against a geometry clustering, and a
// logistic regression from decoder row to lobe).
import * as tf from '@tensorflow/tfjs-core'
import { UserError } from '../../../shared/api'
import type { LobeClustering, LobeResult } from '../../../shared/geometry'
import { ActivationStore } from '../../io/activation-store'
import type { JobContext } from '../../jobs/job'
import { JobCancelled } from '../../jobs/job'
import { ProgressMeter } from '../../jobs/progress'
import { Rng } from '../../random'
import { Sae } from '../../sae/sae'
import { unitRows } from './linalg'
import { amiPermutationTest, balancedAccuracy, logisticRegression, spectralClustering } from './cluster'

/** Features clustered at most, unless the caller says otherwise. */
export const DEFAULT_MAX_FEATURES = 16384

export const AFFINITY_METRICS = ['simple_matching', 'jaccard', 'dice', 'overlap', 'phi'] as const
export type AffinityMetric = (typeof AFFINITY_METRICS)[number]

/** Which features fired anywhere in each block of the corpus. */
export interface BlockFirings {
  blocks: number
  features: number
  /** [blocks, features], 1 where the feature fired in the block. */
  fired: Uint8Array
  /** The document each block comes from, with its language tag and source. */
  doc: Int32Array
  lang: (string | null)[]
  source: string[]
}

export interface BlockOptions {
  /** Tokens per block (256). */
  blockSize?: number
  /** A feature fires when its activation exceeds this (TopK: among the top k, default 0). */
  threshold?: number
  /** Stop after this many stored rows. */
  maxRows?: number
}

const ENCODE_ROWS = 2048

/**
 * Encodes every stored row with the SAE and gathers, per non-overlapping block of `blockSize` consecutive
 * positions of one document, the features that fired. Blocks are keyed by (document, position / size), so
 * shuffled storage order does not matter; a block missing any of its positions (a document's tail, or a
 * window the harvest did not take) is dropped.
 */
export async function blockFirings(
  saeDir: string,
  storeDir: string,
  opts: BlockOptions = {},
  ctx?: Pick<JobContext, 'signal' | 'progress'>
): Promise<BlockFirings> {
  const sae = await Sae.load(saeDir)
  const store = await ActivationStore.open(storeDir)
  if (store.d !== sae.d) throw new UserError(`${storeDir} has d=${store.d} but the SAE ${saeDir} expects d=${sae.d}.`)
  const size = opts.blockSize ?? 256
  const threshold = opts.threshold ?? 0
  const { d, n } = sae
  const limit = Math.min(opts.maxRows ?? Infinity, store.rows)
  const open = new Map<number, { doc: number; tokens: number; fired: Uint8Array }>()
  // The SAE's own rule (TopK, or an imported JumpReLU's thresholds): "fires" means active in its code.
  const meter = new ProgressMeter(limit, 'rows')
  let done = 0
  try {
    for (let s = 0; s < store.manifest.shards.length && done < limit; s++) {
      const shard = await store.readShard(s)
      const rows = Math.min(shard.doc.length, limit - done)
      for (let r0 = 0; r0 < rows; r0 += ENCODE_ROWS) {
        if (ctx?.signal.aborted) throw new JobCancelled()
        const count = Math.min(ENCODE_ROWS, rows - r0)
        const x = tf.tensor2d(shard.acts.subarray(r0 * d, (r0 + count) * d), [count, d])
        const e = sae.encode(x)
        const k = e.values.shape[1]
        const v = e.values.dataSync() as Float32Array
        const i = e.indices.dataSync() as Int32Array
        tf.dispose([x, e.values, e.indices])
        for (let r = 0; r < count; r++) {
          const doc = shard.doc[r0 + r]!
          const key = doc * 1e6 + Math.floor(shard.position[r0 + r]! / size)
          let block = open.get(key)
          if (!block) open.set(key, (block = { doc, tokens: 0, fired: new Uint8Array(n) }))
          block.tokens++
          for (let j = 0; j < k; j++) if (v[r * k + j]! > threshold) block.fired[i[r * k + j]!] = 1
        }
        done += count
        ctx?.progress(meter.update(done, `encoding rows (${open.size} blocks open)`))
      }
    }
  } finally {
    sae.dispose()
  }
  const complete = [...open.entries()].filter(([, b]) => b.tokens === size).sort((a, b) => a[0] - b[0])
  if (complete.length < 2) {
    throw new UserError(
      `${storeDir} has ${complete.length} complete ${size}-token block(s); harvest longer documents or more tokens, or choose a smaller block size.`
    )
  }
  const docs = new Map(store.documents().map((x) => [x.id, x]))
  const fired = new Uint8Array(complete.length * n)
  complete.forEach(([, b], t) => fired.set(b.fired, t * n))
  return {
    blocks: complete.length,
    features: n,
    fired,
    doc: Int32Array.from(complete, ([, b]) => b.doc),
    lang: complete.map(([, b]) => docs.get(b.doc)?.lang ?? null),
    source: complete.map(([, b]) => docs.get(b.doc)?.source ?? '')
  }
}

/**
 * n_11 for every pair of the chosen features (how many blocks both fired in), [m, m], and n_i. Counted
 * block by block over the features that fired in it: a block's firing set is sparse (a few percent of the
 * latents), so Σ_blocks |set|² increments are far fewer than the 2·T·m² multiply-adds of a dense matMul
 * of the 0/1 block matrix with itself (8.4 TFLOP at 4k blocks × 32k latents).
 */
export function cooccurrence(
  fired: Uint8Array,
  T: number,
  n: number,
  features: ArrayLike<number>,
  signal?: AbortSignal
): { n11: Float32Array; ni: Float64Array } {
  const m = features.length
  const pos = new Int32Array(n).fill(-1)
  for (let c = 0; c < m; c++) pos[features[c]!] = c
  const n11 = new Float32Array(m * m)
  const active = new Int32Array(m)
  for (let t = 0; t < T; t++) {
    if (signal?.aborted) throw new JobCancelled()
    let count = 0
    const row = t * n
    for (let f = 0; f < n; f++) if (fired[row + f] && pos[f]! >= 0) active[count++] = pos[f]!
    // Upper triangle only (a ≤ b); mirrored below.
    for (let x = 0; x < count; x++) {
      const a = active[x]!
      const base = a * m
      for (let y = x; y < count; y++) {
        const b = active[y]!
        if (b >= a) n11[base + b]!++
        else n11[b * m + a]!++
      }
    }
  }
  for (let a = 0; a < m; a++) for (let b = a + 1; b < m; b++) n11[b * m + a] = n11[a * m + b]!
  const ni = new Float64Array(m)
  for (let c = 0; c < m; c++) ni[c] = n11[c * m + c]!
  return { n11, ni }
}

/** One affinity from the counts, as METHODS.md defines them; NaN (e.g. a feature in no block) becomes 0. */
export function affinityValue(metric: AffinityMetric, n11: number, ni: number, nj: number, T: number): number {
  let v: number
  switch (metric) {
    case 'simple_matching':
      v = (T - ni - nj + 2 * n11) / T
      break
    case 'jaccard':
      v = n11 / (ni + nj - n11)
      break
    case 'dice':
      v = (2 * n11) / (ni + nj)
      break
    case 'overlap':
      v = n11 / Math.min(ni, nj)
      break
    case 'phi': {
      const n10 = ni - n11
      const n01 = nj - n11
      const n00 = T - ni - nj + n11
      v = (n11 * n00 - n10 * n01) / Math.sqrt(ni * (T - ni) * nj * (T - nj)) + 1
      break
    }
  }
  return Number.isFinite(v) ? v : 0
}

/** Turns n_11 [m, m] into the affinity in place. */
export function affinityFromCounts(n11: Float32Array, ni: Float64Array, T: number, metric: AffinityMetric): Float32Array {
  const m = ni.length
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) n11[i * m + j] = affinityValue(metric, n11[i * m + j]!, ni[i]!, ni[j]!, T)
  return n11
}

/** Angular similarity 1 − arccos(cos)/π of unit rows U [m, d], [m, m]. */
export function angularAffinity(U: Float32Array, m: number, d: number): Float32Array {
  const ut = new Float32Array(d * m)
  for (let i = 0; i < m; i++) for (let j = 0; j < d; j++) ut[j * m + i] = U[i * d + j]!
  const out = new Float32Array(m * m)
  const right = tf.tensor2d(ut, [d, m])
  const CHUNK = 2048
  for (let r0 = 0; r0 < m; r0 += CHUNK) {
    const rows = Math.min(CHUNK, m - r0)
    const part = tf.tidy(() => tf.matMul(tf.tensor2d(U.subarray(r0 * d, (r0 + rows) * d), [rows, d]), right))
    out.set(part.dataSync() as Float32Array, r0 * m)
    part.dispose()
  }
  right.dispose()
  for (let i = 0; i < out.length; i++) out[i] = 1 - Math.acos(Math.max(-1, Math.min(1, out[i]!))) / Math.PI
  return out
}

/** For each block, the lobe with the largest fraction of its features firing (−1 when none fired). */
export function blockWinners(fired: Uint8Array, T: number, n: number, features: ArrayLike<number>, labels: Int32Array, k: number): Int32Array {
  const size = new Float64Array(k)
  for (let c = 0; c < labels.length; c++) size[labels[c]!] = size[labels[c]!]! + 1
  const winners = new Int32Array(T)
  const frac = new Float64Array(k)
  for (let t = 0; t < T; t++) {
    frac.fill(0)
    for (let c = 0; c < features.length; c++) if (fired[t * n + features[c]!]) frac[labels[c]!] = frac[labels[c]!]! + 1
    let best = -1
    let bestV = 0
    for (let l = 0; l < k; l++) {
      const v = size[l]! > 0 ? frac[l]! / size[l]! : 0
      if (v > bestV) {
        bestV = v
        best = l
      }
    }
    winners[t] = best
  }
  return winners
}

/** How often each lobe wins the blocks of each corpus subset (rows: subsets, columns: lobes). */
export function winnersBySubset(winners: Int32Array, tags: (string | null)[], k: number): { subsets: string[]; counts: number[][] } {
  const subsets = [...new Set(tags.map((t) => t ?? '(untagged)'))].sort()
  const counts = subsets.map(() => new Array<number>(k).fill(0))
  winners.forEach((w, t) => {
    if (w >= 0) counts[subsets.indexOf(tags[t] ?? '(untagged)')]![w]!++
  })
  return { subsets, counts }
}

export interface LobeOptions extends BlockOptions {
  ks?: number[]
  metric?: AffinityMetric
  /** Permutations for the AMI null (100). */
  permutations?: number
  /** Cap on the features clustered: the most often firing ones (default 16,384). */
  maxFeatures?: number
  /** Features shown on the 2-D map (a subsample; default 2,000). */
  mapPoints?: number
  seed?: number
}

/** Lobes from block firings and decoder rows: every k in `ks`, with both validations. */
export async function lobesFromFirings(
  firings: BlockFirings,
  Wdec: Float32Array,
  d: number,
  opts: LobeOptions = {},
  ctx?: Pick<JobContext, 'signal' | 'progress'>
): Promise<LobeResult> {
  const { blocks: T, features: n, fired } = firings
  const metric = opts.metric ?? 'phi'
  const ks = opts.ks ?? [2, 3, 4, 8]
  const seed = opts.seed ?? 0
  const counts = new Float64Array(n)
  for (let t = 0; t < T; t++) for (let f = 0; f < n; f++) counts[f] = counts[f]! + fired[t * n + f]!
  let features = Array.from({ length: n }, (_, f) => f).filter((f) => counts[f]! > 0)
  const neverFired = n - features.length
  let capped = 0
  // Spectral clustering holds the dense m × m affinity (1 GiB of f32 at 16,384): cap m by default.
  const cap = opts.maxFeatures ?? DEFAULT_MAX_FEATURES
  if (features.length > cap) {
    capped = features.length - cap
    features = features
      .sort((a, b) => counts[b]! - counts[a]! || a - b)
      .slice(0, cap)
      .sort((a, b) => a - b)
  }
  const m = features.length
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 2 || k >= m) throw new UserError(`k = ${k} is not between 2 and ${m - 1}, the number of features that fired minus one.`)
  }
  const report = (fraction: number, message: string): void => ctx?.progress({ fraction, rate: null, rateUnit: null, etaSeconds: null, message })
  report(0, `co-occurrence of ${m} features over ${T} blocks`)
  const { n11, ni } = cooccurrence(fired, T, n, features, ctx?.signal)
  const affinity = affinityFromCounts(n11, ni, T, metric)
  const U = unitRows(Wdec, d, features)
  const geometry = angularAffinity(U, m, d)
  const rng = new Rng(seed + 17)
  const random = new Float32Array(m * d)
  for (let c = 0; c < m; c++) {
    let s = 0
    for (let j = 0; j < d; j++) s += (random[c * d + j] = rng.gaussian()) ** 2
    for (let j = 0; j < d; j++) random[c * d + j] = random[c * d + j]! / Math.sqrt(s)
  }
  const split = Math.floor(0.8 * m)
  const clusterings: LobeClustering[] = []
  for (const [ki, k] of ks.entries()) {
    if (ctx?.signal.aborted) throw new JobCancelled()
    report(0.1 + (0.8 * ki) / ks.length, `k = ${k}: spectral clustering`)
    const co = spectralClustering(affinity, m, k, { seed, signal: ctx?.signal })
    const geo = spectralClustering(geometry, m, k, { seed, signal: ctx?.signal })
    const ami = amiPermutationTest(geo.labels, co.labels, opts.permutations ?? 100, seed)
    const yTrain = co.labels.slice(0, split)
    const yTest = co.labels.slice(split)
    const predicted = logisticRegression(U.slice(0, split * d), yTrain, U.slice(split * d), d, k)
    const predictedNull = logisticRegression(random.slice(0, split * d), yTrain, random.slice(split * d), d, k)
    const winners = blockWinners(fired, T, n, features, co.labels, k)
    clusterings.push({
      k,
      labels: Array.from(co.labels),
      geometry_labels: Array.from(geo.labels),
      ami,
      balanced_accuracy: balancedAccuracy(yTest, predicted),
      balanced_accuracy_null: balancedAccuracy(yTest, predictedNull),
      winners: { by_lang: winnersBySubset(winners, firings.lang, k), by_source: winnersBySubset(winners, firings.source, k) },
      spectral: { eigenvalues: co.eigenvalues, iterations: co.iterations, residual: co.residual }
    })
  }
  report(0.9, '2-D map of decoder rows')
  const map = await featureMap(U, m, d, features, opts.mapPoints ?? 2000, seed)
  report(1, 'done')
  return {
    metric,
    block_size: opts.blockSize ?? 256,
    threshold: opts.threshold ?? 0,
    blocks: T,
    latents: n,
    features,
    excluded: { never_fired: neverFired, capped },
    clusterings,
    map
  }
}

/** UMAP (umap-js, cosine distance) of a subsample of unit decoder rows, for the lobe map. */
export async function featureMap(
  U: Float32Array,
  m: number,
  d: number,
  features: number[],
  points: number,
  seed: number
): Promise<{ features: number[]; xy: [number, number][] }> {
  const { UMAP } = await import('umap-js')
  const rng = new Rng(seed + 5)
  const chosen = rng
    .shuffle(Array.from({ length: m }, (_, i) => i))
    .slice(0, Math.min(points, m))
    .sort((a, b) => a - b)
  if (chosen.length < 3) return { features: chosen.map((c) => features[c]!), xy: chosen.map(() => [0, 0]) }
  const data = chosen.map((c) => Array.from(U.subarray(c * d, (c + 1) * d)))
  const umap = new UMAP({ nComponents: 2, nNeighbors: Math.min(15, chosen.length - 1), minDist: 0.1, random: () => rng.next(), distanceFn: cosineDistance })
  const xy = umap.fit(data) as [number, number][]
  return { features: chosen.map((c) => features[c]!), xy: xy.map((p) => [p[0]!, p[1]!]) }
}

function cosineDistance(a: number[], b: number[]): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!
  return 1 - s
}

/** The lobes of one SAE on its activation store. */
export async function lobesOfSae(saeDir: string, storeDir: string, opts: LobeOptions = {}, ctx?: Pick<JobContext, 'signal' | 'progress'>): Promise<LobeResult> {
  const firings = await blockFirings(saeDir, storeDir, opts, ctx)
  const sae = await Sae.load(saeDir)
  return lobesFromFirings(firings, sae.weights.W_dec, sae.d, opts, ctx)
}

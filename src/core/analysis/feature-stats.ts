// Feature statistics for one SAE over an activation store: density, max and mean activation, a 50-bin
// log-spaced histogram, examples (Inaba et al.'s sampler, top-N by activation, and samples from
// activation intervals, each with the whole context's per-token activations), the 10 nearest features by
// decoder cosine and by activation correlation, the language of each feature, and the tokens each feature
// promotes and suppresses through the checkpoint's head (logit effects).
import * as tf from '@tensorflow/tfjs-core'
import { EXAMPLE_INTERVALS, UserError } from '../../shared/api'
import { ActivationStore, heldOutMasks, sequencesOf, type StoreSequence as Sequence } from '../io/activation-store'
import type { JobContext } from '../jobs/job'
import { JobCancelled } from '../jobs/job'
import { ProgressMeter } from '../jobs/progress'
import { Sae } from '../sae/sae'
import { unitRows } from '../sae/topk'
import type { FeatureRecord, StoredExample, StoredLogitEffects } from '../store/feature-blobs'
import { CheckpointFolder } from '../lm/checkpoint'
import { OrtDenseProducts, OrtSaeEncoder } from '../ort/engine'
import { currentBackend } from '../tf/backend'
import { transpose } from '../matrix'
import { activationCorrelations, SparseRowsBuilder } from './correlations'
import { classifyFeature, PAPER_RULE, scriptRule, tokenText, type LanguageClassification } from './language'
import { accumulateRowScales, computeLogitEffects, disposeLmHead, readLmHead, residualUnitFactor } from './logit-effects'
import { TopN } from './top-n'

export interface FeatureStatsOptions {
  sae: string
  activations: string
  /** Inaba et al.: the first this many sequences where the feature is in the top-k above 0.7 × its max. */
  paperExamples?: number
  paperThreshold?: number
  topN?: number
  intervals?: number
  perInterval?: number
  neighbours?: number
  /** Stop after this many rows (whole sequences). */
  maxRows?: number
  /**
   * How an example's language is read: the paper's English/Japanese rule on the most active token, Unicode
   * scripts per language (e.g. {"en": ["Latin"], "ko": ["Hangul"]}), or the corpus's language tag of the
   * example's document.
   */
  language?: { rule: 'paper' } | { rule: 'script'; scripts: Record<string, string[]> } | { rule: 'tags' }
  /** Share above which a feature is specific to one language (default 0.9). */
  languageThreshold?: number
  /** 'held-out' (default): only the context windows SAE training never saw; 'all': every row. */
  rows?: 'held-out' | 'all'
  /** Neighbours by activation correlation per feature (default 10). */
  correlations?: number
  /**
   * The SAE's checkpoint folder, whose head gives the logit effects; null: an SAE-only checkpoint (no weights);
   * undefined: not asked for.
   */
  checkpoint?: string | null
}

export interface FeatureStatsResult {
  /** False when the store was too small to hold any window out and every row was used. */
  heldOutOnly: boolean
  features: FeatureRecord[]
  /** Token texts: StoredExample.tokens index into this. */
  tokens: string[]
  rows: number
  sequences: number
  /** How the logit effects were computed (tensors, scale), or why there are none. */
  logitNote: string | null
}

const HIST_BINS = 50
const LOGIT_TOP = 10
const LOGIT_BINS = 40
const BATCH_ROWS = 2048

export async function computeFeatureStats(opts: FeatureStatsOptions, ctx: JobContext): Promise<FeatureStatsResult> {
  const sae = await Sae.load(opts.sae)
  const store = await ActivationStore.open(opts.activations)
  if (store.d !== sae.d) throw new UserError(`${opts.activations} has d=${store.d} but the SAE ${opts.sae} expects d=${sae.d}.`)
  const { d, n } = sae
  const p = sae.params
  const paperN = opts.paperExamples ?? 50
  const threshold = opts.paperThreshold ?? 0.7
  const topN = opts.topN ?? 20
  const intervals = opts.intervals ?? EXAMPLE_INTERVALS
  const perInterval = opts.perInterval ?? 2
  let masks = (opts.rows ?? 'held-out') === 'held-out' ? await heldOutMasks(store) : null
  // A store of fewer than ten context windows has none held out: use every row, and say so.
  if (masks && masks.every((m) => m.every((x) => x === 0))) masks = null
  const heldOutOnly = masks !== null
  const available = masks ? masks.reduce((a, m) => a + m.reduce((x, y) => x + y, 0), 0) : store.rows
  const limit = Math.min(opts.maxRows ?? Infinity, available)
  const context = store.manifest.context
  const meter = new ProgressMeter(2 * limit, 'rows')
  let progressRows = 0
  // Under `ort` the heavy dense products (encoding the rows, the decoder-cosine neighbours, the logit effects) run on
  // onnxruntime with every core; tfjs (wasm, one thread) keeps the rest. The sessions are released when the job ends.
  const ort = currentBackend()?.name === 'ort' ? { encoder: new OrtSaeEncoder(), products: new OrtDenseProducts() } : null

  /** Visits the store's sequences in file order with their sparse codes (k pairs per row, as wide as the block needs). */
  async function scan(
    visit: (seq: Sequence, v: Float32Array, i: Int32Array, k: number, tokens: Int32Array, codeStart: number, docs: Int32Array) => void,
    pass: string,
    onBlock?: (block: Float32Array, count: number) => void
  ): Promise<{ rows: number; sequences: number }> {
    let rows = 0
    let sequences = 0
    for (let s = 0; s < store.manifest.shards.length && rows < limit; s++) {
      const shard = await store.readShard(s)
      const seqs = sequencesOf(shard.doc, shard.position, context).filter((q) => !masks || masks[s]![q.start] === 1)
      let b = 0
      while (b < seqs.length && rows < limit) {
        // A block of whole sequences, about BATCH_ROWS rows.
        let e = b
        let count = 0
        while (e < seqs.length && (count === 0 || count + seqs[e]!.length <= BATCH_ROWS) && rows + count < limit) count += seqs[e++]!.length
        // Gather the block's windows (held-out ones need not be adjacent) into one batch.
        const block = new Float32Array(count * d)
        const offsets: number[] = []
        let o = 0
        for (let q = b; q < e; q++) {
          const sq = seqs[q]!
          block.set(shard.acts.subarray(sq.start * d, (sq.start + sq.length) * d), o * d)
          offsets.push(o)
          o += sq.length
        }
        onBlock?.(block, count)
        const codes = await sae.encodeRows(block, count, ort?.encoder ?? null)
        for (let q = b; q < e; q++) visit(seqs[q]!, codes.v, codes.i, codes.width, shard.token, offsets[q - b]!, shard.doc)
        rows += count
        sequences += e - b
        progressRows += count
        ctx.progress(meter.update(progressRows, `${pass}: ${rows.toLocaleString('en')} rows`))
        if (ctx.signal.aborted) throw new JobCancelled()
        b = e
      }
    }
    return { rows, sequences }
  }

  try {
    // Pass 1: firing counts, sums and maxima; the sparse codes (for correlations) and the row scales (for the
    // logit effects' residual units).
    const count = new Float64Array(n)
    const sum = new Float64Array(n)
    const max = new Float32Array(n)
    const codesRead = new SparseRowsBuilder()
    const rowScales = { sumNorm: 0, sumStd: 0, count: 0 }
    const perToken = !['none', 'constant'].includes(sae.rule.scaling.kind)
    const { rows, sequences } = await scan(
      (seq, v, i, k, _tokens, codeStart) => {
        for (let r = codeStart; r < codeStart + seq.length; r++) {
          codesRead.addRow(v, i, r * k, k)
          for (let j = 0; j < k; j++) {
            const a = v[r * k + j]!
            if (a <= 0) continue
            const f = i[r * k + j]!
            count[f]!++
            sum[f]! += a
            if (a > max[f]!) max[f] = a
          }
        }
      },
      'statistics',
      perToken ? (block, c) => accumulateRowScales(block, c, d, rowScales) : undefined
    )
    if (rows === 0) throw new UserError(`${opts.activations} holds no rows.`)

    // Pass 2: histograms and examples, sequence by sequence.
    const hist = Array.from({ length: n }, () => new Float32Array(HIST_BINS))
    const lo = Float32Array.from(max, (m) => m * 1e-3)
    const paper: StoredExample[][] = Array.from({ length: n }, () => [])
    // The document language of each paper example, for the 'tags' rule.
    const paperLangs: (string | null)[][] = Array.from({ length: n }, () => [])
    const docLang = new Map(store.documents().map((doc) => [doc.id, doc.lang]))
    const top = Array.from({ length: n }, () => new TopN<StoredExample>(topN))
    const inInterval: StoredExample[][][] = Array.from({ length: n }, () => Array.from({ length: intervals }, () => []))
    const tokenIndex = new Map<number, number>()
    const tokenOf = (id: number): number => {
      if (!tokenIndex.has(id)) tokenIndex.set(id, tokenIndex.size)
      return tokenIndex.get(id)!
    }
    let shardDocs: Int32Array | null = null
    await scan((seq, v, i, k, tokens, codeStart, docs) => {
      shardDocs = docs
      const traces = new Map<number, Float32Array>()
      for (let t = 0; t < seq.length; t++) {
        const r = codeStart + t
        for (let j = 0; j < k; j++) {
          const a = v[r * k + j]!
          if (a <= 0) continue
          const f = i[r * k + j]!
          let tr = traces.get(f)
          if (!tr) traces.set(f, (tr = new Float32Array(seq.length)))
          tr[t] = a
          const m = max[f]!
          const bin = a <= lo[f]! ? 0 : Math.min(HIST_BINS - 1, Math.floor((HIST_BINS * Math.log(a / lo[f]!)) / Math.log(m / lo[f]!)))
          hist[f]![bin]!++
        }
      }
      let seqTokens: number[] | null = null
      const example = (sampler: StoredExample['sampler'], acts: Float32Array): StoredExample => {
        seqTokens ??= Array.from(tokens.subarray(seq.start, seq.start + seq.length), tokenOf)
        return { sampler, tokens: seqTokens, acts }
      }
      for (const [f, tr] of traces) {
        const peak = tr.reduce((a, b) => Math.max(a, b), 0)
        if (paper[f]!.length < paperN && peak > threshold * max[f]!) {
          paper[f]!.push(example('paper', tr))
          paperLangs[f]!.push(docLang.get(shardDocs![seq.start]!) ?? null)
        }
        top[f]!.offer(peak, () => example('top', tr))
        const bucket = Math.min(intervals - 1, Math.floor((intervals * peak) / max[f]!))
        if (inInterval[f]![bucket]!.length < perInterval) inInterval[f]![bucket]!.push(example('interval', tr))
      }
    }, 'examples')

    // Nearest features by decoder cosine, a block of rows at a time against all rows.
    const neighbours = opts.neighbours ?? 10
    const near: { feature: number; cosine: number }[][] = []
    const unit = unitRows(p.Wdec)
    // Under ort the [block, n] cosines and their top-k are computed on onnxruntime (every core) from host copies,
    // the unit rows transposed on the host; otherwise in tfjs against its transpose.
    let host: { products: OrtDenseProducts; unit: Float32Array; unitT: Float32Array } | null = null
    if (ort) {
      const rows = (await unit.data()) as Float32Array
      host = { products: ort.products, unit: rows, unitT: transpose(rows, n, d) }
    }
    const unitT = host ? null : tf.transpose(unit)
    const block = Math.max(1, Math.floor((64 * 2 ** 20) / (4 * n)))
    for (let s = 0; s < n; s += block) {
      const m = Math.min(block, n - s)
      const kk = Math.min(n, neighbours + 1)
      let cv: Float32Array
      let ci: Int32Array
      if (host) {
        ;({ values: cv, indices: ci } = await host.products.productTopK(host.unit.subarray(s * d, (s + m) * d), host.unitT, d, n, kk))
      } else {
        const { values, indices } = tf.tidy(() => tf.topk(tf.matMul(tf.slice(unit, [s, 0], [m, d]), unitT!), kk))
        ;[cv, ci] = (await Promise.all([values.data(), indices.data()])) as [Float32Array, Int32Array]
        tf.dispose([values, indices])
      }
      for (let r = 0; r < m; r++) {
        const list: { feature: number; cosine: number }[] = []
        for (let j = 0; j < kk && list.length < neighbours; j++) if (ci[r * kk + j] !== s + r) list.push({ feature: ci[r * kk + j]!, cosine: cv[r * kk + j]! })
        near.push(list)
      }
      ctx.progress({ fraction: 1, rate: null, rateUnit: null, etaSeconds: null, message: `neighbours: ${Math.min(n, s + m)} / ${n}` })
    }
    tf.dispose(unitT ? [unit, unitT] : [unit])

    ctx.progress({ fraction: 1, rate: null, rateUnit: null, etaSeconds: null, message: 'neighbours by activation correlation' })
    const correlated = activationCorrelations(codesRead.build(), n, opts.correlations ?? 10)
    if (ctx.signal.aborted) throw new JobCancelled()

    const texts = [...tokenIndex.keys()].map((id) => store.tokenText(id))
    const logit = opts.checkpoint === undefined ? null : await logitEffectsOf(opts.checkpoint, residualUnitFactor(sae.rule.scaling, rowScales))
    const logitNote = opts.checkpoint === undefined ? null : logit!.note
    // Logit tokens join the set's token table (the example tokens keep their indices).
    const logitText = (id: number): number => {
      if (!tokenIndex.has(id)) {
        tokenIndex.set(id, tokenIndex.size)
        texts.push(logit!.text(id))
      }
      return tokenIndex.get(id)!
    }
    const language = opts.language ?? { rule: 'paper' }
    const langThreshold = opts.languageThreshold ?? 0.9
    const rule = language.rule === 'script' ? scriptRule(language.scripts, 'other') : PAPER_RULE
    const classify = (f: number, examples: { tokens: string[]; acts: number[] }[]): LanguageClassification => {
      if (language.rule !== 'tags') return classifyFeature(examples, rule, langThreshold)
      const counts: Record<string, number> = {}
      for (const l of paperLangs[f]!) if (l) counts[l] = (counts[l] ?? 0) + 1
      const total = Object.values(counts).reduce((a, b) => a + b, 0)
      const major = Object.entries(counts).find(([, c]) => c / total > langThreshold)
      return { counts, class: major ? major[0] : 'mix' }
    }
    const features: FeatureRecord[] = []
    for (let f = 0; f < n; f++) {
      const examples = [...paper[f]!, ...top[f]!.sorted().map((x) => x.item), ...inInterval[f]!.flat()]
      const forLanguage = (paper[f]!.length ? paper[f]! : top[f]!.sorted().map((x) => x.item)).map((e) => ({
        tokens: e.tokens.map((t) => texts[t]!),
        acts: Array.from(e.acts)
      }))
      const lang = count[f]! > 0 ? classify(f, forLanguage) : null
      const topTokens = [...new Set(top[f]!.sorted().map(({ item: ex }) => tokenText(texts[ex.tokens[ex.acts.indexOf(Math.max(...ex.acts))]!]!).trim()))]
      const h = new Float32Array(HIST_BINS + 2)
      h[0] = lo[f]!
      h[1] = max[f]!
      h.set(hist[f]!, 2)
      features.push({
        feature: f,
        density: count[f]! / rows,
        maxAct: max[f]!,
        meanAct: count[f]! > 0 ? sum[f]! / count[f]! : null,
        dead: count[f] === 0,
        langClass: lang?.class ?? null,
        langCounts: lang?.counts ?? null,
        topTokens: topTokens.slice(0, 20).join(' '),
        histogram: count[f]! > 0 ? h : null,
        neighbours: near[f]!,
        examples,
        correlations: correlated[f]!,
        logitEffects: logit?.effects ? storedLogit(logit.effects[f]!, logitText) : null
      })
    }
    return { heldOutOnly, features, tokens: texts, rows, sequences, logitNote }
  } finally {
    sae.dispose()
    if (ort) await Promise.all([ort.encoder.release(), ort.products.release()])
  }

  /**
   * Every feature's logit effects through the head of the checkpoint in `folder` (null: SAE-only), with W_dec scaled
   * by `scale` to residual units, and the token texts from its tokenizer (the store's table when it has none).
   * A checkpoint without a head or that cannot be read gives a note saying so instead: the statistics stand without.
   */
  async function logitEffectsOf(
    folder: string | null,
    scale: number
  ): Promise<{ effects: Awaited<ReturnType<typeof computeLogitEffects>> | null; note: string; text: (id: number) => string }> {
    const fallback = (id: number): string => store.tokenText(id)
    if (folder === null)
      return { effects: null, note: 'An SAE-only checkpoint (no weights registered) has no head to read logit effects from.', text: fallback }
    let checkpoint: CheckpointFolder | null = null
    try {
      checkpoint = CheckpointFolder.open(folder)
      const head = await readLmHead(checkpoint, ort ? 'host' : 'tensor')
      if ('absent' in head) return { effects: null, note: head.absent, text: fallback }
      let text = fallback
      try {
        const tokenizer = checkpoint.tokenizer()
        text = (id) => tokenizer.tokenText(id)
      } catch (err) {
        if (!(err instanceof UserError)) throw err
      }
      try {
        const effects = await computeLogitEffects(sae.weights.W_dec, n, head, {
          scale,
          products: ort?.products ?? null,
          top: LOGIT_TOP,
          bins: LOGIT_BINS,
          onBlock: (done) => ctx.progress({ fraction: 1, rate: null, rateUnit: null, etaSeconds: null, message: `logit effects: ${done} / ${n}` })
        })
        const scaled = scale === 1 ? '' : ` × ${scale.toPrecision(4)} (${scaleWhy(sae.rule.scaling.kind)})`
        const note =
          `W_dec[i]${scaled} ⊙ γ (${head.names.gamma}) · W_Uᵀ (${head.names.unembedding}${head.tied ? ', tied to the token embedding' : ''}), ` +
          `${head.vocab.toLocaleString('en')} tokens`
        return { effects, note, text }
      } finally {
        disposeLmHead(head)
      }
    } catch (err) {
      if (err instanceof UserError) return { effects: null, note: `No logit effects: ${err.message}`, text: fallback }
      throw err
    } finally {
      await checkpoint?.close()
    }
  }
}

/** Why W_dec is scaled to residual units, by the SAE's input scaling. */
function scaleWhy(kind: string): string {
  if (kind === 'constant') return 'undoing the constant input scaling'
  if (kind === 'layer_norm' || kind === 'std_layer_norm') return 'the mean per-token std the input layer norm divides by, over the rows read'
  return 'the mean token norm over the rows read, undoing the per-token norm scaling'
}

function storedLogit(e: Awaited<ReturnType<typeof computeLogitEffects>>[number], textOf: (id: number) => number): StoredLogitEffects {
  const token = (t: { token: number; value: number }): StoredLogitEffects['positive'][number] => ({ token: t.token, text: textOf(t.token), value: t.value })
  return { positive: e.positive.map(token), negative: e.negative.map(token), histogram: e.histogram }
}

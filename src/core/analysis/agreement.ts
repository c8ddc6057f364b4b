// Agreement between annotators on the same features: Cohen's κ for two, Fleiss' κ for more.
// Items are the features every compared annotator labelled.

/** Cohen's κ for two raters' categories over the same items. */
export function cohensKappa(a: string[], b: string[]): number {
  if (a.length !== b.length || a.length === 0) return NaN
  const cats = [...new Set([...a, ...b])]
  const n = a.length
  let agree = 0
  for (let i = 0; i < n; i++) if (a[i] === b[i]) agree++
  const po = agree / n
  let pe = 0
  for (const c of cats) pe += (a.filter((x) => x === c).length / n) * (b.filter((x) => x === c).length / n)
  return pe === 1 ? 1 : (po - pe) / (1 - pe)
}

/** Fleiss' κ: ratings[i] lists the categories the raters gave item i (same number of raters per item). */
export function fleissKappa(ratings: string[][]): number {
  const N = ratings.length
  if (N === 0) return NaN
  const m = ratings[0]!.length
  if (m < 2 || ratings.some((r) => r.length !== m)) return NaN
  const cats = [...new Set(ratings.flat())]
  let pBar = 0
  const pj = new Map<string, number>(cats.map((c) => [c, 0]))
  for (const r of ratings) {
    let agreeing = 0
    for (const c of cats) {
      const nij = r.filter((x) => x === c).length
      agreeing += nij * (nij - 1)
      pj.set(c, pj.get(c)! + nij)
    }
    pBar += agreeing / (m * (m - 1))
  }
  pBar /= N
  let pe = 0
  for (const c of cats) pe += (pj.get(c)! / (N * m)) ** 2
  return pe === 1 ? 1 : (pBar - pe) / (1 - pe)
}

export interface Agreement {
  annotators: string[]
  /** Features labelled by every one of them. */
  items: number
  statistic: 'cohen' | 'fleiss' | null
  kappa: number | null
  /** Of those, the features every compared label of which was made blind (without seeing the others'). */
  blindItems: number
}

/** κ over the features that all the given annotators labelled (all annotators of the set when none given). */
export function agreementOf(labels: { feature: number; annotator: string; category: string | null; blind?: boolean | null }[], only?: string[]): Agreement {
  const annotators = (only ?? [...new Set(labels.map((l) => l.annotator))]).sort()
  const byFeature = new Map<number, Map<string, { category: string; blind: boolean }>>()
  for (const l of labels) {
    if (!l.category || !annotators.includes(l.annotator)) continue
    if (!byFeature.has(l.feature)) byFeature.set(l.feature, new Map())
    byFeature.get(l.feature)!.set(l.annotator, { category: l.category, blind: l.blind === true })
  }
  const complete = [...byFeature.values()].filter((m) => annotators.every((a) => m.has(a)))
  const blindItems = complete.filter((m) => [...m.values()].every((l) => l.blind)).length
  const items = complete.length
  if (annotators.length < 2 || items === 0) return { annotators, items, statistic: null, kappa: null, blindItems }
  const category = (m: Map<string, { category: string }>, a: string): string => m.get(a)!.category
  if (annotators.length === 2) {
    const k = cohensKappa(
      complete.map((m) => category(m, annotators[0]!)),
      complete.map((m) => category(m, annotators[1]!))
    )
    return { annotators, items, statistic: 'cohen', kappa: k, blindItems }
  }
  return { annotators, items, statistic: 'fleiss', kappa: fleissKappa(complete.map((m) => annotators.map((a) => category(m, a)))), blindItems }
}

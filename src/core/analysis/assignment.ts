// Optimal one-to-one assignment (minimum total cost) of the rows of a matrix to its columns (rows ≤ columns).
//
// Written here because no maintained solver is published to the registries this project can use. This is
// the Hungarian method with row and column potentials (Kuhn–Munkres, in the shortest-augmenting-path form):
// each row is added by a Dijkstra-like search over columns. Matching SAE features across checkpoints, most
// rows' best column is still free when they are added, so the search ends after one O(n) scan and the whole
// solve is close to O(n²); conflicts cost more, up to O(n³) in the worst case.

/**
 * cost is row-major n × m with n ≤ m (square when m is omitted); returns col[i] = the column assigned to row i,
 * minimising the total cost over one-to-one assignments of every row (columns may stay unused).
 */
export function solveAssignment(cost: Float32Array | Float64Array, n: number, m = n): Int32Array {
  if (n > m) throw new Error(`solveAssignment needs rows ≤ columns (got ${n} × ${m}).`)
  if (cost.length < n * m) throw new Error(`solveAssignment: cost has ${cost.length} entries, ${n} × ${m} expected.`)
  const INF = Number.POSITIVE_INFINITY
  const u = new Float64Array(n + 1)
  const v = new Float64Array(m + 1)
  const p = new Int32Array(m + 1) // p[j]: row (1-based) assigned to column j; p[0] is the row being added
  const way = new Int32Array(m + 1)
  const minv = new Float64Array(m + 1)
  const used = new Uint8Array(m + 1)
  for (let i = 1; i <= n; i++) {
    p[0] = i
    let j0 = 0
    minv.fill(INF)
    used.fill(0)
    do {
      used[j0] = 1
      const i0 = p[j0]!
      const row = (i0 - 1) * m
      const ui = u[i0]!
      let delta = INF
      let j1 = 0
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue
        const cur = cost[row + j - 1]! - ui - v[j]!
        if (cur < minv[j]!) {
          minv[j] = cur
          way[j] = j0
        }
        if (minv[j]! < delta) {
          delta = minv[j]!
          j1 = j
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[p[j]!]! += delta
          v[j]! -= delta
        } else {
          minv[j]! -= delta
        }
      }
      j0 = j1
    } while (p[j0] !== 0)
    do {
      const j1 = way[j0]!
      p[j0] = p[j1]!
      j0 = j1
    } while (j0 !== 0)
  }
  const col = new Int32Array(n)
  for (let j = 1; j <= m; j++) if (p[j]! > 0) col[p[j]! - 1] = j - 1
  return col
}

/**
 * For n beyond what the exact solve allows: each row considers only its `candidates` most similar columns,
 * and pairs are taken greedily in descending similarity. Greedy maximum-weight matching is within a factor
 * of 2 of the optimum; with candidate lists, a row whose candidates are all taken stays unmatched (-1).
 */
export function greedyAssignment(topIdx: Int32Array, topSim: Float32Array, n: number, candidates: number): Int32Array {
  const order = Array.from({ length: n * candidates }, (_, i) => i).sort((a, b) => topSim[b]! - topSim[a]!)
  const col = new Int32Array(n).fill(-1)
  const taken = new Uint8Array(n)
  for (const e of order) {
    const r = Math.floor(e / candidates)
    const c = topIdx[e]!
    if (col[r] !== -1 || taken[c]) continue
    col[r] = c
    taken[c] = 1
  }
  return col
}

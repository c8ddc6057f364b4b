// Neighbours by co-activation: for each latent, the latents whose activations correlate most with its own over the
// rows the statistics read. Pearson's r of the activation values with the zeros included (a latent that does not
// fire on a row has activation 0 there), computed from the sparse codes without the n × n matrix.

/** Sparse activations of `rows` rows in CSR form: row r's active latents are latent[start[r]..start[r+1]) with value. */
export interface SparseRows {
  rows: number
  /** [rows + 1] offsets into latent/value. */
  start: Int32Array | number[]
  latent: Int32Array
  value: Float32Array
}

/** Collects a sparse activation matrix row by row (only positive activations are kept). */
export class SparseRowsBuilder {
  private latent = new Int32Array(1024)
  private value = new Float32Array(1024)
  private readonly start: number[] = [0]
  private nnz = 0

  /** Appends one row: the (value, latent) pairs of its code, k of them at `at` in v/i; pairs with value ≤ 0 are skipped. */
  addRow(v: Float32Array, i: Int32Array, at: number, k: number): void {
    if (this.nnz + k > this.latent.length) {
      const size = Math.max(2 * this.latent.length, this.nnz + k)
      const l = new Int32Array(size)
      l.set(this.latent.subarray(0, this.nnz))
      const x = new Float32Array(size)
      x.set(this.value.subarray(0, this.nnz))
      this.latent = l
      this.value = x
    }
    for (let j = 0; j < k; j++) {
      const a = v[at + j]!
      if (a <= 0) continue
      this.latent[this.nnz] = i[at + j]!
      this.value[this.nnz++] = a
    }
    this.start.push(this.nnz)
  }

  build(): SparseRows {
    return { rows: this.start.length - 1, start: Int32Array.from(this.start), latent: this.latent.slice(0, this.nnz), value: this.value.slice(0, this.nnz) }
  }
}

/**
 * For each of n latents, the `top` latents with the highest positive Pearson correlation of activations over the
 * rows (zeros included): r_ij = (S_ij/N − μ_i μ_j) / (σ_i σ_j) with S_ij = Σ_rows a_i a_j, μ and σ (population)
 * over all N rows. Two latents that never fire on the same row have S_ij = 0 and so r_ij ≤ 0: every positive
 * correlation comes from a co-active pair, so walking each latent's rows and the latents active there finds them
 * all, in O(N·k²) time and O(nnz + n) memory (k: active latents per row). Latents with r ≤ 0, and latents that never
 * fire (σ = 0), are not neighbours. Returns [n] lists sorted by r descending.
 */
export function activationCorrelations(a: SparseRows, n: number, top = 10): { feature: number; r: number }[][] {
  const N = a.rows
  const nnz = a.latent.length
  const sum = new Float64Array(n)
  const sumSq = new Float64Array(n)
  const count = new Int32Array(n)
  for (let e = 0; e < nnz; e++) {
    const f = a.latent[e]!
    const x = a.value[e]!
    sum[f]! += x
    sumSq[f]! += x * x
    count[f]!++
  }
  const mean = Float64Array.from(sum, (s) => s / N)
  const sd = Float64Array.from(sumSq, (s, f) => Math.sqrt(Math.max(0, s / N - mean[f]! ** 2)))
  // Each latent's entries: the rows it fires on (CSC), from the CSR rows.
  const colStart = new Int32Array(n + 1)
  for (let f = 0; f < n; f++) colStart[f + 1] = colStart[f]! + count[f]!
  const fill = colStart.slice(0, n)
  const colRow = new Int32Array(nnz)
  const colValue = new Float32Array(nnz)
  for (let r = 0; r < N; r++) {
    for (let e = a.start[r]!; e < a.start[r + 1]!; e++) {
      const f = a.latent[e]!
      colRow[fill[f]!] = r
      colValue[fill[f]!++] = a.value[e]!
    }
  }
  const cross = new Float64Array(n)
  const touched = new Int32Array(n)
  const seen = new Uint8Array(n)
  const out: { feature: number; r: number }[][] = []
  for (let i = 0; i < n; i++) {
    if (sd[i] === 0) {
      out.push([])
      continue
    }
    let t = 0
    for (let c = colStart[i]!; c < colStart[i + 1]!; c++) {
      const r = colRow[c]!
      const x = colValue[c]!
      for (let e = a.start[r]!; e < a.start[r + 1]!; e++) {
        const j = a.latent[e]!
        if (j === i) continue
        if (!seen[j]) {
          seen[j] = 1
          touched[t++] = j
        }
        cross[j]! += x * a.value[e]!
      }
    }
    const list: { feature: number; r: number }[] = []
    for (let q = 0; q < t; q++) {
      const j = touched[q]!
      const r = sd[j]! > 0 ? (cross[j]! / N - mean[i]! * mean[j]!) / (sd[i]! * sd[j]!) : 0
      if (r > 0) list.push({ feature: j, r })
      cross[j] = 0
      seen[j] = 0
    }
    list.sort((x, y) => y.r - x.r || x.feature - y.feature)
    out.push(list.slice(0, top))
  }
  return out
}

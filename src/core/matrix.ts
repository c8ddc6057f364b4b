// Dense host matrices (row-major Float32Arrays): the one copy of each helper the readers and analyses share.

/**
 * Transpose of a row-major [rows, cols] matrix, returned as a new row-major [cols, rows] one. Walks 64 × 64 tiles so
 * both the rows read and the columns written stay in cache (a plain double loop strides through one of them: several
 * times slower for an LM head of 99,487 × 2,048). Done on the host because tfjs-wasm's transpose needs the input and
 * the output at once inside its 4 GiB heap (1.6 GB for that head), where a fragmented heap fails.
 * Errors: `a` does not hold rows × cols values.
 */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  if (a.length !== rows * cols) throw new Error(`transpose: ${a.length} values are not a [${rows}, ${cols}] matrix.`)
  const out = new Float32Array(rows * cols)
  const tile = 64
  for (let i0 = 0; i0 < rows; i0 += tile) {
    const i1 = Math.min(rows, i0 + tile)
    for (let j0 = 0; j0 < cols; j0 += tile) {
      const j1 = Math.min(cols, j0 + tile)
      for (let i = i0; i < i1; i++) {
        const row = i * cols
        for (let j = j0; j < j1; j++) out[j * rows + i] = a[row + j]!
      }
    }
  }
  return out
}

import { describe, expect, it } from 'vitest'
import { transpose } from '../../src/core/matrix'

describe('transpose (host, tiled)', () => {
  it('equals the definition out[j, i] = a[i, j] across tile edges, and refuses a wrong size', () => {
    for (const [rows, cols] of [
      [1, 1],
      [3, 130],
      [130, 67],
      [64, 64],
      [65, 1]
    ] as const) {
      const a = Float32Array.from({ length: rows * cols }, (_, i) => i * 0.5 - 7)
      const t = transpose(a, rows, cols)
      expect(t.length).toBe(rows * cols)
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) expect(t[j * rows + i]).toBe(a[i * cols + j])
    }
    expect(() => transpose(new Float32Array(6), 4, 2)).toThrow(/6 values are not a \[4, 2\] matrix/)
  })
})

// Shared by the benchmarks: what a plain matrix product reaches on the current tfjs backend.
import * as tf from '@tensorflow/tfjs-core'
import { resolve } from 'node:path'

export const ROOT = resolve(import.meta.dirname, '..')

/** A numeric command-line option (`--name value`), or its default. */
export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}

export async function matmulGflops(size = 1024, repeats = 5): Promise<number> {
  const a = tf.randomNormal([size, size])
  const warm = tf.matMul(a, a)
  await warm.data()
  warm.dispose()
  const t0 = performance.now()
  for (let i = 0; i < repeats; i++) {
    const c = tf.matMul(a, a)
    await c.data()
    c.dispose()
  }
  a.dispose()
  return (repeats * 2 * size ** 3) / ((performance.now() - t0) / 1000) / 1e9
}

// Shared by the benchmarks: what a plain matrix product reaches on the current tfjs backend, or on onnxruntime.
import * as tf from '@tensorflow/tfjs-core'
import { resolve } from 'node:path'
import { OrtDenseProducts } from '../src/core/ort/engine'

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

/** The same product on onnxruntime (OrtDenseProducts, every core), host arrays in and out. */
export async function ortMatmulGflops(size = 1024, repeats = 5): Promise<number> {
  const engine = new OrtDenseProducts()
  const a = Float32Array.from({ length: size * size }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5)
  await engine.product(a, a, null, size, size)
  const t0 = performance.now()
  for (let i = 0; i < repeats; i++) await engine.product(a, a, null, size, size)
  const seconds = (performance.now() - t0) / 1000
  await engine.release()
  return (repeats * 2 * size ** 3) / seconds / 1e9
}

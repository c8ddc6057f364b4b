// The onnxruntime engine: the ONNX encoder's graphs run, the engine is chosen and says why, and a whole
// training step on it equals the tfjs-wasm step (the reference path) within float tolerance.
import * as tf from '@tensorflow/tfjs-core'
import { describe, expect, it } from 'vitest'
import { encoderGraph, OrtSaeEncoder, tryOrt } from '../../src/core/ort/engine'
import { DataType, encodeModel } from '../../src/core/ort/onnx-proto'
import { Rng } from '../../src/core/random'
import { gradientsFor, optimizerFor, ortEngine, tfjsEncoder } from '../../src/core/sae/sparse-host'
import { unitRows, type SaeTensors } from '../../src/core/sae/topk'
import { initBackend } from '../../src/core/tf/backend'
import * as ort from 'onnxruntime-node'

describe('the ONNX encoder', () => {
  it('writes initializers, int and float attributes and symbolic dimensions that onnxruntime reads', async () => {
    // y = Gemm(x, W, c; alpha = 0.5, transB = 1), with W and c stored in the model (raw_data).
    const W = Float32Array.from([1, 2, 3, 4, 5, 6]) // [2, 3]
    const c = Float32Array.from([10, 20])
    const bytes = encodeModel({
      name: 'gemm',
      nodes: [{ op: 'Gemm', inputs: ['x', 'W', 'c'], outputs: ['y'], attributes: { alpha: { float: 0.5 }, transB: { int: 1 } } }],
      inputs: [{ name: 'x', type: DataType.FLOAT, shape: ['rows', 3] }],
      outputs: [{ name: 'y', type: DataType.FLOAT, shape: ['rows', 2] }],
      initializers: [
        { name: 'W', type: DataType.FLOAT, dims: [2, 3], data: W },
        { name: 'c', type: DataType.FLOAT, dims: [2], data: c }
      ]
    })
    const session = await ort.InferenceSession.create(bytes)
    const x = Float32Array.from([1, 0, -1, 2, 2, 2])
    const y = (await session.run({ x: new ort.Tensor('float32', x, [2, 3]) })).y!
    expect(y.dims).toEqual([2, 2])
    // Row 0: 0.5·(1 − 3, 4 − 6) + c = (9, 19); row 1: 0.5·(12, 30) + c = (16, 35).
    expect(Array.from(y.data as Float32Array)).toEqual([9, 19, 16, 35])
    await session.release()
  })

  it('refuses an initializer whose data does not fill its dims, naming it', () => {
    expect(() =>
      encodeModel({
        name: 'bad',
        nodes: [],
        inputs: [],
        outputs: [],
        initializers: [{ name: 'W', type: DataType.FLOAT, dims: [2, 3], data: new Float32Array(5) }]
      })
    ).toThrow(/initializer W: dims \[2, 3\] hold 6 values, data has 5/)
  })

  it('the SAE encoder graph equals a float64 loop: pre-activations, top-k with ReLU, AuxK on dead latents', async () => {
    const [d, n, B, k, kAux] = [7, 40, 9, 5, 6]
    const rng = new Rng(2)
    const g = (): number => rng.next() - 0.5
    const x = Float32Array.from({ length: B * d }, g)
    const bDec = Float32Array.from({ length: d }, g)
    const wEnc = Float32Array.from({ length: d * n }, g)
    const bEnc = Float32Array.from({ length: n }, g)
    const dead = Float32Array.from({ length: n }, (_, j) => (j % 3 === 0 ? 1 : 0))
    const encoder = new OrtSaeEncoder()
    const out = await encoder.encode(x, bDec, wEnc, bEnc, k, { dead, k: kAux })
    expect(encoderGraph(d, n, true).nodes.map((node) => node.op)).toContain('TopK')
    for (let b = 0; b < B; b++) {
      const pre = Array.from({ length: n }, (_, j) => {
        let s = bEnc[j]!
        for (let i = 0; i < d; i++) s += (x[b * d + i]! - bDec[i]!) * wEnc[i * n + j]!
        return s
      })
      const top = pre
        .map((v, j) => [v, j] as const)
        .sort((p, q) => q[0] - p[0])
        .slice(0, k)
      expect(Array.from(out.indices.subarray(b * k, (b + 1) * k))).toEqual(top.map(([, j]) => j))
      top.forEach(([v], j) => expect(out.values[b * k + j]).toBeCloseTo(Math.max(0, v), 5))
      const masked = pre.map((v, j) => Math.max(0, v) * dead[j]!).sort((p, q) => q - p)
      Array.from(out.aux!.values.subarray(b * kAux, (b + 1) * kAux)).forEach((v, j) => expect(v).toBeCloseTo(masked[j]!, 5))
    }
    await expect(encoder.encode(x, bDec, wEnc.subarray(1), bEnc, k, null)).rejects.toThrow(/W_enc has 279 values; expected d × n = 7 × 40/)
    await encoder.release()
  })
})

describe('choosing the ort engine', () => {
  it('says plainly when onnxruntime-node is missing or its binary fails to load', async () => {
    const missing = new Error("Cannot find package 'onnxruntime-node' imported from /x.js")
    expect(await tryOrt(() => Promise.reject(missing))).toBe('onnxruntime-node is not installed')
    const broken = new Error('libonnxruntime.so.1: cannot open shared object file: No such file or directory\n    at Module._extensions..node')
    expect(await tryOrt(() => Promise.reject(broken))).toBe(
      'onnxruntime-node is installed but failed to load: libonnxruntime.so.1: cannot open shared object file: No such file or directory'
    )
  })

  it('is chosen after tfjs-node-gpu and WebGPU, with tfjs-wasm beside it, and says why and on how many threads', async () => {
    const choice = await initBackend()
    expect(choice.name).toBe('ort')
    expect(choice.tfjs).toBe('wasm')
    expect(tf.getBackend()).toBe('wasm')
    // Work with synchronous reads (as here) passes WebGPU over with that reason; no GPU here either way.
    expect(choice.skipped.map((s) => s.name)).toEqual(['tensorflow', 'webgpu'])
    expect(choice.reason).toMatch(
      /^onnxruntime-node runs the dense products on \d+ threads, the SAE step's sparse host loops and Adam run on \d+ threads, tfjs wasm the rest; not tensorflow: @tensorflow\/tfjs-node-gpu .*; not webgpu: .*WebGPU/
    )
  })
})

/** A small SAE (d 32, n 256) and its Adam, on the current tfjs backend. */
function smallSae(seed: number): SaeTensors {
  const rng = new Rng(seed)
  const W = tf.tidy(() =>
    unitRows(
      tf.tensor2d(
        Float32Array.from({ length: 256 * 32 }, () => rng.gaussian()),
        [256, 32]
      )
    )
  )
  const p = {
    Wenc: tf.variable(tf.transpose(W)),
    benc: tf.variable(tf.tensor1d(Float32Array.from({ length: 256 }, () => 0.1 * rng.gaussian()))),
    Wdec: tf.variable(W),
    bdec: tf.variable(tf.tensor1d(Float32Array.from({ length: 32 }, () => 0.1 * rng.gaussian())))
  }
  W.dispose()
  return p
}

describe('a training step on ort equals the step on wasm', () => {
  it('the dense part: the same top-k indices per row, values and AuxK values within float rounding', async () => {
    await initBackend('ort')
    const p = smallSae(5)
    const rng = new Rng(6)
    const data = Float32Array.from({ length: 128 * 32 }, () => rng.gaussian())
    const x = tf.tensor2d(data, [128, 32])
    const dead = tf.tensor1d(Float32Array.from({ length: 256 }, (_, i) => (i % 5 === 0 ? 1 : 0)))
    const bdec = (await p.bdec.data()) as Float32Array
    const a = await tfjsEncoder.encode(p, x, data, bdec, 8, { dead, k: 16 })
    const b = await ortEngine.encode(p, x, data, bdec, 8, { dead, k: 16 })
    expect(Array.from(b.indices)).toEqual(Array.from(a.indices))
    expect(Array.from(b.aux!.indices)).toEqual(Array.from(a.aux!.indices))
    for (const [u, v] of [
      [a.values, b.values],
      [a.aux!.values, b.aux!.values]
    ] as const) {
      let worst = 0
      for (let i = 0; i < u.length; i++) worst = Math.max(worst, Math.abs(u[i]! - v[i]!))
      expect(worst).toBeLessThan(1e-5)
    }
    tf.dispose([x, dead, ...Object.values(p)])
  })

  it('loss, top-k indices, gradients and the weights after Adam and renormalisation, AuxK included, over 3 steps', async () => {
    await initBackend('ort')
    const rng = new Rng(9)
    const batches = Array.from({ length: 3 }, () => Float32Array.from({ length: 128 * 32 }, () => rng.gaussian()))
    const mask = tf.tensor1d(Float32Array.from({ length: 256 }, (_, i) => (i % 5 === 0 ? 1 : 0)))
    const cfg = { k: 8, auxK: 16, auxAlpha: 1 / 32 }
    const adamCfg = { adamBeta1: 0.9, adamBeta2: 0.999, adamEps: 6.25e-10, decoderUnitNorm: true }
    const runs: Record<'wasm' | 'ort', { loss: number[]; auxLoss: number[]; fired: number[][]; weights: Record<string, Float32Array> }> = {
      wasm: { loss: [], auxLoss: [], fired: [], weights: {} },
      ort: { loss: [], auxLoss: [], fired: [], weights: {} }
    }
    for (const engine of ['wasm', 'ort'] as const) {
      const p = smallSae(4)
      const adam = optimizerFor(engine, p, adamCfg)
      const gradients = gradientsFor(engine)
      for (const [i, data] of batches.entries()) {
        const x = tf.tensor2d(data, [128, 32])
        const r = await gradients(p, x, cfg, mask, 52)
        await adam.apply(p, r.grads, i + 1, 1e-2)
        runs[engine].loss.push((await r.loss.data())[0]!)
        runs[engine].auxLoss.push((await r.auxLoss.data())[0]!)
        runs[engine].fired.push(Array.from(await r.fired.data()))
        tf.dispose([x, r.loss, r.auxLoss, r.l0, r.fired, ...Object.values(r.grads)])
      }
      for (const name of ['Wenc', 'benc', 'Wdec', 'bdec'] as const) runs[engine].weights[name] = (await p[name].data()) as Float32Array
      adam.dispose()
      tf.dispose(Object.values(p))
    }
    mask.dispose()
    // The losses are FVUs well away from 0 and 1; the latents that fired (the union of the top-k indices) agree exactly.
    expect(runs.wasm.loss[0]).toBeGreaterThan(0.1)
    for (let i = 0; i < 3; i++) {
      expect(runs.ort.loss[i]).toBeCloseTo(runs.wasm.loss[i]!, 5)
      expect(runs.ort.auxLoss[i]).toBeCloseTo(runs.wasm.auxLoss[i]!, 5)
      expect(runs.ort.fired[i]).toEqual(runs.wasm.fired[i])
    }
    for (const name of ['Wenc', 'benc', 'Wdec', 'bdec']) {
      const a = runs.wasm.weights[name]!
      const b = runs.ort.weights[name]!
      let worst = 0
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!))
      expect(worst, name).toBeLessThan(1e-4)
    }
  })
})

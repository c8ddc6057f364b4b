// The hand-written sparse gradients against finite differences of an independent float64 loss.
import * as tf from '@tensorflow/tfjs-core'
import { beforeAll, describe, expect, it } from 'vitest'
import { lossAndGradientsHost, ortEngine } from '../../src/core/sae/sparse-host'
import { lossAndGradients, type SaeTensors } from '../../src/core/sae/topk'
import { initBackend } from '../../src/core/tf/backend'
import { Rng } from '../../src/core/random'

const d = 6
const n = 12
const k = 3
const B = 7
const auxK = 4
const alpha = 0.5

type P = { Wenc: Float64Array; benc: Float64Array; Wdec: Float64Array; bdec: Float64Array }

/** Top-k indices of a row by value (ties by index). */
function topk(row: number[], kk: number): number[] {
  return row
    .map((v, i) => [v, i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, kk)
    .map(([, i]) => i)
}

/** The loss written plainly in float64: FVU + α·AuxK, with the AuxK target e held at `eFixed`. */
function referenceLoss(p: P, x: number[][], dead: boolean[], eFixed: number[][] | null): { loss: number; e: number[][] } {
  const xhat: number[][] = []
  const acts: number[][] = []
  for (const row of x) {
    const act = Array.from({ length: n }, (_, j) => {
      let s = p.benc[j]!
      for (let i = 0; i < d; i++) s += (row[i]! - p.bdec[i]!) * p.Wenc[i * n + j]!
      return Math.max(0, s)
    })
    acts.push(act)
    const h = Array.from(p.bdec)
    for (const j of topk(act, k)) for (let i = 0; i < d; i++) h[i]! += act[j]! * p.Wdec[j * d + i]!
    xhat.push(h)
  }
  const mean = Array.from({ length: d }, (_, i) => x.reduce((s, r) => s + r[i]!, 0) / B)
  let sse = 0
  let sst = 0
  x.forEach((r, b) => r.forEach((v, i) => ((sse += (xhat[b]![i]! - v) ** 2), (sst += (v - mean[i]!) ** 2))))
  const e = x.map((r, b) => r.map((v, i) => v - xhat[b]![i]!))
  const target = eFixed ?? e
  const deadCount = dead.filter(Boolean).length
  const emean = Array.from({ length: d }, (_, i) => target.reduce((s, r) => s + r[i]!, 0) / B)
  let aux = 0
  let auxDen = 0
  acts.forEach((act, b) => {
    const masked = act.map((v, j) => (dead[j] ? v : 0))
    const ehat = new Array<number>(d).fill(0)
    for (const j of topk(masked, Math.min(auxK, deadCount))) for (let i = 0; i < d; i++) ehat[i]! += masked[j]! * p.Wdec[j * d + i]!
    for (let i = 0; i < d; i++) {
      aux += (ehat[i]! - target[b]![i]!) ** 2
      auxDen += (target[b]![i]! - emean[i]!) ** 2
    }
  })
  return { loss: sse / sst + alpha * (aux / auxDen), e }
}

const IMPLEMENTATIONS = {
  'all-tfjs (GPU backend)': (t: SaeTensors, x: tf.Tensor2D, m: tf.Tensor1D, c: number) =>
    Promise.resolve(lossAndGradients(t, x, { k, auxK, auxAlpha: alpha }, m, c)),
  'host sparse loops (wasm, cpu)': (t: SaeTensors, x: tf.Tensor2D, m: tf.Tensor1D, c: number) => lossAndGradientsHost(t, x, { k, auxK, auxAlpha: alpha }, m, c),
  'host sparse loops, dense part on onnxruntime (ort)': (t: SaeTensors, x: tf.Tensor2D, m: tf.Tensor1D, c: number) =>
    lossAndGradientsHost(t, x, { k, auxK, auxAlpha: alpha }, m, c, ortEngine)
}

describe.each(Object.entries(IMPLEMENTATIONS))('SAE gradients, %s', (_name, implementation) => {
  beforeAll(async () => {
    await initBackend('cpu')
  })

  it('match central finite differences for every parameter, AuxK included', async () => {
    const rng = new Rng(11)
    const g = (): number => (rng.next() - 0.5) * 2
    const p: P = {
      Wenc: Float64Array.from({ length: d * n }, g),
      benc: Float64Array.from({ length: n }, () => 0.3 + 0.2 * g()),
      Wdec: Float64Array.from({ length: n * d }, g),
      bdec: Float64Array.from({ length: d }, () => 0.1 * g())
    }
    const x = Array.from({ length: B }, () => Array.from({ length: d }, g))
    const dead = Array.from({ length: n }, (_, j) => j % 3 === 0)
    const t: SaeTensors = {
      Wenc: tf.variable(tf.tensor2d(Float32Array.from(p.Wenc), [d, n])),
      benc: tf.variable(tf.tensor1d(Float32Array.from(p.benc))),
      Wdec: tf.variable(tf.tensor2d(Float32Array.from(p.Wdec), [n, d])),
      bdec: tf.variable(tf.tensor1d(Float32Array.from(p.bdec)))
    }
    const deadMask = tf.tensor1d(dead.map((v) => (v ? 1 : 0)))
    const xt = tf.tensor2d(x)
    const r = await implementation(t, xt, deadMask, dead.filter(Boolean).length)
    const base = referenceLoss(p, x, dead, null)
    expect(((await r.loss.array()) as number) + alpha * ((await r.auxLoss.array()) as number)).toBeCloseTo(base.loss, 5)
    const eps = 1e-6
    let checked = 0
    for (const name of ['Wenc', 'benc', 'Wdec', 'bdec'] as const) {
      const got = (await r.grads[name].data()) as Float32Array
      const scale = Math.max(...Array.from(got, Math.abs))
      expect(scale, `${name} gradient is not all zero`).toBeGreaterThan(0)
      for (let i = 0; i < p[name].length; i++) {
        const orig = p[name][i]!
        p[name][i] = orig + eps
        const up = referenceLoss(p, x, dead, base.e).loss
        p[name][i] = orig - eps
        const down = referenceLoss(p, x, dead, base.e).loss
        p[name][i] = orig
        const fd = (up - down) / (2 * eps)
        expect(Math.abs(got[i]! - fd), `${name}[${i}]: ${got[i]} vs ${fd}`).toBeLessThan(1e-4 * scale + 1e-6)
        checked++
      }
    }
    expect(checked).toBe(2 * d * n + n + d)
    tf.dispose([t.Wenc, t.benc, t.Wdec, t.bdec, deadMask, xt, r.loss, r.auxLoss, r.l0, r.fired, ...Object.values(r.grads)])
  })
})

describe('the two gradient implementations', () => {
  it('agree on a larger problem', async () => {
    await initBackend('cpu')
    const rng = new Rng(3)
    const [dd, nn, bb] = [32, 256, 64]
    const g = (): number => rng.next() - 0.5
    const W = tf.tensor2d(Float32Array.from({ length: nn * dd }, g), [nn, dd])
    const t: SaeTensors = {
      Wenc: tf.variable(tf.transpose(W)),
      benc: tf.variable(tf.tensor1d(Float32Array.from({ length: nn }, g))),
      Wdec: tf.variable(W),
      bdec: tf.variable(tf.tensor1d(Float32Array.from({ length: dd }, g)))
    }
    const x = tf.tensor2d(Float32Array.from({ length: bb * dd }, g), [bb, dd])
    const mask = tf.tensor1d(Float32Array.from({ length: nn }, (_, i) => (i % 4 === 0 ? 1 : 0)))
    const cfg = { k: 8, auxK: 16, auxAlpha: 1 / 32 }
    const a = lossAndGradients(t, x, cfg, mask, nn / 4)
    const b = await lossAndGradientsHost(t, x, cfg, mask, nn / 4)
    expect(await b.loss.array()).toBeCloseTo((await a.loss.array()) as number, 5)
    expect(await b.auxLoss.array()).toBeCloseTo((await a.auxLoss.array()) as number, 5)
    for (const name of ['Wenc', 'benc', 'Wdec', 'bdec'] as const) {
      const ga = (await a.grads[name].data()) as Float32Array
      const gb = (await b.grads[name].data()) as Float32Array
      const scale = Math.max(...Array.from(ga, Math.abs))
      let worst = 0
      for (let i = 0; i < ga.length; i++) worst = Math.max(worst, Math.abs(ga[i]! - gb[i]!))
      expect(worst / scale, name).toBeLessThan(1e-5)
    }
    expect(Array.from(await b.fired.data())).toEqual(Array.from(await a.fired.data()))
    tf.dispose([
      W,
      x,
      mask,
      t.Wenc,
      t.benc,
      t.Wdec,
      t.bdec,
      a.loss,
      a.auxLoss,
      a.l0,
      a.fired,
      b.loss,
      b.auxLoss,
      b.l0,
      b.fired,
      ...Object.values(a.grads),
      ...Object.values(b.grads)
    ])
  })
})

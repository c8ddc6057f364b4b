// The hand-written sparse gradients against finite differences of an independent float64 loss.
import * as tf from '@tensorflow/tfjs-core'
import { beforeAll, describe, expect, it } from 'vitest'
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
  return row.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, kk).map(([, i]) => i)
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

describe('SAE gradients', () => {
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
    const r = lossAndGradients(t, xt, { k, auxK, auxAlpha: alpha }, deadMask, dead.filter(Boolean).length)
    const base = referenceLoss(p, x, dead, null)
    expect((await r.loss.array()) as number + alpha * ((await r.auxLoss.array()) as number)).toBeCloseTo(base.loss, 5)
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

// Drift and matching along a generated SAE series with planted drift and a planted permutation, against an
// independent numpy/scipy computation (Debian's python3).
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { solveAssignment } from '../../src/core/analysis/assignment'
import { SafetensorsFile, toFloat16Bits, writeSafetensors } from '../../src/core/io/safetensors'
import { Rng } from '../../src/core/random'
import { PYTHON } from '../fixtures/tiny-models'
import { CLI, tempDir } from '../helpers'

const n = 96
const d = 24
const T = 5

async function writeSae(dir: string, Wdec: Float32Array, step: number, f16 = false): Promise<void> {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ architecture: 'topk', d_in: d, d_sae: n, k: 4, featuretrace: { checkpoint_step: step } }))
  const WencT = new Float32Array(d * n)
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) WencT[j * n + i] = Wdec[i * d + j]!
  await writeSafetensors(join(dir, 'sae_weights.safetensors'), {
    W_enc: { dtype: 'F32', shape: [d, n], data: WencT },
    W_dec: f16 ? { dtype: 'F16', shape: [n, d], data: toFloat16Bits(Wdec) } : { dtype: 'F32', shape: [n, d], data: Wdec },
    b_enc: { dtype: 'F32', shape: [n], data: new Float32Array(n) },
    b_dec: { dtype: 'F32', shape: [d], data: new Float32Array(d) }
  })
}

describe('drift along a series', () => {
  let t: ReturnType<typeof tempDir>
  const dirs: string[] = []
  const half: string[] = []
  const permuted: string[] = []
  let perm: number[]
  beforeAll(async () => {
    t = tempDir()
    const rng = new Rng(3)
    let W = Float32Array.from({ length: n * d }, () => rng.gaussian())
    for (let s = 0; s < T; s++) {
      // Each checkpoint moves every row a little, some rows (planted "late formers") a lot.
      W = W.map((v, i) => v + (Math.floor(i / d) % 10 === 0 ? 0.6 : 0.08) * rng.gaussian())
      dirs.push(join(t.dir, `warm-${s}`))
      await writeSae(dirs[s]!, W, 10 ** s)
      half.push(join(t.dir, `half-${s}`))
      await writeSae(half[s]!, W, 10 ** s, true)
    }
    // An independently trained final SAE: the same features in a shuffled order, slightly perturbed.
    perm = new Rng(9).shuffle(Array.from({ length: n }, (_, i) => i))
    const shuffled = new Float32Array(n * d)
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) shuffled[perm[i]! * d + j] = W[i * d + j]! + 0.02 * rng.gaussian()
    permuted.push(dirs[T - 1]!, join(t.dir, 'independent'))
    await writeSae(permuted[1]!, shuffled, 10 ** T)
  })
  afterAll(() => t.cleanup())

  /** Runs `featuretrace drift` and returns the output file's path. */
  function runDrift(saes: string[], match: boolean): string {
    const out = join(t.dir, `drift-${Math.random().toString(36).slice(2)}.safetensors`)
    const r = spawnSync(
      process.execPath,
      [CLI, 'drift', ...saes.flatMap((s) => ['--sae', s]), ...(match ? ['--match'] : []), '--out', out, '--backend', 'cpu'],
      { encoding: 'utf8' }
    )
    expect(r.status, r.stderr).toBe(0)
    return out
  }

  it.each(['F32', 'F16'])('%s: writes cos_to_final and cos_to_previous equal to numpy to 1e-5, first row of cos_to_previous all 1', async (dtype) => {
    const series = dtype === 'F16' ? half : dirs
    const path = runDrift(series, false)
    const f = await SafetensorsFile.open(path)
    expect([...f.header.tensors.keys()].sort()).toEqual(['cos_to_final', 'cos_to_previous'])
    expect(f.info('cos_to_final')).toMatchObject({ dtype: 'F32', shape: [T, n] })
    const toFinal = await f.readFloat32('cos_to_final')
    const toPrev = await f.readFloat32('cos_to_previous')
    await f.close()
    const ref = JSON.parse(
      execFileSync(PYTHON, [
        '-c',
        `
import json, struct, sys, numpy as np
def wdec(p):
    raw = open(p + '/sae_weights.safetensors', 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]; h = json.loads(raw[8:8+n])['W_dec']
    a, b = h['data_offsets']; W = np.frombuffer(raw[8+n+a:8+n+b], np.float16 if h['dtype'] == 'F16' else np.float32).reshape(h['shape']).astype(np.float64)
    return W / np.linalg.norm(W, axis=1, keepdims=True)
Ws = [wdec(p) for p in sys.argv[1:]]
fin = Ws[-1]
print(json.dumps({'final': [list((W * fin).sum(1)) for W in Ws], 'prev': [[1.0] * len(Ws[0])] + [list((Ws[i] * Ws[i-1]).sum(1)) for i in range(1, len(Ws))]}))
`,
        ...series
      ]).toString()
    ) as { final: number[][]; prev: number[][] }
    let worst = 0
    for (let s = 0; s < T; s++) {
      for (let i = 0; i < n; i++) {
        worst = Math.max(worst, Math.abs(toFinal[s * n + i]! - ref.final[s]![i]!), Math.abs(toPrev[s * n + i]! - ref.prev[s]![i]!))
      }
    }
    expect(worst).toBeLessThan(1e-5)
    expect(Array.from(toPrev.subarray(0, n)).every((x) => x === 1)).toBe(true)
    // The planted late formers drift far more than the rest.
    const early = (i: number): number => toFinal[i]!
    expect(early(0)).toBeLessThan(early(1))
  })

  it('--match recovers a planted permutation exactly and reports the matched cosine', async () => {
    const path = runDrift(permuted, true)
    const f = await SafetensorsFile.open(path)
    expect(f.info('match_to_final')).toMatchObject({ dtype: 'I32', shape: [2, n] })
    const match = await f.readInt32('match_to_final')
    const cos = await f.readFloat32('match_cos')
    expect(f.header.metadata.match_method).toBe('exact')
    await f.close()
    expect(Array.from(match.subarray(0, n))).toEqual(perm)
    expect(Array.from(match.subarray(n, 2 * n))).toEqual(Array.from({ length: n }, (_, i) => i))
    expect(Math.min(...cos.subarray(0, n))).toBeGreaterThan(0.99)
  })
})

describe('the assignment solver', () => {
  it('finds the optimum scipy.optimize.linear_sum_assignment finds, on random matrices', () => {
    for (const [size, seed] of [
      [7, 1],
      [60, 2],
      [250, 3]
    ] as const) {
      const rng = new Rng(seed)
      const cost = Float64Array.from({ length: size * size }, () => rng.next())
      const col = solveAssignment(cost, size)
      expect(new Set(col).size).toBe(size)
      const ours = Array.from(col).reduce((s, c, i) => s + cost[i * size + c]!, 0)
      const ref = Number(
        execFileSync(
          PYTHON,
          [
            '-c',
            'import json,sys,numpy as np; from scipy.optimize import linear_sum_assignment as l; c=np.array(json.load(sys.stdin)); r,k=l(c); print(c[r,k].sum())'
          ],
          {
            input: JSON.stringify(Array.from({ length: size }, (_, i) => Array.from(cost.subarray(i * size, (i + 1) * size))))
          }
        ).toString()
      )
      expect(ours).toBeCloseTo(ref, 9)
    }
  })
})

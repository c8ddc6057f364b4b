import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { TensorDigest } from '../../src/shared/api'
import { describeSameWeights } from '../../src/shared/api'
import { hashWeightFile } from '../../src/core/checkpoints/verify'
import { sameWeightsAs } from '../../src/core/checkpoints/same-weights'
import { readSafetensorsHeader, writeSafetensors } from '../../src/core/io/safetensors'
import { tempDir } from '../helpers'

const digest = (name: string, sha256: string, shape = [4, 4]): TensorDigest => ({ name, dtype: 'F32', shape, sha256 })

describe('per-tensor content hashes', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('hash each tensor as sha256(dtype|shape|bytes) whatever the chunking, and the whole file as its bytes', async () => {
    t = tempDir()
    const a = Float32Array.from({ length: 777 }, (_, i) => Math.sin(i))
    const b = Int32Array.from({ length: 300 }, (_, i) => i * 7 - 50)
    const file = join(t.dir, 'w.safetensors')
    await writeSafetensors(file, { 'a.weight': { dtype: 'F32', shape: [7, 111], data: a }, b: { dtype: 'I32', shape: [300], data: b } }, { note: 'x' })
    const header = await readSafetensorsHeader(file)
    // Chunks of 1000 bytes cut through both tensors and through the header: every cut must be stitched.
    for (const chunk of [1000, 37, 1 << 22]) {
      let seen = 0
      const r = await hashWeightFile(file, header, new AbortController().signal, (n) => (seen += n), chunk)
      expect(seen).toBe(header.fileBytes)
      expect(r.sha256).toBe(createHash('sha256').update(readFileSync(file)).digest('hex'))
      const expected = (dtype: string, shape: number[], data: ArrayBufferView): string =>
        createHash('sha256')
          .update(`${dtype}|${JSON.stringify(shape)}|`)
          .update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
          .digest('hex')
      expect(Object.fromEntries(r.tensors.map((x) => [x.name, x.sha256]))).toEqual({
        'a.weight': expected('F32', [7, 111], a),
        b: expected('I32', [300], b)
      })
    }
  })

  it('the same tensor in another file with another order and metadata hashes the same; another shape does not', async () => {
    t = tempDir()
    const a = Float32Array.from({ length: 64 }, (_, i) => i / 3)
    const c = Float32Array.from({ length: 8 }, (_, i) => -i)
    await writeSafetensors(join(t.dir, '1.safetensors'), { a: { dtype: 'F32', shape: [8, 8], data: a }, c: { dtype: 'F32', shape: [8], data: c } })
    await writeSafetensors(
      join(t.dir, '2.safetensors'),
      { c: { dtype: 'F32', shape: [8], data: c }, a: { dtype: 'F32', shape: [8, 8], data: a } },
      { format: 'pt' }
    )
    await writeSafetensors(join(t.dir, '3.safetensors'), { a: { dtype: 'F32', shape: [4, 16], data: a } })
    const hashes = await Promise.all(
      ['1', '2', '3'].map(async (n) => {
        const f = join(t.dir, `${n}.safetensors`)
        return hashWeightFile(f, await readSafetensorsHeader(f), new AbortController().signal, () => {})
      })
    )
    expect(hashes[0]!.sha256).not.toBe(hashes[1]!.sha256)
    const byName = (i: number): Record<string, string> => Object.fromEntries(hashes[i]!.tensors.map((x) => [x.name, x.sha256]))
    expect(byName(1)).toEqual(byName(0))
    expect(byName(2).a).not.toBe(byName(0).a)
  })
})

describe('sameWeightsAs', () => {
  const s = (checkpointId: number, step: number, tensors: TensorDigest[]): { checkpointId: number; step: number; tensors: TensorDigest[] } => ({
    checkpointId,
    step,
    tensors
  })
  const norm = digest('norm', 'ones', [4])

  it('reports whole copies (by content, under other names too) and partial ones with their equal matrices', () => {
    const final = s(3, 1000, [digest('embed', 'E3'), digest('mlp', 'M3'), norm])
    const copy = s(2, 128, [norm, digest('model.mlp', 'M3'), digest('model.embed', 'E3')])
    const early = s(1, 8, [digest('embed', 'E3'), digest('mlp', 'M1'), norm])
    const other = s(4, 10, [digest('embed', 'E4'), digest('mlp', 'M4'), norm])
    const all = [final, copy, early, other]
    expect(sameWeightsAs(copy, all)).toEqual([
      { checkpointId: 3, step: 1000, kind: 'all', equal: 3, total: 3, tensors: [] },
      { checkpointId: 1, step: 8, kind: 'partial', equal: 2, total: 3, tensors: ['model.embed'] }
    ])
    // Equal vectors alone (norms at their initial value) are not a finding.
    expect(sameWeightsAs(other, all)).toEqual([])
    expect(describeSameWeights(128, sameWeightsAs(copy, all)[0]!)).toBe('step 128 has the same weights as step 1000 (all 3 tensors)')
    expect(describeSameWeights(8, sameWeightsAs(early, all)[0]!)).toMatch(/^step 8 shares 2 of 3 tensors with step 128, among them embed$/)
  })

  it('does not call a checkpoint with one more tensor a whole copy, and counts repeated tensors once each', () => {
    const a = s(1, 1, [digest('x', 'X'), digest('y', 'X')])
    const b = s(2, 2, [digest('x', 'X'), digest('y', 'Y')])
    const c = s(3, 3, [digest('x', 'X'), digest('y', 'X'), digest('z', 'Z')])
    expect(sameWeightsAs(a, [a, b, c])).toEqual([
      { checkpointId: 2, step: 2, kind: 'partial', equal: 1, total: 2, tensors: ['x', 'y'] },
      { checkpointId: 3, step: 3, kind: 'partial', equal: 2, total: 2, tensors: ['x', 'y'] }
    ])
    // Without hashes (verified before they were kept) nothing is claimed.
    expect(sameWeightsAs(s(5, 5, []), [a, b])).toEqual([])
  })
})

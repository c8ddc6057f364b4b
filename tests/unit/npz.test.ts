import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readNpz, readNpzHeaders, readNpzRows } from '../../src/core/io/npz'
import { sparseNpz } from '../fixtures/large-files'
import { PYTHON } from '../fixtures/tiny-models'
import { tempDir } from '../helpers'

describe('.npz members streamed', () => {
  let t: ReturnType<typeof tempDir>
  afterEach(() => t.cleanup())

  it('reads what numpy.savez and savez_compressed write, whole and by rows, equal to numpy', async () => {
    t = tempDir()
    // numpy writes the archives and the values it holds (as float32) for comparison.
    execFileSync(PYTHON, [
      '-c',
      `
import json, sys, numpy as np
rng = np.random.default_rng(3)
arrays = dict(a=rng.normal(size=(700, 33)).astype('<f4'), b=rng.normal(size=(41,)).astype('<f2'),
              c=rng.normal(size=(5, 2)).astype('<f8'), d=np.asfortranarray(rng.normal(size=(30, 17)).astype('<f4')))
np.savez(sys.argv[1] + '/stored.npz', **arrays)
np.savez_compressed(sys.argv[1] + '/deflated.npz', **arrays)
json.dump({k: v.astype(np.float32).ravel(order='C').tolist() for k, v in arrays.items()}, open(sys.argv[1] + '/values.json', 'w'))
`,
      t.dir
    ])
    const want = JSON.parse(readFileSync(join(t.dir, 'values.json'), 'utf8')) as Record<string, number[]>
    for (const kind of ['stored', 'deflated']) {
      const file = join(t.dir, `${kind}.npz`)
      const all = await readNpz(file)
      for (const k of ['a', 'b', 'c', 'd']) expect(Array.from(all.get(k)!.data), `${kind} ${k}`).toEqual(Array.from(Float32Array.from(want[k]!)))
      expect(all.get('d')!.header).toMatchObject({ fortranOrder: true, shape: [30, 17] })
      expect(Array.from(await readNpzRows(file, 'a', 650, 50))).toEqual(Array.from(Float32Array.from(want.a!.slice(650 * 33))))
      expect(Array.from(await readNpzRows(file, 'b', 40, 1))).toEqual([Math.fround(want.b![40]!)])
      await expect(readNpzRows(file, 'd', 0, 1)).rejects.toThrow(/d\.npy is in Fortran order/)
      await expect(readNpzRows(file, 'zz', 0, 1)).rejects.toThrow(/has no array "zz"/)
    }
  })

  it('reads the last rows of a zip64 member beyond 4 GiB without reading the rest (sparse file)', async () => {
    t = tempDir()
    const file = join(t.dir, 'params.npz')
    const rows = 524_288
    const d = 2304
    const tail = Float32Array.from({ length: 2 * d }, (_, i) => (i % 13) - 6.5)
    sparseNpz(file, 'W_dec', [rows, d], tail)
    const headers = await readNpzHeaders(file)
    expect(headers.get('W_dec')).toEqual({ name: 'W_dec', descr: '<f4', fortranOrder: false, shape: [rows, d] })
    expect(rows * d * 4).toBeGreaterThan(4 * 2 ** 30)
    const started = performance.now()
    expect(Array.from(await readNpzRows(file, 'W_dec', rows - 2, 2))).toEqual(Array.from(tail))
    expect(Array.from(await readNpzRows(file, 'W_dec', 0, 1)).every((x) => x === 0)).toBe(true)
    expect(performance.now() - started).toBeLessThan(2000)
  })
})

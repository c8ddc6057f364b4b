import { describe, expect, it } from 'vitest'
import { tryTensorflow } from '../../src/core/tf/backend'

describe('choosing the tfjs-node-gpu backend', () => {
  it('says plainly when it is not installed', async () => {
    const missing = Object.assign(new Error("Cannot find package '@tensorflow/tfjs-node-gpu' imported from /x.js"), { code: 'ERR_MODULE_NOT_FOUND' })
    expect(await tryTensorflow(() => Promise.reject(missing))).toBe('@tensorflow/tfjs-node-gpu is not installed')
  })

  it('says why when it is installed but fails to load (missing CUDA libraries)', async () => {
    const cuda = new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory\n    at Module._extensions..node')
    expect(await tryTensorflow(() => Promise.reject(cuda))).toBe(
      '@tensorflow/tfjs-node-gpu is installed but failed to load: libcudart.so.11.0: cannot open shared object file: No such file or directory'
    )
  })

  it('reports nothing when it loads', async () => {
    expect(await tryTensorflow(() => Promise.resolve({}))).toBeNull()
  })
})

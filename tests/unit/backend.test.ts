// Why each engine runs or not: tfjs-node-gpu's load failures as users report them (tensorflow/tfjs issues,
// quoted in the cases below), the CUDA 11 libraries it opens, and which WebGPU adapters count as a GPU.
import { describe, expect, it } from 'vitest'
import { initBackend, tryTensorflow } from '../../src/core/tf/backend'
import { CUDA_LIBRARIES, dlopenError, explainNodeGpuLoadError, explainNoGpuDevice, missingCudaLibraries } from '../../src/core/tf/node-gpu'
import { describeAdapter, emulatedAdapter, missingGpuDevice, type AdapterSummary } from '../../src/core/tf/webgpu'

const WHAT_TO_DO =
  /needs CUDA 11\.2 and cuDNN 8\.1.*with CUDA 12\/13, or no CUDA, use the WebGPU engine instead \(--backend webgpu: .*libvulkan1 and the GPU driver\)$/

describe('why tfjs-node-gpu did not load', () => {
  const cases: { report: string; message: string; says: RegExp }[] = [
    {
      report: 'the optional package was left out (ESM import)',
      message: "Cannot find package '@tensorflow/tfjs-node-gpu' imported from /app/out/main/chunks/backend.js",
      says: /^@tensorflow\/tfjs-node-gpu is not installed \(optional: left out where its libtensorflow download failed\)\. libtensorflow 2\.9\.1/
    },
    {
      report: 'the optional package was left out (require)',
      message: "Cannot find module '@tensorflow/tfjs-node-gpu'\nRequire stack:\n- /app/index.js",
      says: /^@tensorflow\/tfjs-node-gpu is not installed/
    },
    {
      report: 'tfjs#4191: binding missing after a failed download (tfjs-node ≥ 2.7 message)',
      message:
        'The Node.js native addon module (tfjs_binding.node) can not be found at path: /home/u/app/node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v8/tfjs_binding.node. \nPlease run command ...',
      says: /without its native binding \(\/home\/u\/app\/node_modules\/@tensorflow\/tfjs-node-gpu\/lib\/napi-v8\/tfjs_binding\.node is missing: .*npm rebuild @tensorflow\/tfjs-node-gpu/
    },
    {
      report: 'tfjs#2428: binding missing (older require message, Windows path)',
      message:
        "Cannot find module 'c:\\Users\\FFF\\scripts\\node_modules\\@tensorflow\\tfjs-node-gpu\\lib\\napi-v4\\tfjs_binding.node'\nRequire stack:\n- c:\\Users\\FFF\\scripts\\node_modules\\@tensorflow\\tfjs-node-gpu\\dist\\index.js",
      says: /without its native binding \(c:\\Users\\FFF\\scripts\\node_modules\\@tensorflow\\tfjs-node-gpu\\lib\\napi-v4\\tfjs_binding\.node is missing/
    },
    {
      report: 'nsfwjs-plugin#21: libtensorflow missing beside the binding',
      message: 'libtensorflow.so.2: cannot open shared object file: No such file or directory',
      says: /^@tensorflow\/tfjs-node-gpu failed to load: libtensorflow\.so\.2 \(libtensorflow, downloaded by its install\) cannot be found\. .*npm rebuild/
    },
    {
      report: 'CUDA 12 machine: the CUDA 11 runtime is missing',
      message:
        'libcudart.so.11.0: cannot open shared object file: No such file or directory\n    at Module._extensions..node (node:internal/modules/cjs/loader:1586:18)',
      says: /^@tensorflow\/tfjs-node-gpu failed to load: libcudart\.so\.11\.0 \(the CUDA 11 runtime\) cannot be found\. /
    },
    {
      report: 'cuDNN 8 missing',
      message: 'libcudnn.so.8: cannot open shared object file: No such file or directory',
      says: /^@tensorflow\/tfjs-node-gpu failed to load: libcudnn\.so\.8 \(cuDNN 8\) cannot be found\. /
    },
    {
      report: 'tfjs#708: an older release linked cuBLAS 9 directly',
      message: 'libcublas.so.9.0: cannot open shared object file: No such file or directory',
      says: /failed to load: libcublas\.so\.9\.0 \(CUDA\) cannot be found\. /
    },
    {
      report: 'an old distribution: libstdc++ lacks the symbol version libtensorflow needs',
      message:
        "/lib64/libstdc++.so.6: version `GLIBCXX_3.4.26' not found (required by /app/node_modules/@tensorflow/tfjs-node-gpu/deps/lib/libtensorflow.so.2)",
      says: /lacks GLIBCXX_3\.4\.26 \(required by \/app\/node_modules\/@tensorflow\/tfjs-node-gpu\/deps\/lib\/libtensorflow\.so\.2\); libtensorflow 2\.9\.1 needs a newer glibc/
    },
    {
      report: 'tfjs#8433: Windows, CUDA 12.5 (LoadLibrary names only the binding)',
      message:
        'The specified module could not be found.\r\n\\\\?\\C:\\Users\\letsm\\Desktop\\app\\node_modules\\@tensorflow\\tfjs-node-gpu\\lib\\napi-v8\\tfjs_binding.node',
      says: /its binding or a DLL it needs is missing \(tensorflow\.dll from its install, or CUDA 11's cudart64_110\.dll \/ cuDNN 8's cudnn64_8\.dll\)/
    },
    {
      report: 'anything else: the loader’s first line, kept',
      message: 'Illegal hardware instruction in tfjs_binding\nsecond line',
      says: /^@tensorflow\/tfjs-node-gpu is installed but failed to load: Illegal hardware instruction in tfjs_binding\. /
    }
  ]

  it.each(cases)('$report', async ({ message, says }) => {
    const why = await tryTensorflow(() => Promise.reject(new Error(message)))
    expect(why).toMatch(says)
    expect(why).toMatch(WHAT_TO_DO)
    expect(explainNodeGpuLoadError(message)).toBe(why)
  })

  it('reports nothing when it loads', async () => {
    expect(await tryTensorflow(() => Promise.resolve({}))).toBeNull()
  })
})

describe('the CUDA 11 libraries TensorFlow opens at run time', () => {
  it('names each one that cannot be opened, with what provides it', () => {
    const present = new Set([
      'libcuda.so.1',
      'libcublas.so.11',
      'libcublasLt.so.11',
      'libcufft.so.10',
      'libcurand.so.10',
      'libcusolver.so.11',
      'libcusparse.so.11'
    ])
    const open = (soname: string): string | null => (present.has(soname) ? null : `${soname}: cannot open shared object file: No such file or directory`)
    const missing = missingCudaLibraries(open)
    if (process.platform !== 'linux') return expect(missing).toEqual([])
    expect(missing.map((l) => l.soname)).toEqual(['libcudart.so.11.0', 'libcudnn.so.8'])
    expect(explainNoGpuDevice(missing)).toMatch(
      /^tfjs-node-gpu loaded but TensorFlow runs on the CPU: libcudart\.so\.11\.0 \(the CUDA 11 runtime\), libcudnn\.so\.8 \(cuDNN 8\) cannot be opened\. /
    )
    expect(explainNoGpuDevice([])).toMatch(/found no usable GPU \(every CUDA 11 library opens/)
  })

  it.runIf(process.platform === 'linux')('opens libraries as the dynamic loader does: libc is found, a CUDA 9 library is not', () => {
    expect(dlopenError('libc.so.6')).toBeNull()
    expect(dlopenError('libcudart.so.9.0')).toMatch(/libcudart\.so\.9\.0: cannot open shared object file/)
    expect(CUDA_LIBRARIES.map((l) => l.soname)).toContain('libcudnn.so.8')
  })
})

describe('whether the automatic choice asks Dawn at all', () => {
  const fs = (files: Record<string, string[]>) => ({
    exists: (p: string) => p in files,
    list: (p: string) => files[p] ?? []
  })
  it('skips Dawn on Linux without a render node or an NVIDIA device, and says so', () => {
    const { exists, list } = fs({ '/dev': ['null', 'tty', 'dri'], '/dev/dri': ['card0'] })
    expect(missingGpuDevice('linux', exists, list)).toMatch(/no GPU device here \(no \/dev\/dri\/renderD\* or \/dev\/nvidia\*\), so WebGPU was not tried/)
  })
  it('asks Dawn where a GPU has its device node, and on other systems', () => {
    expect(
      missingGpuDevice(
        'linux',
        fs({ '/dev': ['dri'], '/dev/dri': ['card0', 'renderD128'] }).exists,
        fs({ '/dev': ['dri'], '/dev/dri': ['card0', 'renderD128'] }).list
      )
    ).toBeNull()
    expect(missingGpuDevice('linux', fs({ '/dev': ['nvidia0', 'nvidiactl'] }).exists, fs({ '/dev': ['nvidia0', 'nvidiactl'] }).list)).toBeNull()
    expect(
      missingGpuDevice(
        'darwin',
        () => false,
        () => []
      )
    ).toBeNull()
    expect(
      missingGpuDevice(
        'win32',
        () => false,
        () => []
      )
    ).toBeNull()
  })
})

describe('which WebGPU adapters count as a GPU', () => {
  const adapter = (over: Partial<AdapterSummary>): AdapterSummary => ({
    vendor: '',
    architecture: '',
    device: '',
    description: '',
    isFallbackAdapter: false,
    ...over
  })

  it('refuses emulations: SwiftShader as Dawn reports it here, llvmpipe, WARP, any fallback adapter', () => {
    const swiftshader = adapter({
      vendor: 'google',
      architecture: 'swiftshader',
      device: 'swiftshader-device-subzero-',
      description: 'SwiftShader driver 5.0.0',
      isFallbackAdapter: true
    })
    expect(emulatedAdapter(swiftshader)).toBe('a fallback adapter, emulated on the CPU')
    expect(describeAdapter(swiftshader)).toBe('SwiftShader driver 5.0.0 (google swiftshader)')
    expect(emulatedAdapter({ ...swiftshader, isFallbackAdapter: false })).toBe('a GPU emulated on the CPU (swiftshader)')
    expect(emulatedAdapter(adapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }))).toMatch(/llvmpipe/)
    expect(emulatedAdapter(adapter({ vendor: 'microsoft', description: 'Microsoft Basic Render Driver' }))).toMatch(/emulated/)
    expect(emulatedAdapter(adapter({ vendor: 'qualcomm', isFallbackAdapter: true }))).toMatch(/fallback/)
  })

  it('accepts real GPUs', () => {
    expect(emulatedAdapter(adapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200' }))).toBeNull()
    expect(emulatedAdapter(adapter({ vendor: 'amd', architecture: 'rdna-3', description: 'AMD Radeon RX 7900 XTX (RADV NAVI31)' }))).toBeNull()
    expect(emulatedAdapter(adapter({ vendor: 'apple', architecture: 'metal-3', description: '' }))).toBeNull()
    expect(describeAdapter(adapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200' }))).toBe('NVIDIA H200 (nvidia hopper)')
  })

  it('refuses webgpu for work that reads tensors synchronously, naming what to use', async () => {
    await expect(initBackend('webgpu')).rejects.toThrow(
      /Backend webgpu cannot run: this work reads tensors synchronously.*use --backend wasm, cpu or tensorflow/
    )
  })
})

// Why @tensorflow/tfjs-node-gpu cannot give a GPU, in words a user can act on. tfjs-node-gpu 4.22 bundles
// libtensorflow 2.9.1, built against CUDA 11.2 and cuDNN 8.1: it fails to load when its native binding or
// libtensorflow is missing (their download at install failed), and it loads but runs on the CPU when the
// CUDA 11 libraries it opens at run time are missing (TensorFlow only logs a dso_loader warning then).

/** What to do about it, said once for every failure below. */
export const NODE_GPU_ADVICE =
  'libtensorflow 2.9.1 (tfjs-node-gpu 4.22) needs CUDA 11.2 and cuDNN 8.1, which install beside a newer CUDA with their lib64 ' +
  'on LD_LIBRARY_PATH; with CUDA 12/13, or no CUDA, use the WebGPU engine instead (--backend webgpu: the GPU through Vulkan, ' +
  'libvulkan1 and the GPU driver)'

const REBUILD_ADVICE = 'its install downloads libtensorflow from storage.googleapis.com: run `npm rebuild @tensorflow/tfjs-node-gpu` where that is reachable'

/**
 * The shared libraries libtensorflow 2.9.1 opens for its GPU device (TensorFlow's dso_loader, Linux names),
 * with what provides each. TensorRT's libnvinfer is optional and left out.
 */
export const CUDA_LIBRARIES: readonly { soname: string; from: string }[] = [
  { soname: 'libcuda.so.1', from: 'the NVIDIA driver' },
  { soname: 'libcudart.so.11.0', from: 'the CUDA 11 runtime' },
  { soname: 'libcublas.so.11', from: 'cuBLAS 11' },
  { soname: 'libcublasLt.so.11', from: 'cuBLASLt 11' },
  { soname: 'libcufft.so.10', from: 'cuFFT 10 (CUDA 11)' },
  { soname: 'libcurand.so.10', from: 'cuRAND 10 (CUDA 11)' },
  { soname: 'libcusolver.so.11', from: 'cuSOLVER 11' },
  { soname: 'libcusparse.so.11', from: 'cuSPARSE 11' },
  { soname: 'libcudnn.so.8', from: 'cuDNN 8' }
]

function libraryFrom(soname: string): string {
  const known = CUDA_LIBRARIES.find((l) => l.soname === soname)
  if (known) return ` (${known.from})`
  if (/^libtensorflow/.test(soname)) return ' (libtensorflow, downloaded by its install)'
  if (/^libcud(nn|art)|^libcu(blas|fft|rand|solver|sparse)/.test(soname)) return ' (CUDA)'
  return ''
}

/**
 * Why importing @tensorflow/tfjs-node-gpu threw, from the error's message (Node's module resolution or the
 * dynamic loader's dlerror text, as users report them in tensorflow/tfjs issues): what is missing, then
 * what to install. No final full stop (backend.ts joins reasons with '; ').
 */
export function explainNodeGpuLoadError(message: string): string {
  const text = message.trim()
  // The package itself is absent (optional dependency skipped, or never installed).
  if (/Cannot find (module|package) '@tensorflow\/tfjs-node-gpu'/.test(text)) {
    return `@tensorflow/tfjs-node-gpu is not installed (optional: left out where its libtensorflow download failed). ${NODE_GPU_ADVICE}`
  }
  // The package is there but its native binding is not: the libtensorflow download at install failed.
  // tfjs-node 2.7+ checks for it itself ("can not be found at path: …"); older ones fail in require().
  const binding = /(?:can not be found at path: |Cannot find module ')([^']*?tfjs_binding\.node)/.exec(text)
  if (binding) {
    return `@tensorflow/tfjs-node-gpu is installed without its native binding (${binding[1]} is missing: ${REBUILD_ADVICE}). ${NODE_GPU_ADVICE}`
  }
  // dlopen: "libcudart.so.11.0: cannot open shared object file: No such file or directory"
  const missing = /([^\s/:'"]+\.so(?:\.[0-9.]+)?): cannot open shared object file/.exec(text)
  if (missing) {
    const soname = missing[1]!
    const fix = /^libtensorflow/.test(soname) ? `${REBUILD_ADVICE}. ${NODE_GPU_ADVICE}` : NODE_GPU_ADVICE
    return `@tensorflow/tfjs-node-gpu failed to load: ${soname}${libraryFrom(soname)} cannot be found. ${fix}`
  }
  // glibc / libstdc++ older than libtensorflow was built for.
  const version = /version `((?:GLIBC|GLIBCXX|CXXABI)_[0-9.]+)' not found(?: \(required by ([^)]+)\))?/.exec(text)
  if (version) {
    const by = version[2] ? ` (required by ${version[2]})` : ''
    return `@tensorflow/tfjs-node-gpu failed to load: this system's C/C++ runtime lacks ${version[1]}${by}; libtensorflow 2.9.1 needs a newer glibc/libstdc++. ${NODE_GPU_ADVICE}`
  }
  // Windows: LoadLibrary names the binding when it or a DLL it needs (tensorflow.dll, cudart64_110.dll, cudnn64_8.dll) is missing.
  if (/The specified module could not be found/.test(text) && /tfjs_binding\.node/.test(text)) {
    return `@tensorflow/tfjs-node-gpu failed to load: its binding or a DLL it needs is missing (tensorflow.dll from its install, or CUDA 11's cudart64_110.dll / cuDNN 8's cudnn64_8.dll). ${NODE_GPU_ADVICE}`
  }
  const first = text.split('\n')[0]!.trim()
  return `@tensorflow/tfjs-node-gpu is installed but failed to load: ${first.replace(/\.$/, '')}. ${NODE_GPU_ADVICE}`
}

/**
 * Opens a shared library by soname the way TensorFlow's dso_loader does (dlopen, honouring LD_LIBRARY_PATH)
 * and returns null when it opens, else the loader's message. Node's process.dlopen refuses any library
 * that is not a Node addon *after* opening it ("Module did not self-register"), which means it was found.
 */
export function dlopenError(soname: string): string | null {
  try {
    process.dlopen({ exports: {} }, soname)
    return null
  } catch (err) {
    const message = (err as Error).message
    return /did not self-register|Module did not/.test(message) ? null : message
  }
}

/** The CUDA 11 libraries libtensorflow 2.9.1 would fail to open here (Linux only; elsewhere none are checked). */
export function missingCudaLibraries(open: (soname: string) => string | null = dlopenError): { soname: string; from: string }[] {
  if (process.platform !== 'linux') return []
  return CUDA_LIBRARIES.filter((l) => open(l.soname) !== null)
}

/** Why tfjs-node-gpu loaded yet TensorFlow placed no device on a GPU, naming the libraries it could not open. */
export function explainNoGpuDevice(missing: { soname: string; from: string }[]): string {
  if (missing.length === 0) {
    return `tfjs-node-gpu loaded but TensorFlow found no usable GPU (every CUDA 11 library opens: no NVIDIA GPU visible, or one too old for CUDA 11.2)`
  }
  const list = missing.map((l) => `${l.soname} (${l.from})`).join(', ')
  return `tfjs-node-gpu loaded but TensorFlow runs on the CPU: ${list} cannot be opened. ${NODE_GPU_ADVICE}`
}

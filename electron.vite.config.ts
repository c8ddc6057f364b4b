import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'electron-vite'
import { resolve } from 'node:path'

export default defineConfig({
  main: {
    build: {
      rollupOptions: {
        // The CLI, the job worker and the desktop main process share the core; one build emits all of them.
        // Optional native backend, loaded at run time only where it installed.
        external: ['@tensorflow/tfjs-node-gpu'],
        input: {
          index: resolve('src/main/index.ts'),
          cli: resolve('src/cli/index.ts'),
          'job-worker': resolve('src/core/jobs/worker.ts'),
          // The drift kernel's worker thread, a self-contained file of its own (no eval'd code), under
          // out/main/threads: worker threads get no asar support, so the package unpacks that folder.
          'threads/drift-kernel': resolve('src/core/analysis/drift-kernel-worker.ts'),
          // The SAE step's host loops (src/core/sae/host-kernel.ts), the same way.
          'threads/sae-kernel': resolve('src/core/sae/host-kernel-worker.ts')
        },
        output: { entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' }
      }
    }
  },
  preload: {
    // Sandboxed preload scripts must be CommonJS.
    build: { rollupOptions: { output: { format: 'cjs', entryFileNames: '[name].cjs' } } }
  },
  renderer: {
    root: 'src/renderer',
    build: { rollupOptions: { input: resolve('src/renderer/index.html') } },
    plugins: [vue()]
  }
})

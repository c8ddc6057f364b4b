// Every file the desktop app finds at run time, resolved in one place for a source checkout and for an
// installed package alike. No Electron import: tests/unit/packaged-layout.test.ts resolves these same paths
// in an archive built with the package's rules.
import { join } from 'node:path'

/** Where the app runs from: Electron's app.getAppPath(), process.resourcesPath and app.isPackaged. */
export interface AppLayout {
  /** The app's root: the repository in a checkout, `<resources>/app.asar` in a package. */
  appPath: string
  /** `<resources>`: beside app.asar; holds extraResources (the demo series) in a package. */
  resourcesPath: string
  packaged: boolean
}

export interface RuntimePaths {
  /** The sandboxed preload script (CommonJS), read by Electron itself: may sit in the archive. */
  preload: string
  /** The built renderer, loaded over file:// (Electron reads it from the archive). */
  rendererIndex: string
  /** The job worker bundle, started with utilityProcess.fork, which loads ES modules from the archive. */
  jobWorker: string
  /** The drift kernel's worker-thread bundle: worker threads get no asar support, so always a real file. */
  driftKernel: string
  /** The SAE step's host-loop worker-thread bundle: a real file, as the drift kernel's. */
  saeKernel: string
  /** better-sqlite3 built for Electron's ABI: dlopen needs a real file, so always outside the archive. */
  sqliteBinding: string
  /** The demo series (checkpoints, corpus, tokenizer, pairs): copied to the user's documents on first use. */
  demo: string
}

/** The relative locations inside the app; the same in a checkout and in the archive. */
export const APP_FILES = {
  preload: 'out/preload/index.cjs',
  rendererIndex: 'out/renderer/index.html',
  jobWorker: 'out/main/job-worker.js',
  driftKernel: 'out/main/threads/drift-kernel.js',
  saeKernel: 'out/main/threads/sae-kernel.js',
  sqliteBinding: 'out/native/electron/better_sqlite3.node'
} as const

/**
 * Scripts started with node:worker_threads go here: worker threads get no asar support, so each must be a
 * real, self-contained file, and the package unpacks this folder. Today: the drift kernel (drift-kernel.js) and
 * the SAE step's host loops (sae-kernel.js).
 */
export const THREADS_DIR = 'out/main/threads'

/** The demo series: `resources/demo` in a checkout, `<resources>/demo` in a package (extraResources). */
export const DEMO_IN_CHECKOUT = 'resources/demo'
export const DEMO_IN_PACKAGE = 'demo'

/** The real-file twin of a path inside an asar archive: `…/app.asar/x` → `…/app.asar.unpacked/x`. */
export function unpackedPath(path: string): string {
  return path.replace(/\.asar(?=[\\/]|$)/, '.asar.unpacked')
}

export function runtimePaths(layout: AppLayout): RuntimePaths {
  const inApp = (relative: string): string => join(layout.appPath, ...relative.split('/'))
  const real = (relative: string): string => (layout.packaged ? unpackedPath(inApp(relative)) : inApp(relative))
  return {
    preload: inApp(APP_FILES.preload),
    rendererIndex: inApp(APP_FILES.rendererIndex),
    jobWorker: inApp(APP_FILES.jobWorker),
    driftKernel: real(APP_FILES.driftKernel),
    saeKernel: real(APP_FILES.saeKernel),
    sqliteBinding: real(APP_FILES.sqliteBinding),
    demo: layout.packaged ? join(layout.resourcesPath, DEMO_IN_PACKAGE) : inApp(DEMO_IN_CHECKOUT)
  }
}

/** What the job worker's process needs in its environment to find the same files (it inherits the rest). */
export function workerEnvironment(paths: RuntimePaths): Record<string, string> {
  return {
    FEATURETRACE_SQLITE_BINDING: paths.sqliteBinding,
    FEATURETRACE_DEMO_DIR: paths.demo,
    FEATURETRACE_DRIFT_KERNEL: paths.driftKernel,
    FEATURETRACE_SAE_KERNEL: paths.saeKernel
  }
}

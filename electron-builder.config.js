// The desktop packages, from one config: Linux AppImage and .deb, macOS .dmg, Windows NSIS installer.
// `npm run dist` builds the ones for the machine it runs on (README "Installing"). What the app reads at
// run time is resolved by src/main/paths.ts; tests/unit/packaged-layout.test.ts builds an archive with the
// rules below and checks every one of those paths in it.

/** The app's own files: the electron-vite build and better-sqlite3 built for Electron. */
const files = [
  'package.json',
  'out/main/**',
  'out/preload/**',
  'out/renderer/**',
  'out/native/electron/better_sqlite3.node',
  '!**/*.map',
  // better-sqlite3's own build is for Node's ABI and its sources are only for compiling: the app loads
  // out/native/electron/better_sqlite3.node instead (src/main/paths.ts).
  '!**/node_modules/better-sqlite3/{build,deps,src}/**',
  '!**/node_modules/better-sqlite3/binding.gyp'
]

/**
 * What must be a real file outside app.asar: native addons (dlopen cannot read an archive), the whole of the
 * optional tfjs-node-gpu (its addon loads libtensorflow beside it), onnxruntime-node's binaries (its addon
 * loads libonnxruntime beside it), and scripts for node:worker_threads (threads get no asar support;
 * src/main/paths.ts THREADS_DIR).
 */
const asarUnpack = ['**/*.node', 'out/native/**', 'node_modules/@tensorflow/tfjs-node-gpu/**', 'node_modules/onnxruntime-node/bin/**', 'out/main/threads/**']

/** The bundled demo series, beside the archive: copied to the user's documents the first time it is opened. */
const extraResources = [
  { from: 'resources/demo', to: 'demo', filter: ['**/*'] },
  { from: 'resources/harvest_activations.py', to: 'harvest_activations.py' }
]

/** Electron's architecture names by electron-builder's Arch enum (builder-util's Arch). */
const ARCH = { 0: 'ia32', 1: 'x64', 2: 'armv7l', 3: 'arm64', 4: 'universal' }

/**
 * better-sqlite3 for Electron's ABI, for the platform and architecture being packaged, into
 * out/native/electron before the files are copied. electron-builder's own rebuild (npmRebuild) is off: it
 * rebuilds node_modules in place, which would leave the CLI, the browser mode and the tests with a binary
 * Node cannot load.
 */
async function beforePack(context) {
  const { ensureElectronSqlite, electronSqliteStamp } = await import('./scripts/rebuild-electron.mjs')
  const platform = context.electronPlatformName === 'mas' ? 'darwin' : context.electronPlatformName
  const arch = ARCH[context.arch]
  if (!arch || arch === 'universal') throw new Error(`Packaging for architecture ${arch ?? context.arch} is not supported; choose x64 or arm64.`)
  await ensureElectronSqlite({ platform, arch })
  console.log(`  • better-sqlite3: ${electronSqliteStamp({ platform, arch })}`)
}

/** @type {import('electron-builder').Configuration} */
export default {
  appId: 'org.featuretrace.FeatureTrace',
  productName: 'FeatureTrace',
  copyright: 'Copyright © FeatureTrace contributors (MIT licence)',
  directories: { output: 'dist', buildResources: 'build' },
  files,
  asar: true,
  asarUnpack,
  extraResources,
  npmRebuild: false,
  nodeGypRebuild: false,
  beforePack,
  // An offline tool: no update metadata, nothing published (the About dialog says where newer packages are).
  publish: null,
  artifactName: '${productName}-${version}-${os}-${arch}.${ext}',
  // A project folder holds project.ftproj: double-clicking it opens the folder in FeatureTrace.
  fileAssociations: [
    {
      ext: 'ftproj',
      name: 'FeatureTrace.Project',
      description: 'FeatureTrace project',
      mimeType: 'application/x-featuretrace-project',
      role: 'Editor'
    }
  ],
  // Harden the Electron binary: it cannot be turned into a plain Node, take NODE_OPTIONS or a debugger
  // port from outside, or load an app other than its own archive.
  electronFuses: {
    runAsNode: false,
    enableCookieEncryption: true,
    enableNodeOptionsEnvironmentVariable: false,
    enableNodeCliInspectArguments: false,
    enableEmbeddedAsarIntegrityValidation: true,
    onlyLoadAppFromAsar: true
  },
  linux: {
    target: ['AppImage', 'deb'],
    category: 'Science',
    executableName: 'featuretrace',
    synopsis: 'Trace how language-model features form across training checkpoints',
    maintainer: 'FeatureTrace contributors',
    icon: 'build/icon.png'
  },
  deb: {
    // Electron's own needs (electron-builder's defaults), nothing more: the engine is in the package.
    depends: ['libgtk-3-0', 'libnotify4', 'libnss3', 'libxss1', 'libxtst6', 'xdg-utils', 'libatspi2.0-0', 'libuuid1', 'libsecret-1-0']
  },
  mac: {
    target: ['dmg'],
    category: 'public.app-category.developer-tools',
    icon: 'build/icon.png'
  },
  dmg: { title: '${productName} ${version}' },
  win: {
    target: ['nsis'],
    icon: 'build/icon.png'
  },
  nsis: {
    oneClick: false,
    perMachine: false,
    allowToChangeInstallationDirectory: true,
    include: 'build/installer.nsh'
  }
}

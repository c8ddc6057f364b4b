// The installed package's layout, built here without Electron's binary: app.asar is made with @electron/asar
// from the build output and the production dependencies, selected and unpacked by electron-builder's own
// matcher with electron-builder.config.js's `files` and `asarUnpack`, the extra resources copied beside it
// as the config says. Then every path src/main/paths.ts resolves at run time is looked up in that layout,
// and every import the main process and the job worker make is resolved in the archive as Node would.
import { createReadStream, existsSync, lstatSync, readdirSync, readFileSync, statSync, type Stats } from 'node:fs'
import { cpSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, posix, relative, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { APP_FILES, DEMO_IN_CHECKOUT, runtimePaths, THREADS_DIR, unpackedPath, type RuntimePaths } from '../../src/main/paths'
import { REPO, tempDir } from '../helpers'

/** The part of @electron/asar used here (3.4.1, the version electron-builder packs with). */
type AsarEntry =
  | { type: 'directory'; path: string; unpacked: boolean }
  | { type: 'file'; path: string; unpacked: boolean; stat: { mode: number; size: number }; streamGenerator: () => NodeJS.ReadableStream }
interface Asar {
  createPackageFromStreams(dest: string, streams: AsarEntry[]): Promise<unknown>
  listPackage(archive: string, options: { isPack: boolean }): string[]
  statFile(archive: string, filename: string, followLinks?: boolean): { unpacked?: boolean; size?: number; files?: unknown }
  extractFile(archive: string, filename: string): Buffer
}

// Packaging tools are dev dependencies, CommonJS; a copy installed elsewhere can be named with NODE_PATH.
const require = createRequire(import.meta.url)
const asar = require('@electron/asar') as Asar
const { FileMatcher } = require('app-builder-lib/out/fileMatcher') as {
  FileMatcher: new (from: string, to: string, expand: (s: string) => string, patterns: string[]) => { createFilter(): (file: string, stat: Stats) => boolean }
}

interface BuilderConfig {
  files: string[]
  asarUnpack: string[]
  extraResources: { from: string; to: string; filter?: string[] }[]
}

interface Entry {
  /** Path inside the app, posix. */
  rel: string
  /** Where its bytes come from. */
  source: string
}

const STAND_IN = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'

/** Files under `dir` (posix paths relative to `base`), not descending into folders `skip` names. */
function walk(dir: string, base: string, skip: (rel: string, name: string) => boolean, out: Entry[] = []): Entry[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const abs = join(dir, e.name)
    const rel = relative(base, abs).split(sep).join('/')
    if (skip(rel, e.name)) continue
    const st = statSync(abs)
    if (st.isDirectory()) walk(abs, base, skip, out)
    else if (st.isFile()) out.push({ rel, source: abs })
  }
  return out
}

/** The production packages npm installed, as the lockfile names them (`node_modules/a`, `node_modules/a/node_modules/b`). */
function productionPackages(): string[] {
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }
  return Object.entries(lock.packages)
    .filter(([path, p]) => path.startsWith('node_modules/') && !p.dev && existsSync(join(REPO, path, 'package.json')))
    .map(([path]) => path)
}

/** `…/app.asar/x/y` → the archive and `x/y` inside it; null for a path outside any archive. */
function splitArchive(path: string): { archive: string; inner: string } | null {
  const m = /^(.*\.asar)[\\/](.*)$/.exec(path)
  return m && !m[1]!.endsWith('.unpacked') ? { archive: m[1]!, inner: m[2]! } : null
}

describe('the packaged layout (app.asar built with the package rules)', () => {
  let t: ReturnType<typeof tempDir>
  let resources: string
  let archive: string
  let paths: RuntimePaths
  let config: BuilderConfig
  let listed: Set<string>
  let standIn = false
  const optional = new Set(
    Object.keys((JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { optionalDependencies?: object }).optionalDependencies ?? {})
  )

  /** The archive's header entry for a path inside it (posix). */
  const header = (inner: string): { unpacked?: boolean; size?: number; files?: unknown } | null => {
    try {
      return asar.statFile(archive, inner.split('/').join(sep), false)
    } catch {
      return null
    }
  }
  const readInner = (inner: string): string => asar.extractFile(archive, inner.split('/').join(sep)).toString('utf8')
  const isFile = (inner: string): boolean => listed.has(`/${inner}`) && header(inner)?.files === undefined

  /** Node's lookup of a bare package name from a file inside the archive: node_modules folders upwards. */
  function resolvePackage(fromInner: string, name: string): string | null {
    let dir = posix.dirname(fromInner)
    for (;;) {
      const candidate = posix.join(dir === '.' ? '' : dir, 'node_modules', name, 'package.json')
      if (isFile(candidate)) return posix.dirname(candidate)
      if (dir === '.' || dir === '') return null
      dir = posix.dirname(dir)
    }
  }

  /** The bundle files reachable from an entry through relative static and dynamic imports, and the bare names they import. */
  function moduleGraph(entry: string): { files: string[]; bare: Map<string, string> } {
    const files: string[] = []
    const bare = new Map<string, string>()
    const queue = [entry]
    while (queue.length) {
      const file = queue.shift()!
      if (files.includes(file)) continue
      files.push(file)
      const code = readInner(file)
      const specifiers = [
        ...code.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']/gm),
        ...code.matchAll(/^\s*import\s*["']([^"']+)["']/gm),
        ...code.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)
      ].map((m) => m[1]!)
      for (const s of specifiers) {
        if (s.startsWith('.')) queue.push(posix.normalize(posix.join(posix.dirname(file), s)))
        else if (!s.startsWith('node:') && s !== 'electron') bare.set(s, file)
      }
    }
    return { files, bare }
  }
  const packageName = (specifier: string): string =>
    specifier
      .split('/')
      .slice(0, specifier.startsWith('@') ? 2 : 1)
      .join('/')

  beforeAll(async () => {
    for (const built of [APP_FILES.preload, APP_FILES.rendererIndex, APP_FILES.jobWorker, APP_FILES.driftKernel, APP_FILES.saeKernel, 'out/main/index.js']) {
      if (!existsSync(join(REPO, built))) throw new Error(`${built} is missing: run \`npm run build\` first.`)
    }
    config = (await import(pathToFileURL(join(REPO, 'electron-builder.config.js')).href)).default as BuilderConfig
    t = tempDir('ft-package-')
    resources = join(t.dir, 'resources')
    archive = join(resources, 'app.asar')

    // The app's own files, chosen by `files` (electron-builder adds node_modules itself, below).
    const ownFilter = new FileMatcher(REPO, '', (s) => s, [...config.files, '!**/node_modules/**']).createFilter()
    const skipped = new Set(['node_modules', '.git', 'dist', 'test-results', 'projects', 'bench'])
    const own = walk(REPO, REPO, (rel, name) => rel === name && skipped.has(name)).filter((e) => ownFilter(e.source, statSync(e.source)))
    // better-sqlite3 for Electron's ABI is made at packaging time (Electron's headers cannot be downloaded here):
    // its place in the layout is what is tested, so Node's build stands in for it.
    if (!own.some((e) => e.rel === APP_FILES.sqliteBinding)) {
      standIn = true
      const source = join(REPO, STAND_IN)
      if (ownFilter(join(REPO, APP_FILES.sqliteBinding), statSync(source))) own.push({ rel: APP_FILES.sqliteBinding, source })
    }
    // Production dependencies, with the `files` rules' exclusions (getNodeModuleFileMatcher: `**/*` then the `!` patterns).
    const moduleFilter = new FileMatcher(REPO, '', (s) => s, ['**/*', ...config.files.filter((p) => p.startsWith('!'))]).createFilter()
    const modules = productionPackages().flatMap((pkg) =>
      walk(join(REPO, pkg), REPO, (rel, name) => name === 'node_modules' && rel !== pkg).filter((e) => moduleFilter(e.source, statSync(e.source)))
    )
    // What becomes a real file beside the archive, by `asarUnpack` (electron-builder's unpackPattern).
    const unpack = new FileMatcher(REPO, '', (s) => s, config.asarUnpack).createFilter()

    const entries = [...own, ...modules].sort((a, b) => a.rel.localeCompare(b.rel))
    // A folder is unpacked when everything in it is: @electron/asar marks every file of an unpacked folder
    // unpacked, so out/main (packed bundles beside out/main/threads) must stay a packed folder.
    const dirs = new Map<string, boolean>()
    const streams: AsarEntry[] = []
    for (const e of entries) {
      const st = statSync(e.source)
      const unpacked = unpack(join(REPO, e.rel), st)
      const parts = e.rel.split('/')
      for (let i = 1; i < parts.length; i++) {
        const d = parts.slice(0, i).join('/')
        if (!dirs.has(d)) {
          dirs.set(d, true)
          streams.push({ type: 'directory', path: d.split('/').join(sep), unpacked: false })
        }
        if (!unpacked) dirs.set(d, false)
      }
      streams.push({
        type: 'file',
        path: e.rel.split('/').join(sep),
        unpacked,
        stat: { mode: st.mode, size: st.size },
        streamGenerator: () => createReadStream(e.source)
      })
    }
    for (const s of streams) if (s.type === 'directory') s.unpacked = dirs.get(s.path.split(sep).join('/')) ?? false
    mkdirSync(resources, { recursive: true })
    await asar.createPackageFromStreams(archive, streams)
    for (const extra of config.extraResources) cpSync(join(REPO, extra.from), join(resources, extra.to), { recursive: true })
    listed = new Set(asar.listPackage(archive, { isPack: false }).map((p) => p.split(sep).join('/')))
    paths = runtimePaths({ appPath: archive, resourcesPath: resources, packaged: true })
  }, 300_000)

  afterAll(() => t?.cleanup())

  it('has the preload, the renderer and the job worker in the archive', () => {
    for (const path of [paths.preload, paths.rendererIndex, paths.jobWorker]) {
      const at = splitArchive(path)
      expect(at, path).not.toBeNull()
      expect(at!.archive).toBe(archive)
      expect(isFile(at!.inner.split(sep).join('/')), `${at!.inner} in app.asar`).toBe(true)
    }
    // Everything the renderer's page loads sits beside it in the archive.
    const html = readInner(APP_FILES.rendererIndex)
    for (const [, src] of html.matchAll(/(?:src|href)="\.\/([^"]+)"/g)) expect(isFile(posix.join('out/renderer', src!)), src).toBe(true)
    const pkg = JSON.parse(readInner('package.json')) as { main: string; type: string }
    expect(isFile(pkg.main)).toBe(true)
    expect(pkg.main).toBe('out/main/index.js')
  })

  it('has better-sqlite3 for Electron as a real file outside the archive, and no Node build of it', () => {
    if (standIn) console.log(`[packaged-layout] ${APP_FILES.sqliteBinding} is made by npm run dist; Node's build stood in for it here.`)
    expect(paths.sqliteBinding).toBe(unpackedPath(join(archive, ...APP_FILES.sqliteBinding.split('/'))))
    expect(paths.sqliteBinding).toContain(`app.asar.unpacked${sep}`)
    expect(statSync(paths.sqliteBinding).isFile()).toBe(true)
    expect(header(APP_FILES.sqliteBinding)?.unpacked).toBe(true)
    expect([...listed].filter((p) => p.startsWith('/node_modules/better-sqlite3/build'))).toEqual([])
    // What the app loads it with: better-sqlite3's JavaScript, in the archive.
    expect(resolvePackage(APP_FILES.jobWorker, 'better-sqlite3')).toBe('node_modules/better-sqlite3')
  })

  it('has every native addon unpacked, on disk beside the archive', () => {
    const natives = [...listed].filter((p) => p.endsWith('.node')).map((p) => p.slice(1))
    expect(natives).toContain(APP_FILES.sqliteBinding)
    for (const n of natives) {
      expect(header(n)?.unpacked, n).toBe(true)
      expect(existsSync(join(`${archive}.unpacked`, ...n.split('/'))), n).toBe(true)
    }
  })

  it('has the demo series beside the archive, every file of it', () => {
    expect(paths.demo).toBe(join(resources, 'demo'))
    const shipped = walk(join(REPO, DEMO_IN_CHECKOUT), join(REPO, DEMO_IN_CHECKOUT), () => false)
    expect(shipped.length).toBeGreaterThan(10)
    for (const f of shipped) expect(statSync(join(paths.demo, ...f.rel.split('/'))).size, f.rel).toBe(statSync(f.source).size)
    for (const needed of ['checkpoints', 'corpus.jsonl', 'tokenizer']) expect(existsSync(join(paths.demo, needed)), needed).toBe(true)
    expect(existsSync(join(resources, 'harvest_activations.py'))).toBe(true)
  })

  it('resolves every package the main process and the job worker import, in the archive', () => {
    for (const entry of ['out/main/index.js', APP_FILES.jobWorker]) {
      const { files, bare } = moduleGraph(entry)
      expect(files.length, entry).toBeGreaterThan(1)
      for (const [specifier, from] of bare) {
        const name = packageName(specifier)
        if (optional.has(name)) continue
        expect(resolvePackage(from, name), `${specifier} imported by ${from}`).not.toBeNull()
      }
    }
  })

  it('holds every dependency of every packaged package (a complete production tree)', () => {
    const packages = [...listed].filter((p) => /\/node_modules\/(@[^/]+\/)?[^/@]+\/package\.json$/.test(p)).map((p) => posix.dirname(p.slice(1)))
    expect(packages.length).toBeGreaterThan(20)
    const missing: string[] = []
    for (const dir of packages) {
      const pkg = JSON.parse(readInner(`${dir}/package.json`)) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> }
      for (const dep of Object.keys(pkg.dependencies ?? {})) {
        if (pkg.optionalDependencies?.[dep] !== undefined) continue
        if (!resolvePackage(`${dir}/package.json`, dep)) missing.push(`${dir} → ${dep}`)
      }
    }
    expect(missing).toEqual([])
  })

  it('has the wasm engine the job worker loads with fs, and the drift and SAE kernels as real, self-contained files', () => {
    const wasm = resolvePackage(APP_FILES.jobWorker, '@tensorflow/tfjs-backend-wasm')
    expect(wasm).not.toBeNull()
    for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm']) expect(isFile(`${wasm}/dist/${f}`), f).toBe(true)
    // The kernels run in worker threads, which get no asar support: each bundle must be a real file beside the
    // archive, where the app points the job worker and the analysis process (FEATURETRACE_DRIFT_KERNEL,
    // FEATURETRACE_SAE_KERNEL).
    const worker = moduleGraph(APP_FILES.jobWorker).files
    for (const kernel of ['driftKernel', 'saeKernel'] as const) {
      const file = APP_FILES[kernel]
      expect(file.startsWith(`${THREADS_DIR}/`)).toBe(true)
      expect(paths[kernel]).toBe(unpackedPath(join(archive, ...file.split('/'))))
      expect(header(file)?.unpacked, file).toBe(true)
      expect(existsSync(paths[kernel]), paths[kernel]).toBe(true)
      // Self-contained: a thread cannot import a chunk or a package from the archive either.
      const { files, bare } = moduleGraph(file)
      expect(files).toEqual([file])
      expect([...bare.keys()]).toEqual([])
      // The worker graph names the bundle it starts.
      const name = file.split('/').pop()!
      expect(
        worker.some((f) => readInner(f).includes(name)),
        `${name} named in the worker graph`
      ).toBe(true)
    }
    for (const p of [...listed].filter((p) => p.startsWith(`/${THREADS_DIR}/`) && p.endsWith('.js'))) {
      expect(header(p.slice(1))?.unpacked, p).toBe(true)
    }
  })

  it("unpacks onnxruntime-node's addon together with the library it loads beside it", () => {
    const ort = resolvePackage(APP_FILES.jobWorker, 'onnxruntime-node')
    expect(ort).not.toBeNull()
    const binaries = [...listed].filter((p) => p.startsWith(`/${ort}/bin/`) && (p.endsWith('.node') || /libonnxruntime/.test(p)))
    expect(binaries.some((p) => p.endsWith('onnxruntime_binding.node'))).toBe(true)
    expect(binaries.some((p) => /libonnxruntime\.(so\.1|dylib|dll)/.test(p) || /onnxruntime\.dll/.test(p))).toBe(true)
    for (const p of binaries) expect(header(p.slice(1))?.unpacked, p).toBe(true)
  })

  it('keeps everything else packed', () => {
    const unpacked = [...listed].filter((p) => header(p.slice(1))?.unpacked && header(p.slice(1))?.files === undefined)
    const allowed = (p: string): boolean =>
      p.endsWith('.node') ||
      p.startsWith(`/${THREADS_DIR}/`) ||
      p.startsWith('/out/native/') ||
      p.includes('tfjs-node-gpu') ||
      p.includes('/onnxruntime-node/bin/')
    expect(unpacked.filter((p) => !allowed(p))).toEqual([])
    expect(lstatSync(archive).size).toBeGreaterThan(1_000_000)
  })
})

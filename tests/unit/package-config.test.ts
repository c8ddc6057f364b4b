// electron-builder.config.js, checked by electron-builder's own schema and against what the app expects:
// the targets per platform, the app id, the file and unpack rules, the extra resources and the file association.
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { inflateSync } from 'node:zlib'
import { pathToFileURL } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { APP_FILES, DEMO_IN_CHECKOUT, DEMO_IN_PACKAGE, THREADS_DIR } from '../../src/main/paths'
import { MARKER_FILE } from '../../src/core/project'
import { REPO } from '../helpers'

const require = createRequire(import.meta.url)

type Target = string | { target: string }
interface BuilderConfig {
  appId: string
  productName: string
  files: string[]
  asar: boolean
  asarUnpack: string[]
  extraResources: { from: string; to: string; filter?: string[] }[]
  npmRebuild: boolean
  beforePack: (context: unknown) => Promise<void>
  publish: null
  fileAssociations: { ext: string; mimeType: string; name: string }[]
  electronFuses: Record<string, boolean>
  linux: { target: Target[]; executableName: string; category: string }
  mac: { target: Target[] }
  win: { target: Target[] }
  nsis: { include: string; oneClick: boolean; perMachine: boolean }
  directories: { output: string; buildResources: string }
}

const targets = (list: Target[]): string[] => list.map((t) => (typeof t === 'string' ? t : t.target))

describe('the package config (electron-builder.config.js)', () => {
  let config: BuilderConfig
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
    main: string
    scripts: Record<string, string>
    devDependencies: Record<string, string>
  }

  beforeAll(async () => {
    config = (await import(pathToFileURL(join(REPO, 'electron-builder.config.js')).href)).default as BuilderConfig
  })

  it("passes electron-builder's own validation", async () => {
    const { validateConfiguration } = require('app-builder-lib/out/util/config/config') as {
      validateConfiguration(config: unknown, debugLogger: { isEnabled: boolean; add(): void }): Promise<void>
    }
    await expect(validateConfiguration(config, { isEnabled: false, add: () => {} })).resolves.toBeUndefined()
    // …which does reject what it does not know.
    await expect(validateConfiguration({ ...config, linux: { ...config.linux, tragets: [] } }, { isEnabled: false, add: () => {} })).rejects.toThrow(
      /configuration\.linux/
    )
  })

  it('builds AppImage and deb on Linux, dmg on macOS, an NSIS installer on Windows, with one app id', () => {
    expect(targets(config.linux.target).sort()).toEqual(['AppImage', 'deb'])
    expect(targets(config.mac.target)).toEqual(['dmg'])
    expect(targets(config.win.target)).toEqual(['nsis'])
    expect(config.appId).toMatch(/^[a-z][a-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)+$/)
    expect(config.productName).toBe('FeatureTrace')
    expect(config.linux.executableName).toBe('featuretrace')
    // An offline tool: nothing is published and no update feed is written into the app.
    expect(config.publish).toBeNull()
    expect(pkg.scripts.dist).toBe('node scripts/package/dist.mjs')
  })

  it('takes the build output and better-sqlite3 for Electron, not the Node build nor sources', () => {
    for (const p of ['out/main/**', 'out/preload/**', 'out/renderer/**', APP_FILES.sqliteBinding]) expect(config.files).toContain(p)
    expect(pkg.main).toBe('out/main/index.js')
    expect(config.files).toContain('!**/node_modules/better-sqlite3/{build,deps,src}/**')
    expect(config.files.some((p) => /^(src|tests|resources)\b/.test(p))).toBe(false)
    // Rebuilt out of tree in beforePack (electron-builder's in-place rebuild would break the CLI and the tests).
    expect(config.npmRebuild).toBe(false)
    expect(typeof config.beforePack).toBe('function')
  })

  it('unpacks native addons, the optional GPU engine and thread scripts; nothing else', () => {
    expect(config.asar).toBe(true)
    expect(config.asarUnpack).toEqual([
      '**/*.node',
      'out/native/**',
      'node_modules/@tensorflow/tfjs-node-gpu/**',
      'node_modules/onnxruntime-node/bin/**',
      `${THREADS_DIR}/**`
    ])
  })

  it('ships the demo series beside the archive, where src/main/paths.ts looks for it', () => {
    expect(config.extraResources).toContainEqual({ from: DEMO_IN_CHECKOUT, to: DEMO_IN_PACKAGE, filter: ['**/*'] })
    expect(existsSync(join(REPO, DEMO_IN_CHECKOUT, 'checkpoints'))).toBe(true)
    for (const r of config.extraResources) expect(existsSync(join(REPO, r.from)), r.from).toBe(true)
  })

  it('associates the project marker, and adds "Open in FeatureTrace" to folders on Windows', () => {
    expect(config.fileAssociations).toHaveLength(1)
    expect(`project.${config.fileAssociations[0]!.ext}`).toBe(MARKER_FILE)
    expect(config.fileAssociations[0]!.mimeType).toBe('application/x-featuretrace-project')
    const nsh = readFileSync(join(REPO, config.nsis.include), 'utf8')
    expect(nsh).toMatch(/!macro customInstall[\s\S]*Software\\Classes\\Directory\\shell\\FeatureTrace\\command[\s\S]*!macroend/)
    expect(nsh).toMatch(/!macro customUnInstall[\s\S]*DeleteRegKey SHELL_CONTEXT "Software\\Classes\\Directory\\shell\\FeatureTrace"/)
    // Installs for the user without administrator rights, who may choose the folder.
    expect(config.nsis).toMatchObject({ oneClick: false, perMachine: false })
  })

  it('hardens the Electron binary with fuses', () => {
    expect(config.electronFuses).toMatchObject({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      onlyLoadAppFromAsar: true
    })
  })

  it('pins the packaging tools exactly, like every other dependency', () => {
    expect(pkg.devDependencies['electron-builder']).toMatch(/^\d+\.\d+\.\d+$/)
    expect(pkg.devDependencies['@electron/asar']).toMatch(/^\d+\.\d+\.\d+$/)
    expect(pkg.devDependencies.electron).toMatch(/^\d+\.\d+\.\d+$/)
  })

  it('draws the icon it names: a 1,024-px RGBA PNG', async () => {
    const { iconPng } = (await import(pathToFileURL(join(REPO, 'scripts/package/icon.mjs')).href)) as { iconPng(): Buffer }
    const png = iconPng()
    expect(png.subarray(1, 4).toString('ascii')).toBe('PNG')
    expect(png.readUInt32BE(16)).toBe(1024)
    expect(png.readUInt32BE(20)).toBe(1024)
    expect(png[25]).toBe(6) // RGBA
    const idat = png.indexOf('IDAT')
    const raw = inflateSync(png.subarray(idat + 4, idat + 4 + png.readUInt32BE(idat - 4)))
    const at = (x: number, y: number): number[] => [...raw.subarray(y * (1024 * 4 + 1) + 1 + x * 4, y * (1024 * 4 + 1) + 5 + x * 4)]
    expect(at(0, 0)[3]).toBe(0) // transparent corner
    expect(at(512, 512)).toEqual([0x42, 0x63, 0xeb, 255]) // the accent diamond
    expect(config.linux).toMatchObject({ icon: 'build/icon.png' })
  })
})

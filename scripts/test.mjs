// `npm test`: everything a fresh clone needs, then all checks and all tests, with their counts.
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { commandExists, ensureBuild, ensureDependencies, isRoot, log, ROOT, run } from './lib.mjs'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const PYTHON = process.env.FEATURETRACE_PYTHON ?? '/usr/bin/python3'

/**
 * What the tests need from Debian: Chromium (end-to-end), the Vulkan loader (with Chromium's SwiftShader driver it
 * gives the WebGPU test an emulated adapter), python3 with torch and scikit-learn (references).
 */
function ensureSystemPackages() {
  const missing = []
  if (!existsSync(CHROMIUM)) missing.push('chromium')
  if (process.platform === 'linux' && !vulkanLoaderPresent()) missing.push('libvulkan1')
  const py = spawnSync(PYTHON, ['-c', 'import torch, numpy, regex, sklearn'], { stdio: 'ignore' })
  if (py.status !== 0) missing.push('python3-torch', 'python3-numpy', 'python3-regex', 'python3-sklearn')
  if (missing.length === 0) return
  if (isRoot() && commandExists('apt-get')) {
    log(`Installing Debian packages the tests need: ${missing.join(' ')}…`)
    run('apt-get', ['update', '-qq'])
    run('apt-get', ['install', '-y', '-qq', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
    return
  }
  throw new Error(`The tests need Debian packages: sudo apt-get install ${missing.join(' ')} (or set CHROMIUM_PATH / FEATURETRACE_PYTHON).`)
}

/** Whether the dynamic loader finds libvulkan.so.1 (Node opens it, then refuses it as not an addon: found). */
function vulkanLoaderPresent() {
  try {
    process.dlopen({ exports: {} }, 'libvulkan.so.1')
    return true
  } catch (err) {
    return !/cannot open shared object file/.test(err.message)
  }
}

await ensureDependencies()
ensureSystemPackages()
ensureBuild({ force: true })
const bin = (name) => join(ROOT, 'node_modules/.bin', name)
log('Type-checking Node code and renderer code, linting, checking the layout…')
run(bin('tsc'), ['--noEmit', '-p', 'tsconfig.node.json'])
run(bin('vue-tsc'), ['--noEmit', '-p', 'tsconfig.web.json'])
run(bin('eslint'), ['.', '--max-warnings', '0'])
run(bin('prettier'), ['--check', '--log-level', 'warn', '.'])

mkdirSync(join(ROOT, 'test-results'), { recursive: true })
const report = join(ROOT, 'test-results', 'vitest.json')
log('Running unit, integration and end-to-end tests…')
const vitest = spawnSync(bin('vitest'), ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], {
  stdio: 'inherit',
  cwd: ROOT
})

if (!existsSync(report)) {
  console.log('tests: 0 passed, 1 failed')
  process.exit(vitest.status || 1)
}
const results = JSON.parse(readFileSync(report, 'utf8'))
const byProject = {}
for (const file of results.testResults) {
  const project = file.name.includes('/tests/e2e/') ? 'e2e' : file.name.includes('/tests/integration/') ? 'integration' : 'unit'
  const counts = (byProject[project] ??= { passed: 0, failed: 0, skipped: 0 })
  for (const t of file.assertionResults) {
    if (t.status === 'passed') counts.passed++
    else if (t.status === 'failed') counts.failed++
    else counts.skipped++
  }
  // A file that failed to load has no assertions but must still count as a failure.
  if (file.status === 'failed' && file.assertionResults.length === 0) counts.failed++
}
for (const [project, c] of Object.entries(byProject)) {
  console.log(`${project}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`)
}
const total = Object.values(byProject).reduce((a, c) => ({ passed: a.passed + c.passed, failed: a.failed + c.failed, skipped: a.skipped + c.skipped }), {
  passed: 0,
  failed: 0,
  skipped: 0
})
console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`)
process.exit(total.failed > 0 || vitest.status !== 0 || total.passed === 0 ? 1 : 0)

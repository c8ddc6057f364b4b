// Starting `featuretrace serve` as a user would, and Debian's Chromium driven by playwright-core.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll } from 'vitest'
import { CLI, REPO, tempDir } from '../helpers'

export const SCREENSHOTS = join(REPO, 'test-results', 'e2e')
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH.`)
  }
  mkdirSync(SCREENSHOTS, { recursive: true })
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
  })
}

export interface Served {
  url: string
  token: string | null
  process: ChildProcess
  stop(): Promise<void>
}

/** Where served test runs keep recent projects and put the demo project: never the user's own folders. */
const USER_DIRS = mkdtempSync(join(tmpdir(), 'ft-e2e-user-'))

/** Runs `featuretrace serve` on a free port and waits for the address it prints. */
export function serve(args: string[], env: Record<string, string> = {}): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FEATURETRACE_CONFIG_DIR: join(USER_DIRS, 'config'), FEATURETRACE_DOCUMENTS_DIR: join(USER_DIRS, 'Documents'), ...env }
  })
  let out = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 20_000)
    const onData = (c: Buffer): void => {
      out += c.toString()
      const m = /Open (http:\/\/\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        const token = /Access token: (\S+)/.exec(out)?.[1] ?? null
        resolve({
          url: m[1]!,
          token,
          process: child,
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null) return done()
              child.once('exit', () => done())
              child.kill('SIGTERM')
            })
        })
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}:\n${out}`)))
  })
}

/** A page that records uncaught errors and console errors, for tests to assert none happened. */
export async function openPage(browser: Browser, height = 860): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1400, height } })
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()))
  return { page, errors }
}

/** What an end-to-end describe block works with; its fields are there once its beforeAll has run. */
export interface Workstation {
  /** The block's temporary folder (removed after it). */
  readonly dir: string
  readonly browser: Browser
  /** The running `featuretrace serve` (a test may stop it and serve again). */
  served: Served
  /** A call through the served API, as the browser's client makes it; a refused call throws its message. */
  call<T = unknown>(name: string, payload?: unknown): Promise<T>
}

/**
 * The one setup of the end-to-end tests: a temporary folder, `prepare` (which makes what the project needs and
 * returns its folder; default DIR/project), Chromium, and `featuretrace serve` on the project; all of it goes
 * after the block. Call it inside a describe.
 */
export function useWorkstation(
  opts: { prefix?: string; prepare?: (dir: string) => Promise<string | void> | string | void; serveArgs?: string[]; timeout?: number } = {}
): Workstation {
  let t: { dir: string; cleanup: () => void } | null = null
  let browser: Browser | null = null
  let served: Served | null = null
  const ready = <T>(x: T | null, what: string): T => {
    if (x === null) throw new Error(`The workstation's ${what} is not ready: use it inside a test of the describe that set it up.`)
    return x
  }
  const w: Workstation = {
    get dir() {
      return ready(t, 'folder').dir
    },
    get browser() {
      return ready(browser, 'browser')
    },
    get served() {
      return ready(served, 'server')
    },
    set served(s: Served) {
      served = s
    },
    async call<T>(name: string, payload?: unknown): Promise<T> {
      const res = await fetch(new URL(`/api/call/${name}`, w.served.url), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(payload ?? {})
      })
      const reply = (await res.json()) as { ok: boolean; result: T; error?: { message: string } }
      if (!reply.ok) throw new Error(reply.error?.message)
      return reply.result
    }
  }
  beforeAll(async () => {
    t = tempDir(opts.prefix ?? 'ft-e2e-')
    const project = (await opts.prepare?.(t.dir)) ?? join(t.dir, 'project')
    browser = await launchBrowser()
    served = await serve(['--project', project, ...(opts.serveArgs ?? [])])
  }, opts.timeout ?? 120_000)
  afterAll(async () => {
    await browser?.close()
    await served?.stop()
    t?.cleanup()
  })
  return w
}

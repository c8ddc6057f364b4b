// `featuretrace serve` in a child process under 10,000+ seeded hostile inputs over HTTP and WebSocket:
// it must never exit, answer every bad input with a clean 4xx or bad-request reply, and let no cross-site input write.
// Reproduce a run with FUZZ_SEED=<seed> (and FUZZ_INPUTS=<n>); only 127.0.0.1 is ever contacted.
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { join, relative } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { importFeatureSet } from '../../src/core/analysis/import-features'
import { Project } from '../../src/core/project'
import { Rng } from '../../src/core/random'
import type { CallName } from '../../src/shared/api'
import {
  CALL_NAMES,
  expectedOutcome,
  hostileText,
  hostileValue,
  mutate,
  randomBytes,
  READ_ONLY,
  readBody,
  validish,
  wrongTypeSweep
} from '../fixtures/api-fuzz'
import { writeFeatureSet } from '../fixtures/feature-sets'
import { CLI, REPO, tempDir } from '../helpers'

const SEED = Number(process.env.FUZZ_SEED ?? 20_250_113)
const INPUTS = Number(process.env.FUZZ_INPUTS ?? 15_000)
const BATCH = 500
const LANES = 6
const MAX_BODY = 1024 * 1024
const TIMEOUT_MS = 5000
const TIME_LIMIT_MS = 60_000

type Channel = 'http-call' | 'http-cross-site' | 'http-raw' | 'ws-message' | 'ws-upgrade' | 'ws-frames'
interface Lane {
  agent: Agent
  ws: LaneSocket | null
}
interface Input {
  channel: Channel
  what: string
  run(lane: Lane): Promise<string | null>
}

/** The built CLI must be newer than the server code, or this would fuzz an old server. */
function assertBuilt(): void {
  const built = join(REPO, 'out/main/cli.js')
  const builtAt = statSync(built, { throwIfNoEntry: false })?.mtimeMs ?? 0
  for (const src of ['src/server/server.ts', 'src/core/services.ts', 'src/shared/api.ts', 'src/cli/index.ts']) {
    if (statSync(join(REPO, src)).mtimeMs > builtAt) {
      throw new Error(`The built CLI (${built}) is missing or older than ${src}: run \`npm run build\` first.`)
    }
  }
}

/** Every file and folder under dir, except SQLite's own side files, which any read may create. */
function listTree(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (/-(wal|shm|journal)$/.test(e.name)) continue
      out.push(relative(dir, p) + (e.isDirectory() ? '/' : ''))
      if (e.isDirectory()) walk(p)
    }
  }
  walk(dir)
  return out.sort()
}

/** Row counts of every table, and the labels and taxonomy in full: what "nothing written" means. */
function snapshot(projectDir: string): string {
  const p = Project.open(projectDir)
  try {
    const tables = (p.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name)
    const counts = tables.map((t) => [t, (p.db.prepare(`SELECT count(*) AS n FROM "${t}"`).get() as { n: number }).n])
    const labels = p.db.prepare('SELECT * FROM label ORDER BY set_id, feature, annotator').all()
    const taxonomy = p.db.prepare('SELECT * FROM taxonomy ORDER BY position').all()
    return JSON.stringify({ counts, labels, taxonomy })
  } finally {
    p.close()
  }
}

interface HttpResult {
  status: number
  body: string
}

function httpCall(
  agent: Agent,
  port: number,
  path: string,
  headers: Record<string, string>,
  body: Buffer | null,
  method = 'POST'
): Promise<HttpResult | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent, timeout: TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', (e) => resolve(`response error: ${e.message}`))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', (e) => resolve(`request error: ${e.message}`))
    req.end(body ?? undefined)
  })
}

/** Writes bytes on a fresh TCP connection, half-closes, and returns the first line of what came back (or ''). */
function rawExchange(port: number, bytes: Buffer, then?: (socket: Socket, head: string) => void): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let got = ''
    let handed = false
    const done = (): void => resolve(got.split('\r\n')[0] ?? '')
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy())
    socket.on('error', () => undefined)
    socket.on('close', done)
    socket.on('data', (d: Buffer) => {
      if (got.length < 4096) got += d.toString('latin1')
      if (then && !handed && got.includes('\r\n\r\n')) {
        handed = true
        then(socket, got)
      }
    })
    socket.write(bytes)
    if (!then) socket.end()
  })
}

/** One WebSocket frame as a client would send it; every field can be made wrong. */
function frame(opcode: number, payload: Buffer, o: { fin?: boolean; rsv?: number; mask?: boolean; claimedLength?: bigint } = {}): Buffer {
  const mask = o.mask ?? true
  const len = o.claimedLength ?? BigInt(payload.length)
  const head: number[] = [((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | (opcode & 0x0f)]
  const m = mask ? 0x80 : 0
  if (len < 126n) head.push(m | Number(len))
  else if (len < 65536n) head.push(m | 126, Number(len >> 8n) & 255, Number(len) & 255)
  else {
    head.push(m | 127)
    for (let i = 7; i >= 0; i--) head.push(Number((len >> BigInt(8 * i)) & 255n))
  }
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78])
  const body = mask ? Buffer.from(payload.map((b, i) => b ^ key[i % 4]!)) : payload
  return Buffer.concat([Buffer.from(head), mask ? key : Buffer.alloc(0), body])
}

/** A same-origin socket whose messages are read one reply at a time (each lane sends one message and waits). */
class LaneSocket {
  private waiting: ((text: string | null) => void) | null = null
  closed = false
  closeCode = 0
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: WebSocket.RawData) => {
      const text = String(d)
      if (text.startsWith('{"event"')) return // pushed events are not replies
      this.waiting?.(text)
      this.waiting = null
    })
    ws.on('error', () => undefined)
    ws.on('close', (code: number) => {
      this.closed = true
      this.closeCode = code
      this.waiting?.(null)
      this.waiting = null
    })
  }

  static open(port: number, origin?: string): Promise<LaneSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/api/ws`, {
        headers: origin ? { Origin: origin } : {},
        maxPayload: 64 * MAX_BODY,
        handshakeTimeout: TIMEOUT_MS
      })
      ws.once('open', () => resolve(new LaneSocket(ws)))
      ws.once('error', reject)
    })
  }

  /** Sends and waits for the next reply; null when the socket closed instead. */
  exchange(data: string | Buffer, binary: boolean): Promise<string | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = null
        resolve('timed out')
      }, TIMEOUT_MS)
      this.waiting = (text) => {
        clearTimeout(timer)
        resolve(text)
      }
      this.ws.send(data, { binary })
    })
  }
}

describe('browser-mode server under fuzz', () => {
  let t: ReturnType<typeof tempDir>
  let child: ChildProcess
  let port = 0
  let serverLog = ''
  let exits = 0
  const projectDir = (): string => join(t.dir, 'project')
  let userDirs: ReturnType<typeof tempDir> | undefined

  beforeAll(async () => {
    assertBuilt()
    t = tempDir('ft-fuzz-')
    const file = join(t.dir, 'features.jsonl')
    writeFeatureSet(file, { checkpoints: [3, 10], features: 40, labels: ['Token-level', 'Uninterpretable', 'Concept-level (synonymy)'] })
    const p = Project.open(projectDir())
    importFeatureSet(p, file)
    p.labels.setLabel(1, 7, 'ana', 'Token-level', 'fires on cats')
    p.close()
    // The server's cwd is the sandbox, so a relative path in any payload would land where we look.
    // Recent projects go to a folder of their own, outside the sandbox whose tree is compared.
    userDirs = tempDir('ft-fuzz-user-')
    child = spawn(process.execPath, [CLI, 'serve', '--project', projectDir(), '--port', '0'], {
      cwd: t.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FEATURETRACE_CONFIG_DIR: join(userDirs.dir, 'config'), FEATURETRACE_DOCUMENTS_DIR: join(userDirs.dir, 'Documents') }
    })
    child.on('exit', () => exits++)
    const onData = (c: Buffer): void => {
      if (serverLog.length < 200_000) serverLog += c.toString()
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start:\n${serverLog}`)), 20_000)
      const poll = setInterval(() => {
        const m = /Open http:\/\/127\.0\.0\.1:(\d+)\//.exec(serverLog)
        if (m) {
          clearInterval(poll)
          clearTimeout(timer)
          port = Number(m[1])
          resolve()
        } else if (exits > 0) {
          clearInterval(poll)
          clearTimeout(timer)
          reject(new Error(`serve exited:\n${serverLog}`))
        }
      }, 20)
    })
  })

  async function stopServer(): Promise<void> {
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise((r) => child.once('exit', r))
    child.kill('SIGTERM')
    await gone
  }

  afterAll(async () => {
    await stopServer()
    t?.cleanup()
    userDirs?.cleanup()
  })

  it('survives 10,000+ seeded hostile inputs on every channel and lets no cross-site input write', async () => {
    const rng = new Rng(SEED)
    const own = [`http://127.0.0.1:${port}`, `http://localhost:${port}`]
    const jsonTypes = ['application/json', 'application/json; charset=utf-8', 'Application/JSON']
    const sandbox = t.dir
    const before = { db: snapshot(projectDir()), tree: listTree(t.dir) }
    const failures: string[] = []
    const fail = (input: Input, why: string): void => {
      if (failures.length < 30) failures.push(`[${input.channel}] ${input.what}: ${why}`)
    }
    const internal: string[] = []
    let validReads = 0
    let crossSiteWrites = 0

    /** A payload for `call` that is invalid, or valid only for a call that just reads. */
    const payloadFor = (call: CallName, start?: { payload: unknown }): unknown => {
      let payload: unknown = start ? start.payload : rng.next() < 0.3 ? validish(call, rng, sandbox) : mutate(validish(call, rng, sandbox), rng)
      for (let i = 0; i < 5 && expectedOutcome(call, payload) === 'runs' && !READ_ONLY.has(call); i++) payload = mutate(payload as never, rng)
      if (expectedOutcome(call, payload) === 'runs' && !READ_ONLY.has(call)) payload = []
      return payload
    }

    /** The reply text must be the envelope with the outcome the call's schema predicts. */
    const judgeReply = (text: string, outcome: 'bad-request' | 'runs', call: unknown): string | null => {
      let reply: { ok?: unknown; error?: { code?: unknown } }
      try {
        reply = JSON.parse(text) as typeof reply
      } catch {
        return `reply is not JSON: ${text.slice(0, 120)}`
      }
      if (typeof reply.ok !== 'boolean') return `reply has no ok: ${text.slice(0, 120)}`
      if (outcome === 'bad-request' && (reply.ok || reply.error?.code !== 'bad-request')) return `expected bad-request, got ${text.slice(0, 160)}`
      if (outcome === 'runs') validReads++
      if (!reply.ok && reply.error?.code === 'internal' && internal.length < 20) internal.push(`${String(call)}: ${text.slice(0, 200)}`)
      return null
    }

    // --- HTTP calls from our own origin: wrong types for every call, mutated payloads and bodies.
    const httpCall_ = (call: string, payload: unknown, bodyOverride?: Buffer): Input => {
      const text = payload === undefined ? '' : JSON.stringify(payload)
      let body = bodyOverride ?? Buffer.from(text)
      const r = rng.next()
      if (!bodyOverride && r < 0.12) body = Buffer.from(hostileText(rng, text))
      else if (!bodyOverride && r < 0.16 && body.length) {
        body = Buffer.from(body)
        body[rng.int(body.length)] = pick([0xff, 0xc0, 0x80, 0xed, 0x00])
      }
      const read = readBody(body)
      let outcome = read === undefined ? 'bad-request' : expectedOutcome(call, read.payload)
      // A mutated body that happens to be valid for a writing call is not sent: same-origin fuzz must not write.
      if (outcome === 'runs' && !READ_ONLY.has(call as CallName)) {
        body = Buffer.from('[]')
        outcome = 'bad-request'
      }
      const headers: Record<string, string> = { 'Content-Type': pick(jsonTypes) }
      if (rng.next() < 0.6) headers.Origin = pick(own)
      let path = '/api/call/' + encodeURIComponent(call)
      const oddName = rng.next()
      if (oddName < 0.03) path = '/api/call/' + pick(['%ZZ', '%E0%A4%A', '%', '%00', '..%2F..%2Fproject.open', 'labels.set%2F'])
      else if (oddName < 0.05) path = '/api/call/' + call.replace('.', '%2e') // an encoded dot is still the same call
      const expectTooLarge = body.length > MAX_BODY
      return {
        channel: 'http-call',
        what: `POST ${path.slice(0, 80)} ${JSON.stringify(headers)} body ${body.length} B: ${body.toString('utf8', 0, 100)}`,
        async run(lane) {
          const res = await httpCall(lane.agent, port, path, headers, body)
          if (typeof res === 'string') return res
          // The name in the URL is checked before the body is read, so a malformed one wins over an over-size body.
          const badName = /^\/api\/call\/(%ZZ|%E0%A4%A|%)$/.test(path)
          if (expectTooLarge && !badName) return res.status === 413 ? null : `expected 413, got ${res.status}`
          const want = badName ? 'bad-request' : outcome
          if (want === 'bad-request' && res.status !== 400) return `expected 400, got ${res.status} ${res.body.slice(0, 120)}`
          if (want === 'runs' && res.status !== 200 && res.status !== 400) return `expected 200/400, got ${res.status}`
          return judgeReply(res.body, want, call)
        }
      }
    }

    // --- HTTP calls a foreign page could make: every one must be 403 and change nothing.
    const crossSite = (): Input => {
      const call = pick(CALL_NAMES)
      const payload = rng.next() < 0.6 ? validish(call, rng, sandbox) : mutate(validish(call, rng, sandbox), rng)
      const variants: Record<string, string>[] = [
        { 'Content-Type': 'text/plain', Origin: 'https://evil.example' },
        { 'Content-Type': 'text/plain;charset=UTF-8' },
        { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'http://evil.example' },
        { 'Content-Type': 'multipart/form-data; boundary=x', Origin: pick(own) },
        { Origin: 'https://evil.example' },
        {},
        { 'Content-Type': 'text/plain; application/json' },
        { 'Content-Type': 'application/jsonp' },
        { 'Content-Type': 'application/json', Origin: 'https://evil.example' },
        { 'Content-Type': 'application/json', Origin: 'null' },
        { 'Content-Type': 'application/json', Origin: '' },
        { 'Content-Type': 'application/json', Origin: `http://127.0.0.1:${port + 1}` },
        { 'Content-Type': 'application/json', Origin: `https://127.0.0.1:${port}` },
        { 'Content-Type': 'application/json', Origin: `http://127.0.0.1:${port}.evil.example` },
        { 'Content-Type': 'application/json', Origin: `http://evil.example@127.0.0.1:${port}` },
        { 'Content-Type': 'application/json', Origin: `http://evil.example:${port}` },
        { 'Content-Type': 'application/json', Host: `evil.example:${port}` },
        { 'Content-Type': 'application/json', Host: `127.0.0.1.evil.example:${port}`, Origin: `http://127.0.0.1.evil.example:${port}` }
      ]
      const headers = pick(variants)
      const body = Buffer.from(JSON.stringify(payload))
      const wouldWrite = !READ_ONLY.has(call) && expectedOutcome(call, payload) === 'runs'
      return {
        channel: 'http-cross-site',
        what: `POST /api/call/${call} ${JSON.stringify(headers)} ${body.toString('utf8', 0, 100)}`,
        async run(lane) {
          const res = await httpCall(lane.agent, port, `/api/call/${call}`, headers, body)
          if (typeof res === 'string') return res
          if (wouldWrite) crossSiteWrites++
          return res.status === 403 ? null : `expected 403, got ${res.status} ${res.body.slice(0, 120)}`
        }
      }
    }

    // --- Raw HTTP: malformed request lines, URLs and headers, truncation, random bytes.
    const rawHttp = (): Input => {
      const host = `127.0.0.1:${port}`
      const targets = [
        '/',
        '/%E0%A4%A',
        '/%ZZ',
        '//',
        '//evil.example/x',
        '/.//evil.example/',
        '*',
        'http://evil.example/',
        '/../../etc/passwd',
        '/%2e%2e/%2e%2e/package.json',
        '/assets/%00.js',
        '/assets/',
        '/index.html?token=%ZZ',
        '/' + 'a'.repeat(10_000),
        '/api/ws',
        '/api/call/',
        '/api/call/labels.set',
        '/api/call/%ZZ',
        '/\u00e9',
        '/%F0%9F',
        '/?' + '&'.repeat(3000)
      ]
      const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'BREW', 'get', 'CONNECT']
      const headerSets: string[] = [
        `Host: ${host}`,
        '',
        `Host: ${host}\r\nHost: evil.example`,
        `Host: ${host}\r\nContent-Length: -1`,
        `Host: ${host}\r\nContent-Length: abc`,
        `Host: ${host}\r\nContent-Length: 5\r\nContent-Length: 6`,
        `Host: ${host}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked`,
        `Host: ${host}\r\nTransfer-Encoding: chunked, gzip`,
        `Host: ${host}\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx`,
        `Host: ${host}\r\nCookie: featuretrace_token=%ZZ; a=%E0`,
        `Host: ${host}\r\nContent-Type: text/plain\r\nOrigin: https://evil.example\r\nContent-Length: 2`,
        `Host: ${host}\r\nX-Long: ${'x'.repeat(20_000)}`,
        `Host: ${host}\r\nBad Header: x`,
        `Host: ${host}\r\nX-Ctl: a\u0001b`,
        `Host: ${host}\r\nExpect: 100-continue\r\nContent-Length: 10`,
        `Host: ${host}\r\nConnection: Upgrade\r\nUpgrade: h2c`,
        `Host: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket`,
        `Host: ${host}\r\nOrigin: \u00ff\u00fe`,
        `Host: ${host}\r\nAuthorization: Bearer \u0000`
      ]
      const versions = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'HTTP/1.1x', '']
      const r = rng.next()
      let bytes: Buffer
      if (r < 0.15) bytes = randomBytes(rng, 600)
      else {
        const method = pick(methods)
        // The only API posts here are refused ones: text/plain from another site, or malformed.
        const req = `${method} ${pick(targets)} ${pick(versions)}\r\n${pick(headerSets)}\r\n\r\n${rng.next() < 0.3 ? '{"setId":1,"feature":2,"annotator":"x","category":null}' : ''}`
        bytes = Buffer.from(req, 'latin1')
        if (r < 0.35)
          bytes = bytes.subarray(0, rng.int(bytes.length)) // truncated
        else if (r < 0.45) bytes[rng.int(bytes.length)] = rng.int(256)
      }
      return {
        channel: 'http-raw',
        what: JSON.stringify(bytes.toString('latin1').slice(0, 160)),
        async run() {
          const line = await rawExchange(port, bytes)
          const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(line)?.[1] ?? 0)
          if (status >= 500) return `answered ${line}`
          if (status === 200 && bytes.includes('/api/call/') && /^POST/.test(bytes.toString('latin1'))) return `a raw API post was answered 200: ${line}`
          return null
        }
      }
    }

    // --- WebSocket messages from our own origin, answered one at a time per lane.
    const wsMessage = (call: string, payload: unknown): Input => {
      const origin = rng.next() < 0.5 ? undefined : pick(own)
      const id = rng.next() < 0.8 ? rng.int(1e9) : rng.next() < 0.5 ? `s${rng.int(1e9)}` : hostileValue(rng)
      let msg: unknown = { id, call, payload }
      const r = rng.next()
      if (r < 0.05) msg = { id, payload }
      else if (r < 0.1)
        msg = { id, call: pick(['__proto__', 'constructor', 'toString', 'hasOwnProperty', '', 'labels.set ', 'LABELS.SET', 'x'.repeat(5000)]), payload }
      else if (r < 0.15) msg = hostileValue(rng)
      let text = JSON.stringify(msg)
      let binary = false
      const m = rng.next()
      if (m < 0.1) text = hostileText(rng, text)
      else if (m < 0.14) binary = true
      let parsed: unknown
      try {
        parsed = JSON.parse(text)
      } catch {
        parsed = undefined
      }
      const isObject = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      const p = isObject ? (parsed as { id?: unknown; call?: unknown; payload?: unknown }) : {}
      let outcome = binary || !isObject ? 'bad-request' : expectedOutcome(p.call, p.payload)
      let echo = binary || !isObject ? null : (typeof p.id === 'number' && Number.isFinite(p.id)) || typeof p.id === 'string' ? p.id : null
      // A mutated message that happens to be valid for a writing call is not sent: same-origin fuzz must not write.
      if (outcome === 'runs' && !READ_ONLY.has(p.call as CallName)) {
        text = JSON.stringify({ id: 1, call: p.call, payload: [] })
        outcome = 'bad-request'
        echo = 1
      }
      return {
        channel: 'ws-message',
        what: `${binary ? 'binary' : 'text'} ${text.slice(0, 140)}`,
        async run(lane) {
          if (!lane.ws || lane.ws.closed) lane.ws = await LaneSocket.open(port, origin)
          const tooLarge = Buffer.byteLength(text) > MAX_BODY
          const reply = await lane.ws.exchange(binary ? Buffer.from(text) : text, binary)
          if (tooLarge) return reply === null && lane.ws.closeCode === 1009 ? null : `expected close 1009, got ${reply ?? lane.ws.closeCode}`
          if (reply === null) return 'socket closed instead of replying'
          let env: { id?: unknown; reply?: unknown }
          try {
            env = JSON.parse(reply) as typeof env
          } catch {
            return `reply is not JSON: ${reply.slice(0, 120)}`
          }
          if (env.id !== echo) return `id ${JSON.stringify(env.id)} echoed for ${JSON.stringify(echo)}`
          return judgeReply(JSON.stringify(env.reply), outcome as 'bad-request' | 'runs', p.call)
        }
      }
    }

    // --- WebSocket messages that must close the socket: over-size (1009) and invalid UTF-8 (1007).
    const wsClosing = (): Input => {
      const tooLarge = rng.next() < 0.15
      const data = tooLarge
        ? Buffer.alloc(MAX_BODY + 1 + rng.int(1000), 0x20)
        : Buffer.concat([Buffer.from('{"id":1,"call":"'), Buffer.from([pick([0xff, 0xc3, 0xed, 0xf8])]), Buffer.from('"}')])
      return {
        channel: 'ws-message',
        what: tooLarge ? `text message of ${data.length} B` : `invalid UTF-8 text ${data.toString('hex')}`,
        async run() {
          const s = await LaneSocket.open(port)
          const code = new Promise<number>((resolve) => s.ws.once('close', (c: number) => resolve(c)))
          s.ws.send(data, { binary: false })
          const got = await Promise.race([code, new Promise<number>((r) => setTimeout(() => r(-1), TIMEOUT_MS))])
          const want = tooLarge ? 1009 : 1007
          return got === want ? null : `expected close ${want}, got ${got}`
        }
      }
    }

    // --- Upgrade requests: foreign origins and hosts, odd paths, broken handshakes.
    const wsUpgrade = (): Input => {
      const host = pick([`127.0.0.1:${port}`, `localhost:${port}`, `evil.example:${port}`, ''])
      const origin = pick([
        undefined,
        ...own,
        'https://evil.example',
        'null',
        `http://127.0.0.1:${port + 1}`,
        `http://evil.example:${port}`,
        `http://127.0.0.1:${port}.evil.example`
      ])
      const path = pick(['/api/ws', '/api/ws?x=%ZZ', '//', '/%ZZ', '/', '/api/ws/../ws', '/API/WS'])
      const key = pick(['dGhlIHNhbXBsZSBub25jZQ==', '', 'short', '!!!!!!!!!!!!!!!!!!!!!!=='])
      const version = pick(['13', '8', '', 'x'])
      const lines = [`GET ${path} HTTP/1.1`, host ? `Host: ${host}` : '', 'Connection: Upgrade', 'Upgrade: websocket']
      if (origin !== undefined) lines.push(`Origin: ${origin}`)
      if (key) lines.push(`Sec-WebSocket-Key: ${key}`)
      if (version) lines.push(`Sec-WebSocket-Version: ${version}`)
      if (rng.next() < 0.1) lines.push('Cookie: featuretrace_token=%ZZ')
      const foreign = (origin !== undefined && !own.includes(origin)) || !/^(127\.0\.0\.1|localhost):/.test(host)
      const toSocket = new URL('http://localhost' + path).pathname === '/api/ws'
      const bytes = Buffer.from(lines.filter(Boolean).join('\r\n') + '\r\n\r\n')
      return {
        channel: 'ws-upgrade',
        what: JSON.stringify(bytes.toString('latin1').slice(0, 200)),
        async run() {
          const line = await rawExchange(port, bytes)
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(line)?.[1] ?? 0)
          if (status >= 500) return `answered ${line}`
          if (foreign && (status === 101 || status < 400)) return `a foreign upgrade got ${line || 'no answer'}`
          if (foreign && toSocket && status !== 403) return `a foreign upgrade got ${line || 'no answer'}, not 403`
          return null
        }
      }
    }

    // --- Broken frames on an accepted socket: reserved opcodes and bits, unmasked, length lies, bad close codes.
    const wsFrames = (): Input => {
      const payload = rng.next() < 0.5 ? Buffer.from(JSON.stringify({ id: 1, call: 'app.info' })) : randomBytes(rng, 200)
      const kinds: (() => Buffer)[] = [
        () => randomBytes(rng, 300),
        () => frame(pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), payload),
        () => frame(1, payload, { rsv: 1 + rng.int(7) }),
        () => frame(1, payload, { mask: false }),
        () => frame(1, payload, { claimedLength: BigInt(2) ** BigInt(40 + rng.int(23)) }),
        () => frame(1, payload, { claimedLength: BigInt(payload.length + 1 + rng.int(100)) }),
        () => frame(9, Buffer.alloc(126 + rng.int(100)), {}),
        () => frame(8, Buffer.from([0x03, 0xe7 + rng.int(10), 0xff])),
        () => frame(8, Buffer.from([0x0b, 0xb8, 0xc3])),
        () => Buffer.concat([frame(1, payload.subarray(0, 5), { fin: false }), frame(9, Buffer.from('p'), { fin: false }), frame(0, payload.subarray(5))]),
        () => Buffer.concat([frame(0, payload), frame(1, payload)]),
        () => Buffer.concat(Array.from({ length: 200 }, () => frame(9, Buffer.from('ping'))))
      ]
      const bytes = pick(kinds)()
      const upgrade = Buffer.from(
        `GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`
      )
      return {
        channel: 'ws-frames',
        what: bytes.toString('hex').slice(0, 120),
        async run() {
          const line = await rawExchange(port, upgrade, (socket) => {
            socket.write(bytes)
            socket.end()
          })
          return line.startsWith('HTTP/1.1 101') ? null : `handshake answered ${line || 'nothing'}`
        }
      }
    }

    function pick<T>(items: readonly T[]): T {
      return items[rng.int(items.length)]!
    }

    // The inputs, all drawn up front from the seed: the systematic sweep on both doors, then a random mix.
    const inputs: Input[] = []
    for (const { call, payload } of wrongTypeSweep(rng, sandbox)) {
      inputs.push(httpCall_(call, payloadFor(call, { payload })))
      inputs.push(wsMessage(call, payloadFor(call, { payload })))
    }
    let bigBodies = 0
    while (inputs.length < INPUTS) {
      const r = rng.next()
      const call = pick(CALL_NAMES)
      if (r < 0.28) {
        if (rng.next() < 0.004 && bigBodies++ < 20) inputs.push(httpCall_(call, undefined, Buffer.alloc(MAX_BODY + 1 + rng.int(3 * MAX_BODY), 0x7b)))
        else inputs.push(httpCall_(call, payloadFor(call)))
      } else if (r < 0.48) inputs.push(crossSite())
      else if (r < 0.62) inputs.push(rawHttp())
      else if (r < 0.86) inputs.push(rng.next() < 0.01 ? wsClosing() : wsMessage(call, payloadFor(call)))
      else if (r < 0.93) inputs.push(wsUpgrade())
      else inputs.push(wsFrames())
    }
    rng.shuffle(inputs)

    /** The server still answers a valid call on both doors, on the same project. */
    const probe = async (agent: Agent): Promise<string | null> => {
      if (child.exitCode !== null || child.signalCode !== null) return `server exited (${child.exitCode ?? child.signalCode})`
      const res = await httpCall(agent, port, '/api/call/project.info', { 'Content-Type': 'application/json' }, Buffer.from('{}'))
      if (typeof res === 'string' || res.status !== 200) return `HTTP probe failed: ${typeof res === 'string' ? res : res.status}`
      const info = JSON.parse(res.body) as { result?: { path?: string } }
      if (info.result?.path !== projectDir()) return `the project switched to ${info.result?.path}`
      const s = await LaneSocket.open(port, own[0])
      const reply = await s.exchange(JSON.stringify({ id: 1, call: 'features.sets' }), false)
      s.ws.close()
      return reply?.includes('"ok":true') ? null : `WebSocket probe failed: ${reply}`
    }

    const started = Date.now()
    const tried = new Map<Channel, number>()
    const failed = new Map<Channel, number>()
    const lanes: Lane[] = Array.from({ length: LANES }, () => ({ agent: new Agent({ keepAlive: true, maxSockets: 1 }), ws: null }))
    const probeAgent = new Agent({ keepAlive: false })
    let probes = 0
    // A broken server would make every input wait for its timeout: stop early with what was seen.
    const giveUp = (): boolean => failures.length >= 30 || Date.now() - started > TIME_LIMIT_MS
    for (let b = 0; b < inputs.length; b += BATCH) {
      const batch = inputs.slice(b, b + BATCH)
      let next = 0
      await Promise.all(
        lanes.map(async (lane) => {
          while (next < batch.length && !giveUp()) {
            const input = batch[next++]!
            tried.set(input.channel, (tried.get(input.channel) ?? 0) + 1)
            const why = await input.run(lane).catch((e: unknown) => `threw ${String(e)}`)
            if (why) {
              failed.set(input.channel, (failed.get(input.channel) ?? 0) + 1)
              fail(input, why)
            }
          }
        })
      )
      probes++
      const alive = await probe(probeAgent)
      if (alive) {
        failures.push(`after input ${b + batch.length}: ${alive}`)
        break
      }
      if (giveUp()) {
        failures.push(`stopped after ${b + batch.length} inputs and ${((Date.now() - started) / 1000).toFixed(0)} s`)
        break
      }
    }
    const seconds = (Date.now() - started) / 1000
    for (const lane of lanes) {
      lane.ws?.ws.close()
      lane.agent.destroy()
    }
    const exitsDuringRun = exits

    // Stop the server cleanly before reading the project, then compare with the snapshot taken before.
    await stopServer()
    const after = { db: snapshot(projectDir()), tree: listTree(t.dir) }

    const rows = [...tried.keys()].sort().map((c) => `  ${c.padEnd(16)} ${String(tried.get(c)).padStart(6)} inputs, ${failed.get(c) ?? 0} wrong answers`)
    console.log(
      [
        `server fuzz, seed ${SEED}: ${inputs.length} inputs in ${seconds.toFixed(1)} s (${LANES} lanes, ${probes} liveness probes), server exits during the run: ${exitsDuringRun}`,
        ...rows,
        `  valid read calls answered: ${validReads}; cross-site posts with a payload valid for a writing call, all refused: ${crossSiteWrites}`,
        `  internal errors from valid read calls: ${internal.length}`,
        ...internal.map((i) => `    ${i}`)
      ].join('\n')
    )
    expect(failures, `first failures (server log tail:\n${serverLog.slice(-3000)})`).toEqual([])
    expect(exitsDuringRun).toBe(0)
    expect(serverLog).not.toMatch(/Unhandled|uncaught|request failed|message failed|outside its handler|could not be encoded/i)
    expect(after.tree, 'files or folders appeared or vanished in the sandbox').toEqual(before.tree)
    expect(after.db, 'the project database changed').toBe(before.db)
    expect(internal).toEqual([])
    expect([...tried.values()].reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(10_000)
  }, 120_000)
})

// Browser mode: the built renderer plus the same API over HTTP and WebSocket.
// Loopback by default; any other address requires the access token on every request and socket.
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { createReadStream, existsSync, statSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { extname, join, resolve, sep } from 'node:path'
import { WebSocketServer, type WebSocket } from 'ws'
import { createHandlers, dispatch, type Workspace } from '../core/services'

export interface ServeOptions {
  workspace: Workspace
  host: string
  port: number
  /** Folder of the built renderer (out/renderer). */
  staticDir: string
  /** Forces a token even on loopback; exposed hosts always get one. */
  token?: string
}

export interface RunningServer {
  url: string
  port: number
  host: string
  /** null when bound to loopback without a token. */
  token: string | null
  close(): Promise<void>
}

const MAX_BODY_BYTES = 1024 * 1024
const COOKIE = 'featuretrace_token'
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm'
}
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
  "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

function sameToken(given: string | null | undefined, token: string): boolean {
  if (!given) return false
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

function cookieValue(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === name) return decodeURIComponent(v.join('='))
  }
  return null
}

function presentedToken(req: IncomingMessage, url: URL): string | null {
  const auth = req.headers.authorization
  if (auth?.startsWith('Bearer ')) return auth.slice(7)
  return url.searchParams.get('token') ?? cookieValue(req, COOKIE)
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' })
  res.end(body)
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolveBody, reject) => {
    let size = 0
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY_BYTES) {
        reject(new Error('too large'))
        req.destroy()
      } else chunks.push(c)
    })
    req.on('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const exposed = !isLoopback(opts.host)
  const token = opts.token ?? (exposed ? randomBytes(24).toString('base64url') : null)
  const staticRoot = resolve(opts.staticDir)
  if (!existsSync(join(staticRoot, 'index.html'))) {
    throw new Error(`The built renderer is missing (${join(staticRoot, 'index.html')}); run \`npm run build\` first.`)
  }
  const handlers = createHandlers(opts.workspace)
  let boundPort = opts.port

  /** Guards against DNS rebinding while on loopback: only loopback names may address us. */
  function hostAllowed(req: IncomingMessage): boolean {
    if (exposed) return true
    const host = (req.headers.host ?? '').toLowerCase()
    return [`127.0.0.1:${boundPort}`, `localhost:${boundPort}`, `[::1]:${boundPort}`].includes(host) ||
      host === opts.host + ':' + boundPort
  }

  function authorised(req: IncomingMessage, url: URL): boolean {
    return token === null || sameToken(presentedToken(req, url), token)
  }

  function serveStatic(res: ServerResponse, pathname: string): void {
    let file = resolve(staticRoot, '.' + decodeURIComponent(pathname))
    if (file !== staticRoot && !file.startsWith(staticRoot + sep)) return send(res, 403, 'Forbidden')
    if (!existsSync(file) || statSync(file).isDirectory()) file = join(staticRoot, 'index.html')
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Security-Policy': CONTENT_SECURITY_POLICY,
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer'
    })
    createReadStream(file).pipe(res)
  }

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost')
      if (!hostAllowed(req)) return send(res, 403, 'Forbidden host header.')
      if (!authorised(req, url)) {
        return send(res, 401, 'FeatureTrace: this server needs its access token. Open the URL printed at start (it ends in ?token=…).')
      }
      if (token && url.searchParams.has('token')) {
        // Move the token from the address bar into a cookie the page's socket will carry.
        res.writeHead(303, {
          'Set-Cookie': `${COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
          Location: url.pathname,
          'Cache-Control': 'no-store'
        })
        return res.end()
      }
      if (url.pathname.startsWith('/api/call/')) {
        if (req.method !== 'POST') return send(res, 405, 'Use POST.')
        let payload: unknown
        try {
          const body = await readBody(req)
          payload = body ? (JSON.parse(body) as unknown) : undefined
        } catch {
          return send(res, 400, JSON.stringify({ ok: false, error: { code: 'bad-request', message: 'Body is not JSON or too large.' } }), 'application/json')
        }
        const reply = await dispatch(handlers, decodeURIComponent(url.pathname.slice('/api/call/'.length)), payload)
        return send(res, reply.ok ? 200 : 400, JSON.stringify(reply), 'application/json')
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'Method not allowed.')
      serveStatic(res, url.pathname)
    })().catch((err: unknown) => {
      console.error('[featuretrace] request failed:', err)
      if (!res.headersSent) send(res, 500, 'Internal error.')
    })
  })

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_BODY_BYTES })
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const origin = req.headers.origin
    // A page from another site must not drive the API through the user's browser.
    const originOk = origin === undefined || origin === `http://${req.headers.host ?? ''}`
    if (url.pathname !== '/api/ws' || !hostAllowed(req) || !originOk || !authorised(req, url)) {
      socket.write('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n')
      socket.destroy()
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
  })

  wss.on('connection', (ws: WebSocket) => {
    const unsubscribe = opts.workspace.subscribe((event, payload) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ event, payload }))
    })
    ws.on('close', unsubscribe)
    ws.on('message', (data) => {
      void (async () => {
        let msg: { id?: unknown; call?: unknown; payload?: unknown }
        try {
          msg = JSON.parse(String(data)) as typeof msg
        } catch {
          return ws.send(JSON.stringify({ id: null, reply: { ok: false, error: { code: 'bad-request', message: 'Message is not JSON.' } } }))
        }
        const reply = await dispatch(handlers, msg.call, msg.payload)
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ id: msg.id ?? null, reply }))
      })()
    })
  })

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => resolveListen())
  })
  boundPort = (server.address() as AddressInfo).port
  const shownHost = opts.host.includes(':') && !opts.host.startsWith('[') ? `[${opts.host}]` : opts.host
  const base = `http://${shownHost}:${boundPort}/`
  return {
    url: token ? `${base}?token=${token}` : base,
    port: boundPort,
    host: opts.host,
    token,
    close: () =>
      new Promise<void>((resolveClose) => {
        for (const client of wss.clients) client.terminate()
        wss.close()
        server.closeAllConnections()
        server.close(() => resolveClose())
      })
  }
}

// Browser mode: the built renderer plus the same API over HTTP and WebSocket.
// Loopback by default; any other address requires the access token on every request and socket.
// No input may end the process: every socket and stream error is handled, every bad request gets a 4xx.
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { existsSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { networkInterfaces } from 'node:os'
import { extname, join, resolve, sep } from 'node:path'
import { pipeline } from 'node:stream'
import { WebSocketServer, type RawData, type WebSocket } from 'ws'
import type { ApiReply } from '../shared/api'
import { createHandlers, dispatch, thrownText, type Workspace } from '../core/services'

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
  /** Addresses to open from this machine and, when bound beyond loopback, from others (with the token). */
  urls: string[]
  close(): Promise<void>
}

/** Largest HTTP body and WebSocket message accepted (bigger ones get 413 / close code 1009). */
export const MAX_BODY_BYTES = 1024 * 1024
/** An over-size body is drained up to this much more before the connection is cut, so the client can read its 413. */
const MAX_DRAIN_BYTES = 16 * MAX_BODY_BYTES
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

/** A host as it goes in a URL: IPv6 addresses in brackets. */
function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}

/**
 * The hosts a browser can reach a server bound to `bind` at: the address itself, or for a wildcard bind (0.0.0.0, ::)
 * this machine's non-loopback interface addresses (another machine's browser needs one of those), then loopback.
 */
export function reachableHosts(bind: string, interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces()): string[] {
  const wildcard = bind === '0.0.0.0' || bind === '::' || bind === '[::]' || bind === ''
  if (!wildcard) return [urlHost(bind)]
  const v6 = bind !== '0.0.0.0'
  const found = Object.values(interfaces)
    .flatMap((list) => list ?? [])
    // Link-local IPv6 needs a zone id a browser's address bar does not take; IPv4 first, as people type it.
    .filter((a) => !a.internal && (a.family === 'IPv4' || (v6 && !a.address.toLowerCase().startsWith('fe80'))))
    .sort((a, b) => (a.family === b.family ? 0 : a.family === 'IPv4' ? -1 : 1))
    .map((a) => urlHost(a.address))
  return [...new Set([...found, '127.0.0.1'])]
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

function sameToken(given: string | null | undefined, token: string): boolean {
  if (!given) return false
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** decodeURIComponent that answers null for malformed escapes instead of throwing. */
function decode(text: string): string | null {
  try {
    return decodeURIComponent(text)
  } catch {
    return null
  }
}

/** The request target as a URL, or null when it cannot be one; a fixed origin keeps `//x` a path, not a host. */
export function requestUrl(target: string | undefined): URL | null {
  const path = target ?? '/'
  try {
    return new URL('http://localhost' + (path.startsWith('/') ? path : '/' + path))
  } catch {
    return null
  }
}

function cookieValue(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === name) return decode(v.join('='))
  }
  return null
}

function presentedToken(req: IncomingMessage, url: URL): string | null {
  const auth = req.headers.authorization
  if (auth?.startsWith('Bearer ')) return auth.slice(7)
  return url.searchParams.get('token') ?? cookieValue(req, COOKIE)
}

/** A request body is JSON only when it says so; browsers cannot send that cross-site without a CORS preflight we never grant. */
function isJsonRequest(req: IncomingMessage): boolean {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() === 'application/json'
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8', extra: Record<string, string> = {}): void {
  if (res.destroyed || res.writableEnded) return // the client has gone; nothing to answer
  if (res.headersSent) {
    res.destroy()
    return
  }
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body), ...extra })
  res.end(body)
}

function sendReply(res: ServerResponse, status: number, reply: ApiReply<unknown>): void {
  send(res, status, encodeReply(reply), 'application/json')
}

function badRequest(message: string): ApiReply<never> {
  return { ok: false, error: { code: 'bad-request', message } }
}

/** JSON text of a reply (wrapped with its id for sockets); a result JSON cannot carry (BigInt, a cycle, too deep) becomes an internal error, not a throw. */
export function encodeReply(reply: ApiReply<unknown>, id?: string | number | null): string {
  const envelope = (r: ApiReply<unknown>): unknown => (id === undefined ? r : { id, reply: r })
  try {
    return JSON.stringify(envelope(reply))
  } catch (err) {
    console.error('[featuretrace] a reply could not be encoded as JSON:', err)
    return JSON.stringify(
      envelope({ ok: false, error: { code: 'internal', message: `Internal error: the reply could not be encoded as JSON (${thrownText(err)}).` } })
    )
  }
}

/** dispatch never throws by contract; this keeps that true for the doors even if a handler breaks it. */
async function safeDispatch(handlers: ReturnType<typeof createHandlers>, name: unknown, payload: unknown): Promise<ApiReply<unknown>> {
  try {
    return await dispatch(handlers, name, payload)
  } catch (err) {
    console.error('[featuretrace] a call failed outside its handler:', err)
    return { ok: false, error: { code: 'internal', message: `Internal error: ${thrownText(err)}` } }
  }
}

type Body = { ok: true; text: string } | { ok: false; status: 400 | 413; message: string }

/** Reads at most MAX_BODY_BYTES; a larger body is answered 413 by the caller while the rest is drained (bounded). */
function readBody(req: IncomingMessage): Promise<Body> {
  const tooLarge: Body = { ok: false, status: 413, message: `The request body is over ${MAX_BODY_BYTES} bytes.` }
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
    drain(req)
    return Promise.resolve(tooLarge)
  }
  return new Promise((resolveBody) => {
    let size = 0
    const chunks: Buffer[] = []
    const onData = (c: Buffer): void => {
      size += c.length
      if (size <= MAX_BODY_BYTES) return void chunks.push(c)
      req.off('data', onData)
      drain(req)
      resolveBody(tooLarge)
    }
    req.on('data', onData)
    req.on('end', () => {
      const bytes = Buffer.concat(chunks)
      // fatal: invalid UTF-8 is a bad request, not replacement characters passed on to a handler.
      try {
        resolveBody({ ok: true, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) })
      } catch {
        resolveBody({ ok: false, status: 400, message: 'The request body is not valid UTF-8.' })
      }
    })
    req.on('error', () => resolveBody({ ok: false, status: 400, message: 'The request body was cut off.' }))
  })
}

/** Discards the rest of a refused body so the client gets to read our answer; cuts the connection past MAX_DRAIN_BYTES. */
function drain(req: IncomingMessage): void {
  let drained = 0
  req.on('data', (c: Buffer) => {
    drained += c.length
    if (drained > MAX_DRAIN_BYTES) req.destroy()
  })
  req.resume()
}

/** Ends an upgrade request we will not accept; the socket is raw TCP here, so the reply is written by hand. */
function refuseUpgrade(socket: Socket, status: number): void {
  if (socket.destroyed) return
  const reason = STATUS_CODES[status] ?? 'Error'
  socket.setTimeout(5000, () => socket.destroy()) // a peer that never reads must not keep the socket
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy())
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const exposed = !isLoopback(opts.host)
  const token = opts.token ?? (exposed ? randomBytes(24).toString('base64url') : null)
  const staticRoot = resolve(opts.staticDir)
  if (!existsSync(join(staticRoot, 'index.html'))) {
    throw new Error(`The built renderer is missing (${join(staticRoot, 'index.html')}); run \`npm run build\` first.`)
  }
  const handlers = createHandlers(opts.workspace)
  const shownHost = urlHost(opts.host)
  let boundPort = opts.port

  /** The `host:port` names this server answers to on loopback. */
  function allowedHosts(): string[] {
    return ['127.0.0.1', 'localhost', '[::1]', shownHost.toLowerCase()].map((h) => `${h}:${boundPort}`)
  }

  /** Guards against DNS rebinding while on loopback: only loopback names may address us. */
  function hostAllowed(req: IncomingMessage): boolean {
    if (exposed) return true
    return allowedHosts().includes((req.headers.host ?? '').toLowerCase())
  }

  /** A page from another site must not drive the API through the user's browser; clients that send no Origin (CLI, scripts) may. */
  function originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin
    if (origin === undefined) return true
    const lower = origin.toLowerCase()
    if (exposed) return lower === `http://${(req.headers.host ?? '').toLowerCase()}`
    return allowedHosts().some((h) => lower === `http://${h}`)
  }

  function authorised(req: IncomingMessage, url: URL): boolean {
    return token === null || sameToken(presentedToken(req, url), token)
  }

  async function openRegularFile(file: string): Promise<{ handle: FileHandle; size: number } | null> {
    let handle: FileHandle | undefined
    try {
      handle = await open(file, 'r')
      const stat = await handle.stat()
      if (stat.isFile()) return { handle, size: stat.size }
    } catch {
      // missing, unreadable or odd: the single-page app answers with index.html
    }
    await handle?.close().catch(() => undefined)
    return null
  }

  async function serveStatic(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const decoded = decode(pathname)
    if (decoded === null || decoded.includes('\0')) return send(res, 400, 'Bad request: the path has a malformed percent-escape.')
    const file = resolve(staticRoot, '.' + decoded)
    if (file !== staticRoot && !file.startsWith(staticRoot + sep)) return send(res, 403, 'Forbidden')
    const indexFile = join(staticRoot, 'index.html')
    let served = file
    let found = await openRegularFile(file)
    if (!found) {
      served = indexFile
      found = await openRegularFile(indexFile)
    }
    if (!found) return send(res, 500, `The built renderer is missing (${indexFile}); run \`npm run build\`.`)
    if (res.destroyed) return void found.handle.close().catch(() => undefined)
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[extname(served)] ?? 'application/octet-stream',
      'Content-Length': found.size,
      'Content-Security-Policy': CONTENT_SECURITY_POLICY,
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer'
    })
    if (req.method === 'HEAD') {
      await found.handle.close().catch(() => undefined)
      return void res.end()
    }
    // pipeline, not pipe: a read error or a client gone mid-file ends both streams instead of throwing.
    pipeline(found.handle.createReadStream(), res, () => undefined)
  }

  async function serveCall(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (req.method !== 'POST') return send(res, 405, 'Use POST with a JSON body.', undefined, { Allow: 'POST' })
    if (!isJsonRequest(req) || !originAllowed(req)) {
      drain(req)
      const own = `http://${allowedHosts()[0]}`
      return send(
        res,
        403,
        `Forbidden: /api/call/ takes only Content-Type: application/json, and an Origin header, if any, of this server (${exposed ? 'the address you opened' : own}).`
      )
    }
    const name = decode(url.pathname.slice('/api/call/'.length))
    if (name === null) {
      drain(req)
      return sendReply(res, 400, badRequest('The call name in the URL has a malformed percent-escape.'))
    }
    const body = await readBody(req)
    if (!body.ok) return sendReply(res, body.status, badRequest(body.message))
    let payload: unknown
    try {
      payload = body.text ? (JSON.parse(body.text) as unknown) : undefined
    } catch {
      return sendReply(res, 400, badRequest('The request body is not JSON.'))
    }
    const reply = await safeDispatch(handlers, name, payload)
    sendReply(res, reply.ok ? 200 : 400, reply)
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestUrl(req.url)
    if (!url) return send(res, 400, 'Bad request: the URL cannot be parsed.')
    if (!hostAllowed(req)) return send(res, 403, 'Forbidden host header.')
    if (!authorised(req, url)) {
      return send(res, 401, 'FeatureTrace: this server needs its access token. Open the URL printed at start (it ends in ?token=…).')
    }
    if (token && url.searchParams.has('token') && !url.pathname.startsWith('/api/')) {
      // Move the token from a page's address bar into a cookie its socket will carry; an API call just runs.
      res.writeHead(303, {
        'Set-Cookie': `${COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
        // One leading slash: `//host` would send the browser to another site.
        Location: '/' + url.pathname.replace(/^\/+/, ''),
        'Cache-Control': 'no-store'
      })
      return void res.end()
    }
    if (url.pathname.startsWith('/api/call/')) return serveCall(req, res, url)
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'Method not allowed.', undefined, { Allow: 'GET, HEAD' })
    return serveStatic(req, res, url.pathname)
  }

  const server = createServer((req, res) => {
    // A reset connection errors these streams; the request is simply over.
    req.on('error', () => undefined)
    res.on('error', () => undefined)
    handle(req, res).catch((err: unknown) => {
      console.error('[featuretrace] request failed:', err)
      send(res, 500, 'Internal error.')
    })
  })

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_BODY_BYTES })
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    // Node takes its own error listener off upgrade sockets; without ours a reset here would end the process.
    socket.on('error', () => socket.destroy())
    const url = requestUrl(req.url)
    if (!url) return refuseUpgrade(socket, 400)
    if (url.pathname !== '/api/ws') return refuseUpgrade(socket, 404)
    if (!hostAllowed(req) || !originAllowed(req)) return refuseUpgrade(socket, 403)
    if (!authorised(req, url)) return refuseUpgrade(socket, 401)
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
  })

  wss.on('connection', (ws: WebSocket) => {
    /** Sends unless the socket is closing; a failed send means the client left, which the close handler covers. */
    const sendText = (text: string): void => {
      if (ws.readyState === ws.OPEN) ws.send(text, () => undefined)
    }
    // ws closes the socket itself after a protocol error (1009 over-size, 1007 bad UTF-8, 1002 bad frame); the error needs only a listener.
    ws.on('error', () => undefined)
    const unsubscribe = opts.workspace.subscribe((event, payload) => {
      let text: string
      try {
        text = JSON.stringify({ event, payload })
      } catch (err) {
        return console.error(`[featuretrace] event ${event} could not be encoded as JSON:`, err)
      }
      sendText(text)
    })
    ws.on('close', unsubscribe)
    ws.on('message', (data: RawData, isBinary: boolean) => {
      handleMessage(data, isBinary)
        .then(sendText)
        .catch((err: unknown) => console.error('[featuretrace] socket message failed:', err))
    })
  })

  async function handleMessage(data: RawData, isBinary: boolean): Promise<string> {
    if (isBinary) return encodeReply(badRequest('Send calls as text frames of JSON, not binary frames.'), null)
    let msg: unknown
    try {
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
      msg = JSON.parse(bytes.toString('utf8'))
    } catch {
      return encodeReply(badRequest('Message is not JSON.'), null)
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      return encodeReply(badRequest('A message is an object: {"id": …, "call": "…", "payload": …}.'), null)
    }
    const { id, call, payload } = msg as { id?: unknown; call?: unknown; payload?: unknown }
    // Only a plain id is echoed: anything else could be deep enough to break the reply's encoding.
    const echo = (typeof id === 'number' && Number.isFinite(id)) || typeof id === 'string' ? id : null
    return encodeReply(await safeDispatch(handlers, call, payload), echo)
  }

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject)
      resolveListen()
    })
  })
  server.on('error', (err) => console.error('[featuretrace] server error:', err))
  boundPort = (server.address() as AddressInfo).port
  const withToken = (host: string): string => `http://${host}:${boundPort}/${token ? `?token=${token}` : ''}`
  const urls = reachableHosts(opts.host).map(withToken)
  return {
    url: urls[0]!,
    urls,
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

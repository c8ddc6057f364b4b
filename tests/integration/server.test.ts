// Browser mode over real sockets: loopback without a token, any other address only with it.
import { request } from 'node:http'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { Workspace } from '../../src/core/services'
import { startServer, type RunningServer } from '../../src/server/server'
import { BUILT_RENDERER, tempDir } from '../helpers'

interface Res {
  status: number
  body: string
  headers: Record<string, string | string[] | undefined>
}

function http(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

function socket(port: number, headers: Record<string, string> = {}, query = ''): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/ws${query}`, { headers })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused with ${res.statusCode}`)))
  })
}

function callOverSocket(ws: WebSocket, call: string, payload?: unknown): Promise<{ ok: boolean; result?: unknown; error?: { code: string } }> {
  return new Promise((resolve) => {
    const id = Math.floor(Math.random() * 1e9)
    const onMessage = (data: WebSocket.RawData): void => {
      const msg = JSON.parse(String(data)) as { id?: number; reply?: { ok: boolean } }
      if (msg.id === id) {
        ws.off('message', onMessage)
        resolve(msg.reply as { ok: boolean })
      }
    }
    ws.on('message', onMessage)
    ws.send(JSON.stringify({ id, call, payload }))
  })
}

describe('featuretrace serve', () => {
  let server: RunningServer | undefined
  let workspace: Workspace | undefined
  let t: ReturnType<typeof tempDir>
  afterEach(async () => {
    await server?.close()
    workspace?.close()
    t.cleanup()
  })

  async function start(host: string): Promise<RunningServer> {
    t = tempDir()
    workspace = new Workspace('browser', () => {
      throw new Error('no workers here')
    })
    workspace.open(join(t.dir, 'project'))
    server = await startServer({ workspace, host, port: 0, staticDir: BUILT_RENDERER })
    return server
  }

  it('on loopback serves the page and the API without a token, with a strict CSP', async () => {
    const s = await start('127.0.0.1')
    expect(s.token).toBeNull()
    const page = await http(s.port, '/')
    expect(page.status).toBe(200)
    expect(page.body).toContain('<div id="app">')
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self';/)
    const info = await http(s.port, '/api/call/project.info', { method: 'POST' })
    expect(JSON.parse(info.body)).toMatchObject({ ok: true, result: { name: 'project' } })
    const ws = await socket(s.port)
    expect(await callOverSocket(ws, 'checkpoints.list')).toEqual({ ok: true, result: [] })
    expect(await callOverSocket(ws, 'checkpoints.get', { id: 'x' })).toMatchObject({ ok: false, error: { code: 'bad-request' } })
    ws.close()
  })

  it('on loopback refuses foreign Host headers (DNS rebinding) and cross-site sockets', async () => {
    const s = await start('127.0.0.1')
    expect((await http(s.port, '/', { headers: { Host: `evil.example:${s.port}` } })).status).toBe(403)
    await expect(socket(s.port, { Origin: 'https://evil.example' })).rejects.toThrow(/401/)
  })

  it('never serves files outside the renderer folder', async () => {
    const s = await start('127.0.0.1')
    for (const path of ['/../../package.json', '/%2e%2e/%2e%2e/package.json', '/assets/../../../package.json']) {
      const r = await http(s.port, path)
      expect(r.body).not.toContain('"name": "featuretrace"')
    }
  })

  it('bound to 0.0.0.0 refuses every request and socket without the token', async () => {
    const s = await start('0.0.0.0')
    expect(s.token).toMatch(/^[A-Za-z0-9_-]{32}$/)
    expect(s.url).toContain(`?token=${s.token}`)
    expect((await http(s.port, '/')).status).toBe(401)
    expect((await http(s.port, '/assets/whatever.js')).status).toBe(401)
    expect((await http(s.port, '/api/call/app.info', { method: 'POST' })).status).toBe(401)
    expect((await http(s.port, '/api/call/app.info', { method: 'POST', headers: { Authorization: 'Bearer wrong' } })).status).toBe(401)
    expect((await http(s.port, '/?token=wrong')).status).toBe(401)
    await expect(socket(s.port)).rejects.toThrow(/401/)
    await expect(socket(s.port, { Cookie: 'featuretrace_token=wrong' })).rejects.toThrow(/401/)

    const ok = await http(s.port, '/api/call/app.info', { method: 'POST', headers: { Authorization: `Bearer ${s.token}` } })
    expect(JSON.parse(ok.body)).toMatchObject({ ok: true, result: { door: 'browser' } })
    // The page's token moves into an HttpOnly cookie that the socket then carries.
    const redirect = await http(s.port, `/?token=${s.token}`)
    expect(redirect.status).toBe(303)
    const cookie = String(redirect.headers['set-cookie']).split(';')[0]!
    expect(String(redirect.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict/)
    expect((await http(s.port, '/', { headers: { Cookie: cookie } })).status).toBe(200)
    const ws = await socket(s.port, { Cookie: cookie })
    expect(await callOverSocket(ws, 'project.info')).toMatchObject({ ok: true })
    ws.close()
  })

  it('pushes events to sockets', async () => {
    const s = await start('127.0.0.1')
    const ws = await socket(s.port)
    const got = new Promise<unknown>((resolve) => ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as { event?: string; payload?: unknown }
      if (m.event === 'project.changed') resolve(m.payload)
    }))
    expect(await callOverSocket(ws, 'project.open', { path: join(t.dir, 'second') })).toMatchObject({ ok: true })
    expect(await got).toMatchObject({ name: 'second' })
    ws.close()
  })
})

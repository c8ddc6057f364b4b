// Browser mode over real sockets: loopback without a token, any other address only with it;
// cross-site calls refused, and no malformed input answered with anything but a 4xx.
import { existsSync } from 'node:fs'
import { request } from 'node:http'
import { connect } from 'node:net'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { importFeatureSet } from '../../src/core/analysis/import-features'
import { dispatch, Workspace } from '../../src/core/services'
import { encodeReply, MAX_BODY_BYTES, reachableHosts, startServer, type RunningServer } from '../../src/server/server'
import { writeFeatureSet } from '../fixtures/feature-sets'
import { BUILT_RENDERER, tempDir } from '../helpers'

const JSON_TYPE = { 'Content-Type': 'application/json' }

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

/** Sends raw bytes and returns what came back before the server closed (or 2 s passed). */
function raw(port: number, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1')
    let got = ''
    c.on('data', (d) => (got += d.toString('latin1')))
    c.on('error', () => resolve(got))
    c.on('close', () => resolve(got))
    c.setTimeout(2000, () => c.destroy())
    c.end(bytes)
  })
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)))
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
    const info = await http(s.port, '/api/call/project.info', { method: 'POST', headers: JSON_TYPE })
    expect(JSON.parse(info.body)).toMatchObject({ ok: true, result: { name: 'project' } })
    const ws = await socket(s.port)
    expect(await callOverSocket(ws, 'checkpoints.list')).toEqual({ ok: true, result: [] })
    expect(await callOverSocket(ws, 'checkpoints.get', { id: 'x' })).toMatchObject({ ok: false, error: { code: 'bad-request' } })
    ws.close()
  })

  it('on loopback refuses foreign Host headers (DNS rebinding) and cross-site sockets', async () => {
    const s = await start('127.0.0.1')
    expect((await http(s.port, '/', { headers: { Host: `evil.example:${s.port}` } })).status).toBe(403)
    await expect(socket(s.port, { Origin: 'https://evil.example' })).rejects.toThrow(/403/)
    // The origin must be one of this server's own names and port; any of them will do.
    await expect(socket(s.port, { Origin: `http://evil.example:${s.port}` })).rejects.toThrow(/403/)
    await expect(socket(s.port, { Origin: `http://127.0.0.1:${s.port + 1}` })).rejects.toThrow(/403/)
    const own = await socket(s.port, { Origin: `http://localhost:${s.port}` })
    expect(await callOverSocket(own, 'project.info')).toMatchObject({ ok: true })
    own.close()
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

    const ok = await http(s.port, '/api/call/app.info', { method: 'POST', headers: { ...JSON_TYPE, Authorization: `Bearer ${s.token}` } })
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
    // A script may put the token in the call's address: the call runs, it is not redirected.
    const viaQuery = await http(s.port, `/api/call/app.info?token=${s.token}`, { method: 'POST', headers: JSON_TYPE })
    expect(viaQuery.status).toBe(200)
    expect(JSON.parse(viaQuery.body)).toMatchObject({ ok: true, result: { door: 'browser' } })
    expect((await http(s.port, '/api/call/app.info?token=wrong', { method: 'POST', headers: JSON_TYPE })).status).toBe(401)
  })

  it('bound to a wildcard address names addresses another machine can open', async () => {
    const s = await start('0.0.0.0')
    expect(s.urls.every((u) => !u.includes('0.0.0.0') && u.endsWith(`:${s.port}/?token=${s.token}`))).toBe(true)
    expect(s.urls.at(-1)).toBe(`http://127.0.0.1:${s.port}/?token=${s.token}`)
    expect(s.url).toBe(s.urls[0])
    const lan = Object.values(networkInterfaces())
      .flatMap((l) => l ?? [])
      .filter((a) => a.family === 'IPv4' && !a.internal)
      .map((a) => a.address)
    for (const address of lan) expect(s.urls).toContain(`http://${address}:${s.port}/?token=${s.token}`)
    if (lan.length) expect(s.url).not.toContain('127.0.0.1')
    // Every address named reaches this server.
    for (const u of s.urls) expect((await fetch(u, { redirect: 'manual' })).status).toBe(303)
  })

  it('lists interface addresses for a wildcard bind: IPv4 first, no loopback, no link-local IPv6', () => {
    const nic = (address: string, family: 'IPv4' | 'IPv6', internal = false) => ({
      address,
      family,
      internal,
      netmask: '',
      mac: '',
      cidr: null,
      ...(family === 'IPv6' ? { scopeid: 0 } : {})
    })
    const interfaces = {
      lo: [nic('127.0.0.1', 'IPv4', true), nic('::1', 'IPv6', true)],
      eth0: [nic('fe80::1', 'IPv6'), nic('2001:db8::5', 'IPv6'), nic('192.168.1.20', 'IPv4')]
    } as never
    expect(reachableHosts('0.0.0.0', interfaces)).toEqual(['192.168.1.20', '127.0.0.1'])
    expect(reachableHosts('::', interfaces)).toEqual(['192.168.1.20', '[2001:db8::5]', '127.0.0.1'])
    expect(reachableHosts('10.0.0.7', interfaces)).toEqual(['10.0.0.7'])
    expect(reachableHosts('127.0.0.1', interfaces)).toEqual(['127.0.0.1'])
  })

  it('pushes events to sockets', async () => {
    const s = await start('127.0.0.1')
    const ws = await socket(s.port)
    const got = new Promise<unknown>((resolve) =>
      ws.on('message', (d) => {
        const m = JSON.parse(String(d)) as { event?: string; payload?: unknown }
        if (m.event === 'project.changed') resolve(m.payload)
      })
    )
    expect(await callOverSocket(ws, 'project.open', { path: join(t.dir, 'second') })).toMatchObject({ ok: true })
    expect(await got).toMatchObject({ name: 'second' })
    ws.close()
  })

  describe('cross-site calls', () => {
    async function startLabelled(): Promise<{ s: RunningServer; setId: number; count: () => number }> {
      const s = await start('127.0.0.1')
      const file = join(t.dir, 'features.jsonl')
      writeFeatureSet(file, { checkpoints: [3], features: 10, labels: ['Token-level', 'Uninterpretable'] })
      const setId = importFeatureSet(workspace!.project!, file)[0]!.id
      const count = (): number => (workspace!.project!.db.prepare('SELECT count(*) AS n FROM label_event').get() as { n: number }).n
      return { s, setId, count }
    }

    it('refuses text/plain and foreign-origin posts with 403 and writes nothing', async () => {
      const { s, setId, count } = await startLabelled()
      const before = count()
      const label = JSON.stringify({ setId, feature: 5, annotator: 'mallory', category: 'Uninterpretable' })
      const open = JSON.stringify({ path: join(t.dir, 'evil') })
      const refused: { headers: Record<string, string>; why: string }[] = [
        { headers: { 'Content-Type': 'text/plain', Origin: 'https://evil.example' }, why: 'a page form/fetch without preflight' },
        { headers: { 'Content-Type': 'text/plain;charset=UTF-8' }, why: 'simple request, no Origin' },
        { headers: {}, why: 'no content type' },
        { headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: `http://127.0.0.1:${s.port}` }, why: 'form, even same origin' },
        { headers: { 'Content-Type': 'text/plain; application/json' }, why: 'json named only as a parameter' },
        { headers: { ...JSON_TYPE, Origin: 'https://evil.example' }, why: 'json from another site' },
        { headers: { ...JSON_TYPE, Origin: 'null' }, why: 'opaque origin (sandboxed frame, file://)' },
        { headers: { ...JSON_TYPE, Origin: `http://127.0.0.1:${s.port + 1}` }, why: 'another port is another origin' },
        { headers: { ...JSON_TYPE, Origin: `https://127.0.0.1:${s.port}` }, why: 'another scheme' }
      ]
      for (const { headers, why } of refused) {
        for (const [call, body] of [
          ['labels.set', label],
          ['project.open', open]
        ] as const) {
          const r = await http(s.port, `/api/call/${call}`, { method: 'POST', headers, body })
          expect(r.status, `${call}: ${why}`).toBe(403)
          expect(r.body).toMatch(/application\/json/)
        }
      }
      expect(count()).toBe(before)
      expect(workspace!.project!.path).toBe(join(t.dir, 'project'))
      expect(existsSync(join(t.dir, 'evil'))).toBe(false)
      expect(workspace!.project!.labels.labels(setId, 5).map((l) => l.annotator)).not.toContain('mallory')
    })

    it('answers same-origin JSON and JSON without an Origin (CLI-like clients)', async () => {
      const { s, setId, count } = await startLabelled()
      const before = count()
      for (const headers of [
        { ...JSON_TYPE, Origin: `http://127.0.0.1:${s.port}` },
        { 'Content-Type': 'application/json; charset=utf-8', Origin: `http://localhost:${s.port}` },
        JSON_TYPE
      ]) {
        const r = await http(s.port, '/api/call/labels.set', {
          method: 'POST',
          headers,
          body: JSON.stringify({ setId, feature: 5, annotator: 'ana', category: 'Token-level' })
        })
        expect(r.status).toBe(200)
        expect(JSON.parse(r.body)).toMatchObject({ ok: true, result: { annotator: 'ana', category: 'Token-level' } })
      }
      expect(count()).toBe(before + 3)
      const opened = await http(s.port, '/api/call/project.open', { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ path: join(t.dir, 'second') }) })
      expect(JSON.parse(opened.body)).toMatchObject({ ok: true, result: { name: 'second' } })
    })

    it('with a token, still refuses cookie-carrying posts that are not JSON from our origin', async () => {
      const s = await start('0.0.0.0')
      const cookie = `featuretrace_token=${s.token}`
      const host = `127.0.0.1:${s.port}`
      // Another service on the same machine is same-site, so SameSite=Strict alone would let its pages send the cookie.
      expect(
        (
          await http(s.port, '/api/call/app.info', {
            method: 'POST',
            headers: { Cookie: cookie, 'Content-Type': 'text/plain', Origin: `http://127.0.0.1:${s.port + 1}` }
          })
        ).status
      ).toBe(403)
      expect(
        (await http(s.port, '/api/call/app.info', { method: 'POST', headers: { Cookie: cookie, ...JSON_TYPE, Origin: `http://127.0.0.1:${s.port + 1}` } }))
          .status
      ).toBe(403)
      expect((await http(s.port, '/api/call/app.info', { method: 'POST', headers: { Cookie: cookie, ...JSON_TYPE, Origin: `http://${host}` } })).status).toBe(
        200
      )
      // A malformed escape in the cookie is a wrong token, not a crash.
      expect((await http(s.port, '/api/call/app.info', { method: 'POST', headers: { Cookie: 'featuretrace_token=%E0%A4%A', ...JSON_TYPE } })).status).toBe(401)
      expect(
        await raw(s.port, `GET /api/ws HTTP/1.1\r\nHost: ${host}\r\nCookie: featuretrace_token=%ZZ\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`)
      ).toMatch(/^HTTP\/1.1 401/)
      // The token redirect never leaves this server, whatever the path looks like.
      const r = await http(s.port, `/.//evil.example/?token=${s.token}`)
      expect(r.status).toBe(303)
      expect(r.headers.location).toBe('/evil.example/')
    })
  })

  describe('hostile input', () => {
    it('answers malformed URLs with 400 and logs no stack trace', async () => {
      const s = await start('127.0.0.1')
      const logged = vi.spyOn(console, 'error')
      try {
        expect((await http(s.port, '/%E0%A4%A')).status).toBe(400)
        expect((await http(s.port, '/assets/%00.js')).status).toBe(400)
        const call = await http(s.port, '/api/call/%ZZ', { method: 'POST', headers: JSON_TYPE, body: '{}' })
        expect(call.status).toBe(400)
        expect(JSON.parse(call.body)).toMatchObject({ ok: false, error: { code: 'bad-request', message: /malformed percent-escape/ } })
        // `//x` is a path here, never a host; an upgrade on an odd path is refused, not thrown on.
        expect((await http(s.port, '//evil.example/x')).status).toBe(200)
        expect(await raw(s.port, `GET // HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`)).toMatch(/^HTTP\/1.1 404/)
        expect(await raw(s.port, `GET /%ZZ HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\n\r\n`)).toMatch(/^HTTP\/1.1 400/)
        expect(await raw(s.port, 'GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1.1 400/)
        expect(logged).not.toHaveBeenCalled()
      } finally {
        logged.mockRestore()
      }
      expect((await http(s.port, '/')).status).toBe(200)
    })

    it('serves HEAD without a body and refuses other methods on pages', async () => {
      const s = await start('127.0.0.1')
      const head = await http(s.port, '/', { method: 'HEAD' })
      expect(head.status).toBe(200)
      expect(head.body).toBe('')
      expect(Number(head.headers['content-length'])).toBeGreaterThan(100)
      expect((await http(s.port, '/', { method: 'DELETE' })).status).toBe(405)
      expect((await http(s.port, '/api/call/app.info', { method: 'GET' })).status).toBe(405)
    })

    it('answers over-size and broken bodies with 413 and 400, and keeps serving', async () => {
      const s = await start('127.0.0.1')
      const big = '"' + 'x'.repeat(MAX_BODY_BYTES) + '"'
      const declared = await http(s.port, '/api/call/app.info', { method: 'POST', headers: JSON_TYPE, body: big })
      expect(declared.status).toBe(413)
      expect(JSON.parse(declared.body)).toMatchObject({ ok: false, error: { code: 'bad-request', message: /over 1048576 bytes/ } })
      const chunked = await http(s.port, '/api/call/app.info', { method: 'POST', headers: { ...JSON_TYPE, 'Transfer-Encoding': 'chunked' }, body: big })
      expect(chunked.status).toBe(413)
      const notUtf8 = await raw(
        s.port,
        Buffer.concat([
          Buffer.from(
            `POST /api/call/app.info HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nContent-Type: application/json\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"`
          ),
          Buffer.from([0xff, 0xfe]),
          Buffer.from('"')
        ])
      )
      expect(notUtf8).toMatch(/^HTTP\/1.1 400[\s\S]*not valid UTF-8/)
      const truncated = await raw(
        s.port,
        `POST /api/call/app.info HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":`
      )
      // Node answers a body cut short by the client's FIN with 400 itself; the call never runs.
      expect(truncated).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/)
      for (const body of ['['.repeat(100_000) + ']'.repeat(100_000), '{"__proto__":{"polluted":1}}', '{"setId":"1","feature":[]}', 'nul', '']) {
        const r = await http(s.port, '/api/call/labels.set', { method: 'POST', headers: JSON_TYPE, body })
        expect(r.status).toBe(400)
        expect(JSON.parse(r.body)).toMatchObject({ ok: false, error: { code: 'bad-request' } })
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      expect(JSON.parse((await http(s.port, '/api/call/app.info', { method: 'POST', headers: JSON_TYPE })).body)).toMatchObject({ ok: true })
    })

    it('shrugs off HTTP clients that leave before their reply', async () => {
      const s = await start('127.0.0.1')
      const body = JSON.stringify({ setId: 1, limit: 5000 })
      const head = `POST /api/call/features.list HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`
      await Promise.all(
        Array.from(
          { length: 40 },
          (_, i) =>
            new Promise<void>((resolve) => {
              const c = connect(s.port, '127.0.0.1', () => {
                c.write(i % 2 ? head + body : head + body.slice(0, 5)) // whole or cut short
                c.resetAndDestroy()
                resolve()
              })
              c.on('error', () => undefined)
            })
        )
      )
      await new Promise((r) => setTimeout(r, 100))
      expect(JSON.parse((await http(s.port, '/api/call/project.info', { method: 'POST', headers: JSON_TYPE })).body)).toMatchObject({ ok: true })
    })

    it('closes an over-size socket message with 1009 and goes on serving other sockets', async () => {
      const s = await start('127.0.0.1')
      const bystander = await socket(s.port)
      const sender = await socket(s.port)
      sender.on('error', () => undefined)
      const code = closed(sender)
      sender.send('x'.repeat(MAX_BODY_BYTES + 1))
      expect(await code).toBe(1009)
      expect(await callOverSocket(bystander, 'project.info')).toMatchObject({ ok: true })
      const badUtf8 = await socket(s.port)
      badUtf8.on('error', () => undefined)
      const code2 = closed(badUtf8)
      badUtf8.send(Buffer.from([0x7b, 0xff, 0x7d]), { binary: false })
      expect(await code2).toBe(1007)
      const after = await socket(s.port)
      expect(await callOverSocket(after, 'project.info')).toMatchObject({ ok: true })
      bystander.close()
      after.close()
    })

    it('answers every malformed socket message with a bad-request reply', async () => {
      const s = await start('127.0.0.1')
      const ws = await socket(s.port)
      const replies: { id: unknown; reply: { ok: boolean; error?: { code: string } } }[] = []
      ws.on('message', (d) => replies.push(JSON.parse(String(d)) as (typeof replies)[number]))
      const messages: [string | Buffer, boolean][] = [
        ['null', false],
        ['[]', false],
        ['42', false],
        ['"call"', false],
        ['{', false],
        [JSON.stringify({ id: 1, call: '__proto__' }), false],
        [JSON.stringify({ id: 2, call: 'labels.set', payload: { setId: -1, feature: 'x', annotator: [] } }), false],
        [JSON.stringify({ id: 3, call: 'toString' }), false],
        [`{"id":${'['.repeat(50_000)}${']'.repeat(50_000)},"call":"app.info"}`, false],
        [Buffer.from(JSON.stringify({ id: 4, call: 'app.info' })), true]
      ]
      for (const [data, binary] of messages) ws.send(data, { binary })
      await vi.waitFor(() => expect(replies).toHaveLength(messages.length))
      // Replies come as calls finish, not in order: compare them as a sorted list of [id, ok].
      const seen = replies.map((r) => JSON.stringify([r.id, r.reply.ok])).sort()
      expect(seen).toEqual(['[1,false]', '[2,false]', '[3,false]', ...Array(6).fill('[null,false]'), '[null,true]'].sort())
      expect(replies.filter((r) => !r.reply.ok).every((r) => r.reply.error?.code === 'bad-request')).toBe(true)
      // A client that leaves before its replies arrive costs the server nothing.
      const leaver = await socket(s.port)
      for (let i = 0; i < 50; i++) leaver.send(JSON.stringify({ id: i, call: 'features.sets' }))
      leaver.terminate()
      expect(await callOverSocket(ws, 'project.info')).toMatchObject({ ok: true })
      ws.close()
    })
  })
})

describe('replies that cannot be sent as they are', () => {
  it('a handler throwing a non-Error gives an internal error reply', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined)
    try {
      for (const thrown of [null, undefined, 'text', 42, Object.create(null) as object]) {
        const handlers = {
          'app.info': () => {
            throw thrown
          }
        } as unknown as Parameters<typeof dispatch>[0]
        const reply = await dispatch(handlers, 'app.info', undefined)
        expect(reply).toMatchObject({ ok: false, error: { code: 'internal', message: /^Internal error in app.info: / } })
      }
    } finally {
      logged.mockRestore()
    }
  })

  it('a result JSON cannot carry becomes an internal error instead of a throw', () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined)
    try {
      const cyclic: Record<string, unknown> = {}
      cyclic.self = cyclic
      for (const result of [10n, cyclic]) {
        expect(JSON.parse(encodeReply({ ok: true, result }))).toMatchObject({ ok: false, error: { code: 'internal', message: /could not be encoded as JSON/ } })
        expect(JSON.parse(encodeReply({ ok: true, result }, 7))).toMatchObject({ id: 7, reply: { ok: false, error: { code: 'internal' } } })
      }
      expect(JSON.parse(encodeReply({ ok: true, result: [1] }, 'a'))).toEqual({ id: 'a', reply: { ok: true, result: [1] } })
    } finally {
      logged.mockRestore()
    }
  })
})

// The Electron IPC handler, called the way Electron calls it, with genuine and forged senders.
import type { IpcMainInvokeEvent } from 'electron'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isTrustedSender, registerApiIpc, type IpcMainLike } from '../../src/main/ipc'
import { Workspace } from '../../src/core/services'
import { API_CHANNEL } from '../../src/shared/ipc'
import { tempDir } from '../helpers'

type Handler = (event: IpcMainInvokeEvent, ...args: unknown[]) => Promise<unknown>

const RENDERER = 'file:///opt/FeatureTrace/out/renderer/index.html'
const WINDOW_ID = 7

function event(opts: { id?: number; url?: string; subframe?: boolean; noFrame?: boolean }): IpcMainInvokeEvent {
  const frame = opts.noFrame ? null : { url: opts.url ?? RENDERER, parent: opts.subframe ? { url: RENDERER } : null }
  return { sender: { id: opts.id ?? WINDOW_ID }, senderFrame: frame } as unknown as IpcMainInvokeEvent
}

function setup(rendererUrl = RENDERER): { handler: Handler; ws: Workspace } {
  let handler: Handler | undefined
  const ipcMain: IpcMainLike = {
    handle(channel, listener) {
      expect(channel).toBe(API_CHANNEL)
      handler = listener
    }
  }
  const ws = new Workspace('electron', () => {
    throw new Error('no workers here')
  })
  registerApiIpc(ipcMain, ws, { trustedWebContentsIds: () => new Set([WINDOW_ID]), rendererUrl })
  return { handler: handler!, ws }
}

describe('Electron IPC handlers', () => {
  let t: ReturnType<typeof tempDir> | undefined
  afterEach(() => t?.cleanup())

  it('serves our own window', async () => {
    const { handler } = setup()
    expect(await handler(event({}), 'app.info', undefined)).toMatchObject({ ok: true, result: { name: 'FeatureTrace', door: 'electron' } })
  })

  it.each([
    ['another webContents', { id: 99 }],
    ['a subframe of our window', { subframe: true }],
    ['a page from the web', { url: 'https://evil.example/index.html' }],
    ['another local file', { url: 'file:///tmp/evil.html' }],
    ['a frame that is gone', { noFrame: true }],
    ['a data: URL', { url: 'data:text/html,<script>1</script>' }]
  ])('rejects a forged sender: %s', async (_name, forged) => {
    const { handler, ws } = setup()
    t = tempDir()
    const target = join(t.dir, 'should-not-exist')
    const reply = await handler(event(forged), 'project.open', { path: target })
    expect(reply).toEqual({ ok: false, error: { code: 'forbidden', message: expect.any(String) } })
    expect(ws.project).toBeNull()
  })

  it('accepts the dev server origin in development and nothing else', () => {
    const policy = { trustedWebContentsIds: () => new Set([WINDOW_ID]), rendererUrl: 'http://localhost:5173' }
    const ev = (url: string): Parameters<typeof isTrustedSender>[0] => event({ url })
    expect(isTrustedSender(ev('http://localhost:5173/'), policy)).toBe(true)
    expect(isTrustedSender(ev('http://localhost:5174/'), policy)).toBe(false)
    expect(isTrustedSender(ev('http://localhost.evil.example:5173/'), policy)).toBe(false)
  })

  it('rejects invalid payloads from a trusted sender', async () => {
    const { handler } = setup()
    expect(await handler(event({}), 'checkpoints.get', { id: 'x' })).toMatchObject({ ok: false, error: { code: 'bad-request' } })
    expect(await handler(event({}), 'project.open', { path: 42 })).toMatchObject({ ok: false, error: { code: 'bad-request' } })
    expect(await handler(event({}), { toString: () => 'app.info' }, undefined)).toMatchObject({ ok: false, error: { code: 'bad-request' } })
  })

  it('opens a project for a trusted sender', async () => {
    const { handler, ws } = setup()
    t = tempDir()
    const reply = await handler(event({}), 'project.open', { path: join(t.dir, 'proj') })
    expect(reply).toMatchObject({ ok: true, result: { name: 'proj', checkpointCount: 0 } })
    ws.close()
  })
})

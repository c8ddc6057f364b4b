// Validated IPC: only our own window's top frame, loaded from our own renderer, may call the API.
import type { IpcMainInvokeEvent } from 'electron'
import type { ApiReply } from '../shared/api'
import { API_CHANNEL } from '../shared/ipc'
import { createHandlers, dispatch, type Workspace } from '../core/services'

export interface IpcMainLike {
  handle(channel: string, listener: (event: IpcMainInvokeEvent, ...args: unknown[]) => Promise<unknown>): void
}

/** What a sender must look like: one of our windows, top frame, at our renderer's URL. */
export interface SenderPolicy {
  trustedWebContentsIds: () => ReadonlySet<number>
  /** The renderer's URL prefix: the dev server origin or the built index.html file URL. */
  rendererUrl: string
}

export function isTrustedSender(event: Pick<IpcMainInvokeEvent, 'sender' | 'senderFrame'>, policy: SenderPolicy): boolean {
  const frame = event.senderFrame
  if (!frame || frame.parent !== null) return false
  if (!policy.trustedWebContentsIds().has(event.sender.id)) return false
  let url: URL
  let expected: URL
  try {
    url = new URL(frame.url)
    expected = new URL(policy.rendererUrl)
  } catch {
    return false
  }
  if (expected.protocol === 'file:') return url.protocol === 'file:' && url.pathname === expected.pathname
  return url.origin === expected.origin
}

export function registerApiIpc(ipcMain: IpcMainLike, workspace: Workspace, policy: SenderPolicy): void {
  const handlers = createHandlers(workspace)
  ipcMain.handle(API_CHANNEL, async (event, name, payload): Promise<ApiReply<unknown>> => {
    if (!isTrustedSender(event, policy)) {
      return { ok: false, error: { code: 'forbidden', message: 'IPC sender is not a FeatureTrace window.' } }
    }
    return dispatch(handlers, name, payload)
  })
}

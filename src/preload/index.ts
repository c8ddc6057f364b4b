// The renderer's only way out: one narrow `api` object, no Node, no raw ipcRenderer.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron'
import type { ApiReply, PreloadBridge } from '../shared/api'
import { API_CHANNEL, EVENT_CHANNEL } from '../shared/ipc'

const api = {
  invoke: (name: string, payload: unknown): Promise<ApiReply<unknown>> => ipcRenderer.invoke(API_CHANNEL, name, payload) as Promise<ApiReply<unknown>>,
  subscribe(listener: (event: string, payload: unknown) => void): () => void {
    const handler = (_e: IpcRendererEvent, event: string, payload: unknown): void => listener(event, payload)
    ipcRenderer.on(EVENT_CHANNEL, handler)
    return () => ipcRenderer.removeListener(EVENT_CHANNEL, handler)
  }
} satisfies PreloadBridge

export type PreloadApi = typeof api

contextBridge.exposeInMainWorld('api', api)

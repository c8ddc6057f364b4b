// The one client every view uses: Electron's preload bridge when present, else a WebSocket to `serve`.
import { z } from 'zod'
import type { ApiClient, ApiReply, CallInput, CallName, CallOutput, EventName, EventPayload, PreloadBridge } from '../../../shared/api'

type Listener = (payload: unknown) => void

export class ApiCallError extends Error {
  constructor(
    readonly code: string,
    message: string
  ) {
    super(message)
  }
}

function unwrap<T>(reply: ApiReply<unknown>): T {
  if (!reply.ok) throw new ApiCallError(reply.error.code, reply.error.message)
  return reply.result as T
}

class Listeners {
  private readonly map = new Map<string, Set<Listener>>()
  add(event: string, l: Listener): () => void {
    if (!this.map.has(event)) this.map.set(event, new Set())
    this.map.get(event)!.add(l)
    return () => this.map.get(event)?.delete(l)
  }
  fire(event: string, payload: unknown): void {
    for (const l of this.map.get(event) ?? []) l(payload)
  }
}

export function bridgeClient(bridge: PreloadBridge): ApiClient {
  const listeners = new Listeners()
  bridge.subscribe((event, payload) => listeners.fire(event, payload))
  return {
    async call<C extends CallName>(name: C, payload?: CallInput<C>) {
      return unwrap<CallOutput<C>>(await bridge.invoke(name, payload))
    },
    on<E extends EventName>(event: E, listener: (p: EventPayload<E>) => void) {
      return listeners.add(event, listener as Listener)
    }
  }
}

const SocketMessageSchema = z.union([
  z.object({ event: z.string(), payload: z.unknown() }),
  z.object({
    id: z.number().int(),
    reply: z.union([
      z.object({ ok: z.literal(true), result: z.unknown() }),
      z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) })
    ])
  })
])

/** A message of the server's socket: a reply to a call (by its id) or an event; null when it is neither. */
function socketMessage(text: string): { event: string; payload: unknown } | { id: number; reply: ApiReply<unknown> } | null {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return null
  }
  const parsed = SocketMessageSchema.safeParse(raw)
  return parsed.success ? (parsed.data as { event: string; payload: unknown } | { id: number; reply: ApiReply<unknown> }) : null
}

/** A promise with its resolver, for "the socket is open". */
function opening(): { promise: Promise<void>; resolve: () => void; done: boolean } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  const o = { promise, done: false, resolve: () => ((o.done = true), resolve()) }
  return o
}

/**
 * Browser mode: calls and events over one socket, reconnecting with back-off. A call made while the socket is
 * down waits for it to be up again; one whose reply was lost with the socket fails with code 'disconnected'.
 */
export function socketClient(url: string, onStatus: (connected: boolean) => void = () => {}): ApiClient {
  const listeners = new Listeners()
  const pending = new Map<number, { resolve: (r: ApiReply<unknown>) => void; reject: (e: Error) => void }>()
  let nextId = 1
  let socket: WebSocket
  let open = opening()
  let delay = 250

  function connect(): void {
    socket = new WebSocket(url)
    socket.addEventListener('open', () => {
      delay = 250
      open.resolve()
      onStatus(true)
    })
    socket.addEventListener('message', (e) => {
      const msg = socketMessage(String(e.data))
      if (!msg) return console.warn('FeatureTrace: a message from the server that is neither a reply nor an event was ignored.')
      if ('event' in msg) listeners.fire(msg.event, msg.payload)
      else {
        pending.get(msg.id)?.resolve(msg.reply)
        pending.delete(msg.id)
      }
    })
    socket.addEventListener('close', () => {
      // Renewed before the rejections below, so a caller that retries at once waits for the next socket.
      if (open.done) open = opening()
      onStatus(false)
      for (const p of pending.values()) p.reject(new ApiCallError('disconnected', 'Lost the connection to FeatureTrace.'))
      pending.clear()
      setTimeout(connect, delay)
      delay = Math.min(delay * 2, 5000)
    })
  }
  connect()

  return {
    async call<C extends CallName>(name: C, payload?: CallInput<C>) {
      while (socket.readyState !== WebSocket.OPEN) await open.promise
      const id = nextId++
      const reply = await new Promise<ApiReply<unknown>>((resolve, reject) => {
        pending.set(id, { resolve, reject })
        socket.send(JSON.stringify({ id, call: name, payload }))
      })
      return unwrap<CallOutput<C>>(reply)
    },
    on<E extends EventName>(event: E, listener: (p: EventPayload<E>) => void) {
      return listeners.add(event, listener as Listener)
    }
  }
}

export const connection = { connected: true, listeners: new Set<(c: boolean) => void>() }

function createClient(): ApiClient {
  if (window.api) return bridgeClient(window.api)
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
  return socketClient(`${proto}//${location.host}/api/ws`, (c) => {
    connection.connected = c
    for (const l of connection.listeners) l(c)
  })
}

export const api: ApiClient = createClient()

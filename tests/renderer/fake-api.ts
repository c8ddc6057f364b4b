// The renderer's API client, faked for store tests: calls go to handlers the test gives, events are fired by it.
import type { CallInput, CallName, CallOutput, EventName, EventPayload } from '../../src/shared/api'

type Handler = (payload: unknown) => unknown

export class FakeApi {
  readonly calls: { name: CallName; payload: unknown }[] = []
  private readonly handlers = new Map<string, Handler>()
  private readonly listeners = new Map<string, Set<(p: unknown) => void>>()

  /** What `name` answers (a thrown error is the call's failure). */
  handle<C extends CallName>(name: C, handler: (payload: CallInput<C>) => CallOutput<C> | Promise<CallOutput<C>>): void {
    this.handlers.set(name, handler as Handler)
  }

  async call<C extends CallName>(name: C, payload?: CallInput<C>): Promise<CallOutput<C>> {
    this.calls.push({ name, payload })
    const h = this.handlers.get(name)
    if (!h) throw new Error(`no handler for ${name} in this test`)
    return (await h(payload)) as CallOutput<C>
  }

  on<E extends EventName>(event: E, listener: (p: EventPayload<E>) => void): () => void {
    const set = this.listeners.get(event) ?? new Set()
    set.add(listener as (p: unknown) => void)
    this.listeners.set(event, set)
    return () => set.delete(listener as (p: unknown) => void)
  }

  fire<E extends EventName>(event: E, payload: EventPayload<E>): void {
    for (const l of this.listeners.get(event) ?? []) l(payload)
  }

  /** The payloads of every call of `name`, in order. */
  payloads<C extends CallName>(name: C): CallInput<C>[] {
    return this.calls.filter((c) => c.name === name).map((c) => c.payload as CallInput<C>)
  }
}

/** The browser's storage, as a Map. */
export class MemoryStorage {
  private readonly map = new Map<string, string>()
  get length(): number {
    return this.map.size
  }
  key(i: number): string | null {
    return [...this.map.keys()][i] ?? null
  }
  getItem(k: string): string | null {
    return this.map.get(k) ?? null
  }
  setItem(k: string, v: string): void {
    this.map.set(k, v)
  }
  removeItem(k: string): void {
    this.map.delete(k)
  }
}

/** Lets pending promise callbacks run. */
export const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 0))

// Label writes in the order the keys were pressed: each has a request id (so a resend after a lost reply is
// applied once), is sent one at a time, and waits in the browser's storage while the server is unreachable.
import { z } from 'zod'
import type { Label } from '../../../shared/api'

const LabelWriteSchema = z.object({
  /** Request id, made here; the server records it with the change. */
  id: z.string(),
  /** Order of the keys, across sets and page loads. */
  seq: z.number(),
  kind: z.enum(['set', 'undo']),
  setId: z.number().int(),
  annotator: z.string(),
  /** For 'set': the feature shown when the key was pressed. */
  feature: z.number().int().optional(),
  /** For 'set': absent keeps the current category (a note alone), null clears it. */
  category: z.string().nullable().optional(),
  note: z.string().optional(),
  blind: z.boolean().optional(),
  /** For 'set': this annotator's label of the feature as shown before the key; for 'undo': the label it is expected to restore. */
  before: z.object({ category: z.string().nullable(), note: z.string() }).nullable().optional(),
  /** pending: not sent yet (or to be sent again); sending: sent, no reply yet; failed: the server refused it. */
  state: z.enum(['pending', 'sending', 'failed']),
  error: z.string().optional()
})
export type LabelWrite = z.infer<typeof LabelWriteSchema>

/** What the queue needs of the browser's storage (localStorage, or a Map in tests). */
export interface QueueStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
  readonly length: number
  key(index: number): string | null
}

export interface QueueHooks {
  /** Sends one write; rejects with an error whose `code` is 'disconnected' when the reply was lost with the connection. */
  send(write: LabelWrite): Promise<Label | null>
  applied(write: LabelWrite, label: Label | null): void
  changed(writes: readonly LabelWrite[]): void
}

const PREFIX = 'featuretrace.labelQueue:'

/** A request id from the browser's random source (crypto.randomUUID needs a secure context; this does not). */
export function newRequestId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

function parseJson(text: string | null): unknown {
  try {
    return JSON.parse(text ?? '[]')
  } catch {
    return undefined
  }
}

function isDisconnect(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'disconnected'
}

export class LabelWriteQueue {
  private list: LabelWrite[] = []
  private project: string | null = null
  private pumping = false
  private lastSeq = 0

  constructor(
    private readonly storage: QueueStorage,
    private readonly hooks: QueueHooks
  ) {}

  get writes(): readonly LabelWrite[] {
    return this.list
  }

  /** Storage key of one project's writes to one set. */
  static key(project: string, setId: number): string {
    return `${PREFIX}${project}:${setId}`
  }

  /** Takes up the writes stored for a project (left there by a closed or reloaded page) and sends them. */
  open(project: string): void {
    if (project === this.project) return
    this.project = project
    const mine = `${PREFIX}${project}:`
    const found: LabelWrite[] = []
    for (let i = 0; i < this.storage.length; i++) {
      const key = this.storage.key(i)
      if (!key?.startsWith(mine)) continue
      const stored = z.array(LabelWriteSchema).safeParse(parseJson(this.storage.getItem(key)))
      if (stored.success) found.push(...stored.data)
      else {
        // Unreadable (another version's, or damaged): nothing in it can be sent. Said in the console, not kept.
        console.warn(`FeatureTrace: unreadable label writes in the browser's storage (${key}) were dropped: ${stored.error.issues[0]?.message ?? 'not JSON'}`)
        this.storage.removeItem(key)
      }
    }
    // A write stored while sending may or may not have arrived: send it again under its id.
    this.list = found.sort((a, b) => a.seq - b.seq).map((w) => ({ ...w, state: w.state === 'failed' ? 'failed' : 'pending' }))
    this.lastSeq = Math.max(this.lastSeq, ...found.map((w) => w.seq))
    this.hooks.changed(this.list)
    void this.pump()
  }

  /** Stops sending: the server has another project, or none, open. The writes stay stored for their project. */
  close(): void {
    if (this.project === null) return
    this.project = null
    this.list = []
    this.hooks.changed(this.list)
  }

  add(write: Omit<LabelWrite, 'id' | 'seq' | 'state'>): LabelWrite {
    this.lastSeq = Math.max(Date.now(), this.lastSeq + 1)
    const w: LabelWrite = { ...write, id: newRequestId(), seq: this.lastSeq, state: 'pending' }
    this.list = [...this.list, w]
    this.save(w.setId)
    this.hooks.changed(this.list)
    void this.pump()
    return w
  }

  /** Sends a failed write again, under the same id. */
  retry(id: string): void {
    this.list = this.list.map((w) => (w.id === id && w.state === 'failed' ? { ...w, state: 'pending', error: undefined } : w))
    this.hooks.changed(this.list)
    void this.pump()
  }

  /** Gives up a failed write. */
  discard(id: string): void {
    const w = this.list.find((x) => x.id === id && x.state === 'failed')
    if (!w) return
    this.list = this.list.filter((x) => x !== w)
    this.save(w.setId)
    this.hooks.changed(this.list)
  }

  private update(w: LabelWrite, change: Partial<LabelWrite>): LabelWrite {
    const next = { ...w, ...change }
    this.list = this.list.map((x) => (x.id === w.id ? next : x))
    return next
  }

  /** One write at a time, in order: a later key never overtakes an earlier one. */
  private async pump(): Promise<void> {
    if (this.pumping || this.project === null) return
    this.pumping = true
    const project = this.project
    try {
      for (;;) {
        if (this.project !== project) return // another project opened: its server must not get these
        let w = this.list.find((x) => x.state === 'pending')
        if (!w) return
        w = this.update(w, { state: 'sending' })
        this.hooks.changed(this.list)
        try {
          const label = await this.hooks.send(w)
          if (this.project !== project) return
          this.list = this.list.filter((x) => x.id !== w!.id)
          this.save(w.setId)
          this.hooks.changed(this.list)
          this.hooks.applied(w, label)
        } catch (err) {
          if (this.project !== project) return
          // Lost with the connection: send again (the client waits for it); refused by the server: keep it, marked.
          this.update(w, isDisconnect(err) ? { state: 'pending' } : { state: 'failed', error: (err as Error).message })
          if (!isDisconnect(err)) this.save(w.setId)
          this.hooks.changed(this.list)
        }
      }
    } finally {
      this.pumping = false
      if (this.project !== project) void this.pump()
    }
  }

  /** Writes one set's queue to storage, or removes its key when it is empty. */
  private save(setId: number): void {
    if (this.project === null) return
    const key = LabelWriteQueue.key(this.project, setId)
    const rows = this.list.filter((w) => w.setId === setId)
    try {
      if (rows.length) this.storage.setItem(key, JSON.stringify(rows))
      else this.storage.removeItem(key)
    } catch (err) {
      // Storage full or refused: the writes still go out from memory while this page stays open.
      console.warn(
        `FeatureTrace: the browser did not keep the label writes waiting to be sent (${(err as Error).message}); they are sent from memory while this page stays open.`
      )
    }
  }
}

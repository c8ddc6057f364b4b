// The API contract: every call and event that crosses a process boundary, described once. This file is the
// index: each domain's types and calls live in its own file beside it and are re-exported from here.
// Imported by core (implementation), main/preload (Electron IPC), server (HTTP/WebSocket), cli and renderer.
import { z } from 'zod'
import { checkpointCalls } from './checkpoints'
import { carryLabelCalls } from './carry-labels'
import { dynamicsCalls } from './dynamics'
import { featureCalls } from './features'
import { geometryCalls } from './geometry'
import { JobSchema, jobCalls } from './jobs'
import { LabelSchema, labelCalls } from './labels'
import { liveTextCalls } from './live-text'
import { ProjectInfoSchema, projectCalls } from './project'
import { SaeMetricSchema, saeCalls } from './saes'
import { startCalls, startEvents } from './start'
import type { ApiReply } from './errors'

export * from './carry-labels'
export * from './checkpoints'
export * from './dynamics'
export * from './errors'
export * from './features'
export * from './geometry'
export * from './jobs'
export * from './labels'
export * from './live-text'
export * from './project'
export * from './saes'
export * from './start'

/** Every call: its payload schema and its result schema. */
export const apiCalls = {
  ...projectCalls,
  ...checkpointCalls,
  ...saeCalls,
  ...featureCalls,
  ...liveTextCalls,
  ...labelCalls,
  ...carryLabelCalls,
  ...dynamicsCalls,
  ...jobCalls,
  ...geometryCalls,
  ...startCalls
} as const

export type ApiCalls = typeof apiCalls
export type CallName = keyof ApiCalls
export type CallInput<C extends CallName> = z.input<ApiCalls[C]['input']>
export type CallParsedInput<C extends CallName> = z.output<ApiCalls[C]['input']>
export type CallOutput<C extends CallName> = z.output<ApiCalls[C]['output']>

export const apiEvents = {
  'job.updated': JobSchema,
  'checkpoints.changed': z.object({ count: z.number().int() }),
  'project.changed': ProjectInfoSchema.nullable(),
  'sae.metric': SaeMetricSchema,
  'saes.changed': z.object({ count: z.number().int() }),
  'labels.changed': LabelSchema,
  'features.changed': z.object({ sets: z.number().int() }),
  ...startEvents
} as const
export type ApiEvents = typeof apiEvents
export type EventName = keyof ApiEvents
export type EventPayload<E extends EventName> = z.output<ApiEvents[E]>

export function isCallName(name: unknown): name is CallName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(apiCalls, name)
}
export function isEventName(name: unknown): name is EventName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(apiEvents, name)
}

/** The one client interface every view uses: `window.api` in Electron, a WebSocket client in the browser. */
export interface ApiClient {
  call<C extends CallName>(name: C, payload?: CallInput<C>): Promise<CallOutput<C>>
  on<E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): () => void
}

/** What the preload exposes as `window.api`: untyped transport the renderer wraps into an ApiClient. */
export interface PreloadBridge {
  invoke(name: string, payload: unknown): Promise<ApiReply<unknown>>
  subscribe(listener: (event: string, payload: unknown) => void): () => void
}

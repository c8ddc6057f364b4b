// Small schemas every domain of the contract uses.
import { z } from 'zod'

export const pathString = z.string().min(1).max(4096)
export const id = z.object({ id: z.number().int().nonnegative() }).strict()
export const none = z.object({}).strict().optional()
/** A client-made id of one request: a label write applied once after a retry, a query to cancel. */
export const requestId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'must be 8–64 letters, digits, - or _')
/** The compute engines (src/core/tf/backend.ts chooses one and says why). */
export const BACKEND_NAMES = ['tensorflow', 'webgpu', 'ort', 'wasm', 'cpu'] as const
export const backendName = z.enum(BACKEND_NAMES)

/** Any JSON value (a file's contents kept as they are, such as a checkpoint's config.json). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
export const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValue), z.record(z.string(), jsonValue)])
)

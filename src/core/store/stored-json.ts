// JSON read back from the project database is checked against the contract's schema before it is used:
// a row written by another version, or damaged, is named instead of flowing on with the wrong shape.
import type { z } from 'zod'
import { UserError } from '../../shared/api'

/** Parses a stored JSON column with its schema; a mismatch is a UserError naming the row and what is wrong. */
export function storedJson<S extends z.ZodType>(schema: S, text: string, where: string): z.output<S> {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new UserError(`The project database holds invalid JSON in ${where} (${(err as Error).message}); the row is damaged.`)
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    const what = parsed.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.') || 'value'}: ${i.message}`)
      .join('; ')
    throw new UserError(`The project database holds ${where} in a shape this version does not read (${what}); it was written by another version or is damaged.`)
  }
  return parsed.data
}

/** As storedJson, but null (with a warning in the log) where the row does not read: for lists that must still show. */
export function storedJsonOrNull<S extends z.ZodType>(schema: S, text: string | null, where: string): z.output<S> | null {
  if (text === null) return null
  try {
    return storedJson(schema, text, where)
  } catch (err) {
    console.warn(`[featuretrace] ${(err as Error).message}`)
    return null
  }
}

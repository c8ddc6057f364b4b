// Reading a JSON file a user or another program wrote: missing, unreadable, not JSON and the wrong shape are
// four different messages, each naming the file; what reads is checked against a schema before it is used.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import type { z } from 'zod'
import { UserError } from '../../shared/api'

/** Why a file could not be read, for people: "is missing" or the system's reason. */
export function readProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'is missing'
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read (permission denied)'
  if (code === 'EISDIR') return 'is a folder, not a file'
  return `cannot be read (${(err as Error).message})`
}

/**
 * A file that could not be opened, for people: "Missing corpus file F." when it is not there, else what the
 * system said ("corpus file F cannot be read (permission denied)."); never a read error passed off as missing.
 */
export function unreadable(file: string, what: string, err: unknown): UserError {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT' || code === 'ENOTDIR') return new UserError(`Missing ${what} ${file}.`)
  return new UserError(`The ${what} ${file} ${readProblem(err)}.`)
}

/** The issues of a failed parse, in one line: "d_in: expected number; k: …". */
export function schemaIssues(error: z.ZodError, most = 4): string {
  return error.issues
    .slice(0, most)
    .map((i) => `${i.path.length ? i.path.join('.') : 'the whole file'}: ${i.message}`)
    .join('; ')
}

/** Reads and checks a JSON file; `what` says what the file should be ("an SAE folder's cfg.json"). */
export function readJsonFile<S extends z.ZodType>(file: string, schema: S, what: string): z.output<S> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new UserError(`${file} ${readProblem(err)}; expected ${what}.`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${(err as Error).message}); expected ${what}.`)
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) throw new UserError(`${file} is not ${what}: ${schemaIssues(parsed.error)}.`)
  return parsed.data
}

/** Writes a whole file under a temporary name, then renames it into place: a reader sees the old file or the new. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`
  try {
    writeFileSync(tmp, data)
    renameSync(tmp, file)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
}

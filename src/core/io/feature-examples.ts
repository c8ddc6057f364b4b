// Feature-example sets (FORMATS.md): JSON Lines, one feature a line, with example contexts and activations.
import { z } from 'zod'
import { UserError } from '../../shared/api'
import { MAX_LINE_BYTES, readLinesOf } from './lines'

const LineSchema = z.object({
  checkpoint: z.union([z.string(), z.number()]).optional(),
  feature: z.number().int().nonnegative(),
  examples: z.array(
    z.object({ tokens: z.array(z.string()), acts: z.array(z.number().nonnegative()) }).refine((e) => e.tokens.length === e.acts.length, {
      message: 'tokens and acts must have the same length'
    })
  ),
  label: z.string().optional(),
  note: z.string().optional()
})
export type FeatureExampleLine = z.infer<typeof LineSchema>

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Reads a feature-example set line by line, whatever its size; errors name the file and line. */
export function readFeatureExamples(file: string): FeatureExampleLine[] {
  const out: FeatureExampleLine[] = []
  const tooLong = (line: number, bytes: number): UserError =>
    new UserError(
      `${file}, line ${line}: a line of ${(bytes / 2 ** 20).toFixed(0)} MiB or more; one feature's line must stay under ${MAX_LINE_BYTES / 2 ** 20} MiB.`
    )
  readLinesOf(file, 'feature-example file', tooLong, (bytes, n) => {
    let line: string
    try {
      line = utf8.decode(bytes)
    } catch {
      throw new UserError(`${file}, line ${n}: not valid UTF-8.`)
    }
    if (line.trim() === '') return
    let raw: unknown
    try {
      raw = JSON.parse(line)
    } catch (err) {
      throw new UserError(`${file}, line ${n}: not valid JSON (${(err as Error).message}).`)
    }
    const parsed = LineSchema.safeParse(raw)
    if (!parsed.success) {
      throw new UserError(`${file}, line ${n}: ${parsed.error.issues.map((x) => `${x.path.join('.') || 'line'}: ${x.message}`).join('; ')}`)
    }
    out.push(parsed.data)
  })
  if (out.length === 0) throw new UserError(`${file} holds no features.`)
  return out
}

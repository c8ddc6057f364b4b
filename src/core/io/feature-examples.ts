// Feature-example sets (FORMATS.md): JSON Lines, one feature a line, with example contexts and activations.
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { UserError } from '../../shared/api'

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

export function readFeatureExamples(file: string): FeatureExampleLine[] {
  let buf: Buffer
  try {
    buf = readFileSync(file)
  } catch {
    throw new UserError(`Missing feature-example file ${file}.`)
  }
  let text: string
  try {
    text = utf8.decode(buf)
  } catch {
    throw new UserError(`${file} is not valid UTF-8.`)
  }
  const out: FeatureExampleLine[] = []
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return
    let raw: unknown
    try {
      raw = JSON.parse(line)
    } catch (err) {
      throw new UserError(`${file}, line ${i + 1}: not valid JSON (${(err as Error).message}).`)
    }
    const parsed = LineSchema.safeParse(raw)
    if (!parsed.success) {
      throw new UserError(`${file}, line ${i + 1}: ${parsed.error.issues.map((x) => `${x.path.join('.') || 'line'}: ${x.message}`).join('; ')}`)
    }
    out.push(parsed.data)
  })
  if (out.length === 0) throw new UserError(`${file} holds no features.`)
  return out
}

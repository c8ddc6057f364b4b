// Checkpoints known by their SAEs alone (imported for steps whose weights are not on disk): what works on
// them (drift, galaxy geometry, labelling; formation and statistics with activations made elsewhere) and
// the message for what needs the model.
import type { Checkpoint } from '../../shared/api'
import { UserError } from '../../shared/api'

export function isSaeOnly(c: Pick<Checkpoint, 'path'>): boolean {
  return c.path === null
}

/**
 * The refusal of work that needs a model's weights on SAE-only checkpoints: names the steps, what needs the
 * model, and what to do (register the folders; `instead` says what works without them).
 */
export function saeOnlyRefusal(steps: number[], work: string, instead?: string): UserError {
  const which = steps.length === 1 ? `Step ${steps[0]} is an SAE-only checkpoint` : `Steps ${steps.join(', ')} are SAE-only checkpoints`
  return new UserError(
    `${which} (imported SAEs, no weights registered): ${work} needs the model. Register the checkpoint folder${steps.length === 1 ? '' : 's'} with ` +
      `\`featuretrace checkpoints add FOLDER\` (the SAE-only entr${steps.length === 1 ? 'y takes' : 'ies take'} the weights)${instead ? `, or ${instead}` : ''}.`
  )
}

// The contract of live text: a researcher's own text run through a feature set's checkpoint and SAE, every
// token's activation of the feature shown and the features firing most at each token.
import { z } from 'zod'
import { requestId } from './schema'

/** Most tokens one live-text request runs (BOS not counted); longer texts are refused with a message. */
export const LIVE_TEXT_MAX_TOKENS = 512
/** Features listed per token, largest activation first (only those that fire). */
export const LIVE_TEXT_TOP_FEATURES = 10
/** Most characters the text may have before it is tokenised (a paste of a whole book is refused at once). */
export const LIVE_TEXT_MAX_CHARS = 20_000

export const LiveTextStatusSchema = z.object({
  setId: z.number().int(),
  /** Whether live text can run on this set: an SAE of this project on a checkpoint whose weights FeatureTrace runs. */
  available: z.boolean(),
  /** Why not, in words for the user (what it needs and what to do); null when available. */
  reason: z.string().nullable(),
  step: z.number().int().nullable(),
  layer: z.number().int().nullable(),
  /** Tokens per window of the harvest the SAE's features were computed on, when recorded. */
  harvestContext: z.number().int().nullable(),
  /** Most tokens a request may have: LIVE_TEXT_MAX_TOKENS, or the model's positions when fewer (a BOS takes one of them). */
  maxTokens: z.number().int()
})
export type LiveTextStatus = z.infer<typeof LiveTextStatusSchema>

export const LiveFeatureSchema = z.object({ feature: z.number().int(), act: z.number() })
export type LiveFeature = z.infer<typeof LiveFeatureSchema>

export const LiveTextResultSchema = z.object({
  setId: z.number().int(),
  feature: z.number().int(),
  step: z.number().int(),
  layer: z.number().int(),
  architecture: z.enum(['topk', 'jumprelu', 'standard']),
  /** The model's token strings of the text (a BOS run in front is not listed; an EOS the tokenizer appends is). */
  tokens: z.array(z.string()),
  ids: z.array(z.number().int()),
  /** The feature's activation at each token (0 where it does not fire). */
  acts: z.array(z.number()),
  /** At each token, the features that fire, largest first, at most LIVE_TEXT_TOP_FEATURES. */
  top: z.array(z.array(LiveFeatureSchema)),
  /** Whether a BOS token was run before the text (the tokenizer's rule, as a harvest does). */
  bos: z.boolean(),
  /** Whether the checkpoint's model was already loaded in the analysis process (false: this request loaded it). */
  modelCached: z.boolean(),
  /** Milliseconds the analysis process spent on the request (loading, forward pass, encoding). */
  ms: z.number()
})
export type LiveTextResult = z.infer<typeof LiveTextResultSchema>

const setInput = { setId: z.number().int().nonnegative() }

export const liveTextCalls = {
  /** Whether live text can run on a feature set, and why not (host side: the project's records only). */
  'liveText.status': { input: z.object(setInput).strict(), output: LiveTextStatusSchema },
  /**
   * The feature's activation on every token of `text`: tokenised as a harvest tokenises, the checkpoint's forward
   * pass to the SAE's layer and the SAE's own encoding rule, in the analysis process (the model stays loaded
   * between requests). Refuses texts over LIVE_TEXT_MAX_TOKENS tokens.
   */
  'liveText.run': {
    input: z
      .object({
        ...setInput,
        feature: z.number().int().nonnegative(),
        text: z.string().min(1, 'type some text first').max(LIVE_TEXT_MAX_CHARS),
        requestId: requestId.optional()
      })
      .strict(),
    output: LiveTextResultSchema
  }
} as const

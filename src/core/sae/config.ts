// Everything that defines a TopK SAE training run, and the presets of METHODS.md.
import { z } from 'zod'
import { UserError } from '../../shared/api'

export const INPUT_SCALINGS = ['none', 'unit_norm', 'layer_norm', 'constant'] as const
export type InputScaling = (typeof INPUT_SCALINGS)[number]
export const PRESETS = ['inaba2025', 'sae-track', 'gao2024'] as const
export type PresetName = (typeof PRESETS)[number]

export const TrainConfigSchema = z.object({
  /** Latents. */
  n: z.number().int().positive(),
  k: z.number().int().positive(),
  inputScaling: z.enum(INPUT_SCALINGS),
  bDecInit: z.enum(['geometric_median', 'mean', 'zeros']),
  lr: z.number().positive(),
  /** Linear warm-up steps from 0 to lr, then constant. */
  warmupSteps: z.number().int().nonnegative(),
  adamBeta1: z.number().min(0).max(1),
  adamBeta2: z.number().min(0).max(1),
  adamEps: z.number().positive(),
  /** Tokens per step. */
  batchSize: z.number().int().positive(),
  /** Training tokens; null = one pass over the training rows. */
  tokens: z.number().int().positive().nullable(),
  /** Renormalise decoder rows to unit norm after every step. */
  decoderUnitNorm: z.boolean(),
  /** Remove the gradient component parallel to each decoder row before the step (Gao et al.). */
  removeParallelGrad: z.boolean(),
  /** AuxK for dead latents: 0 turns it off. */
  auxK: z.number().int().nonnegative(),
  auxAlpha: z.number().nonnegative(),
  /** A latent that has not fired for this many tokens is dead (AuxK and the dead fraction). */
  deadAfterTokens: z.number().int().positive(),
  /** Training metrics every this many steps. */
  logEvery: z.number().int().positive(),
  /** Full training state saved every this many steps (and on cancel). */
  checkpointEvery: z.number().int().positive(),
  /** Held-out rows for the final evaluation (taken out of training). */
  evalRows: z.number().int().nonnegative(),
  seed: z.number().int()
})
export type TrainConfig = z.infer<typeof TrainConfigSchema>

export interface PresetInfo {
  name: PresetName
  description: string
  /** n as a multiple of d when not given. */
  expansion: number
  config: Omit<TrainConfig, 'n' | 'seed' | 'evalRows' | 'logEvery' | 'checkpointEvery'>
  /** For warm-started SAEs of a series (sae-track): what changes after the first. */
  fineTune?: { lrFactor: number; warmupSteps: number; tokenFraction: number }
}

const inaba: PresetInfo['config'] = {
  k: 32,
  inputScaling: 'unit_norm',
  bDecInit: 'geometric_median',
  lr: 1e-3,
  warmupSteps: 1000,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEps: 6.25e-10,
  batchSize: 32768,
  tokens: 132_000_000,
  decoderUnitNorm: true,
  removeParallelGrad: false,
  auxK: 0,
  auxAlpha: 0,
  deadAfterTokens: 10_000_000
}

export const PRESET_INFO: Record<PresetName, PresetInfo> = {
  inaba2025: {
    name: 'inaba2025',
    description: 'Inaba et al. 2025: unit-norm inputs, n = 16d, k = 32, FVU loss, Adam 1e-3, 1,000 warm-up steps, geometric-median b_dec',
    expansion: 16,
    config: inaba
  },
  'sae-track': {
    name: 'sae-track',
    description: 'SAE-Track warm-start series: first SAE as inaba2025, each next one from the previous at lr ×0.1, 3 warm-up steps, 5% of the tokens',
    expansion: 16,
    config: inaba,
    fineTune: { lrFactor: 0.1, warmupSteps: 3, tokenFraction: 0.05 }
  },
  gao2024: {
    name: 'gao2024',
    description:
      'Gao et al. 2024: per-token layer-norm inputs, AuxK (α = 1/32, k_aux = 512, dead after 10M tokens), parallel gradient removed, lr 2e-4/√(n/2^14)',
    expansion: 16,
    config: {
      ...inaba,
      inputScaling: 'layer_norm',
      lr: 2e-4, // scaled by n below
      batchSize: 4096,
      tokens: null,
      removeParallelGrad: true,
      auxK: 512,
      auxAlpha: 1 / 32
    }
  }
}

/** Gao et al.'s learning-rate rule: 2e-4 at n = 2^14, scaled by 1/√(n / 2^14). */
export function gaoLearningRate(n: number): number {
  return 2e-4 / Math.sqrt(n / 2 ** 14)
}

export type TrainOverrides = Partial<TrainConfig>

/** A preset with the user's overrides; every option can override a preset. */
export function resolveConfig(preset: PresetName, d: number, overrides: TrainOverrides = {}): TrainConfig {
  const info = PRESET_INFO[preset]
  if (!info) throw new UserError(`Unknown preset "${preset}"; choose one of ${PRESETS.join(', ')}.`)
  const n = overrides.n ?? info.expansion * d
  const base: TrainConfig = {
    ...info.config,
    n,
    lr: preset === 'gao2024' ? gaoLearningRate(n) : info.config.lr,
    seed: 0,
    evalRows: 8192,
    logEvery: 10,
    checkpointEvery: 500
  }
  const merged = { ...base, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) }
  const parsed = TrainConfigSchema.safeParse(merged)
  if (!parsed.success) throw new UserError(`Invalid SAE settings: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  const cfg = parsed.data
  if (cfg.k > cfg.n) throw new UserError(`k = ${cfg.k} is larger than the number of latents n = ${cfg.n}; choose k ≤ n.`)
  if (cfg.auxK > cfg.n) cfg.auxK = cfg.n
  return cfg
}

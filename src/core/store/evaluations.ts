// SAE evaluations by splicing (sae/evaluate.ts): the latest of each SAE, read with its checkpoint's step.
import type { SaeEvaluation } from '../../shared/api'
import type { Db } from './database'
import type { ProjectPaths } from './paths'

/** An evaluation to record: everything but what the SAE's row gives (checkpoint, step, layer) and the time. */
export type NewSaeEvaluation = Omit<SaeEvaluation, 'checkpointId' | 'step' | 'layer' | 'createdAt'>

const SELECT = `SELECT e.sae_id AS saeId, s.checkpoint_id AS checkpointId, c.step AS step, s.layer AS layer, e.ce_clean AS ceClean,
    e.ce_spliced AS ceSpliced, e.ce_zero AS ceZero, e.loss_recovered AS lossRecovered, e.kl AS kl, e.fvu AS fvu,
    e.explained_variance AS explainedVariance, e.l0 AS l0, e.tokens AS tokens, e.positions AS positions, e.windows AS windows,
    e.corpus AS corpus, e.context AS context, e.max_tokens AS maxTokens, e.seed AS seed, e.backend AS backend, e.created_at AS createdAt
  FROM sae_evaluation e JOIN sae s ON s.id = e.sae_id JOIN checkpoint c ON c.id = s.checkpoint_id`

export class SaeEvaluationRepository {
  constructor(
    private readonly db: Db,
    private readonly paths: ProjectPaths
  ) {}

  /** Records an SAE's evaluation, replacing its previous one. */
  put(e: NewSaeEvaluation): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO sae_evaluation (sae_id, ce_clean, ce_spliced, ce_zero, loss_recovered, kl, fvu, explained_variance, l0, tokens,
           positions, windows, corpus, context, max_tokens, seed, backend, created_at)
         VALUES (@saeId, @ceClean, @ceSpliced, @ceZero, @lossRecovered, @kl, @fvu, @explainedVariance, @l0, @tokens, @positions, @windows,
           @corpus, @context, @maxTokens, @seed, @backend, @createdAt)`
      )
      .run({ ...e, corpus: this.paths.toStored(e.corpus), createdAt: new Date().toISOString() })
  }

  /** The evaluations of the current SAEs (of one layer when given), by layer and step. */
  list(layer?: number): SaeEvaluation[] {
    const where = layer === undefined ? '' : 'AND s.layer = ?'
    const rows = this.db
      .prepare(`${SELECT} WHERE s.superseded_at IS NULL ${where} ORDER BY s.layer, c.step`)
      .all(...(layer === undefined ? [] : [layer])) as SaeEvaluation[]
    return rows.map((r) => ({ ...r, corpus: this.paths.resolve(r.corpus) }))
  }
}

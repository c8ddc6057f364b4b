import type { Checkpoint, CheckpointDetail, SameWeights, VerifyReport } from '../../shared/api'
import { CheckpointDetailSchema, CheckpointSchema, UserError, VerifyReportSchema } from '../../shared/api'
import { storedJson } from './stored-json'
import type { FoundCheckpoint } from '../checkpoints/discover'
import { sameWeightsAs } from '../checkpoints/same-weights'
import { ActivationStoreRepository } from './activations'
import type { Db } from './database'
import type { ProjectPaths } from './paths'

interface CheckpointRow {
  id: number
  step: number
  name: string
  path: string | null
  model_type: string
  supported: number
  d_model: number
  layers: number | null
  heads: number | null
  vocab_size: number | null
  tokens_seen: number | null
  weights_bytes: number | null
  config_json: string
  verify_status: Checkpoint['verifyStatus']
  verify_report_json: string | null
  registered_at: string
}

function toCheckpoint(r: CheckpointRow & { activations_json?: string | null }, paths: ProjectPaths): Checkpoint {
  return {
    id: r.id,
    step: r.step,
    name: r.name,
    path: r.path === null ? null : paths.resolve(r.path),
    modelType: r.model_type,
    supported: r.supported === 1,
    dModel: r.d_model,
    layers: r.layers,
    heads: r.heads,
    vocabSize: r.vocab_size,
    tokensSeen: r.tokens_seen,
    weightsBytes: r.weights_bytes,
    verifyStatus: r.verify_status,
    registeredAt: r.registered_at,
    activations: r.activations_json ? storedJson(CheckpointSchema.shape.activations, r.activations_json, `the activation stores of checkpoint ${r.id}`) : []
  }
}

/** Each checkpoint with its activation stores folded in as JSON. */
const WITH_STORES = `SELECT c.*, (SELECT json_group_array(json_object('layer', s.layer, 'rows', s.rows))
  FROM (SELECT layer, rows FROM activation_store WHERE checkpoint_id = c.id ORDER BY layer) s) AS activations_json
  FROM checkpoint c`

export class CheckpointRepository {
  constructor(
    private readonly db: Db,
    private readonly paths: ProjectPaths
  ) {}

  list(): Checkpoint[] {
    return (this.db.prepare(`${WITH_STORES} ORDER BY c.step`).all() as CheckpointRow[]).map((r) => toCheckpoint(r, this.paths))
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM checkpoint').get() as { n: number }).n
  }

  private row(id: number): CheckpointRow {
    const r = this.db.prepare(`${WITH_STORES} WHERE c.id = ?`).get(id) as CheckpointRow | undefined
    if (!r) throw new UserError(`No checkpoint with id ${id} in this project.`, 'not-found')
    return r
  }

  get(id: number): Checkpoint {
    return toCheckpoint(this.row(id), this.paths)
  }

  detail(id: number): CheckpointDetail {
    const r = this.row(id)
    return {
      ...toCheckpoint(r, this.paths),
      config: storedJson(CheckpointDetailSchema.shape.config, r.config_json, `the config.json of checkpoint ${id}`),
      verifyReport: r.verify_report_json ? storedJson(VerifyReportSchema, r.verify_report_json, `the verification report of checkpoint ${id}`) : null,
      sameWeights: this.sameWeights(id),
      stores: new ActivationStoreRepository(this.db, this.paths).forCheckpoint(id)
    }
  }

  /**
   * A checkpoint known by its SAEs alone (no weights on disk): step and width, path and layers NULL. Its
   * folder can be registered later (addAll fills it in).
   */
  addWeightless(step: number, dModel: number, source: Record<string, unknown>): Checkpoint {
    const info = this.db
      .prepare(
        `INSERT INTO checkpoint (step, name, path, model_type, supported, d_model, layers, config_json, registered_at)
         VALUES (?, ?, NULL, 'unknown', 0, ?, NULL, ?, ?)`
      )
      .run(step, `step${step}`, dModel, JSON.stringify({ sae_only: true, ...source }), new Date().toISOString())
    return this.get(Number(info.lastInsertRowid))
  }

  /** Adds what is new; a folder or step already registered is reported as skipped, never duplicated. */
  addAll(found: FoundCheckpoint[], tokensPerStep: number | undefined): { added: Checkpoint[]; skipped: { path: string; reason: string }[] } {
    const byPath = this.db.prepare('SELECT id FROM checkpoint WHERE path = ?')
    const byStep = this.db.prepare('SELECT id, path, d_model FROM checkpoint WHERE step = ?')
    const fill = this.db.prepare(`UPDATE checkpoint SET name = @name, path = @path, model_type = @modelType, supported = @supported, layers = @layers,
      heads = @heads, vocab_size = @vocabSize, tokens_seen = coalesce(@tokensSeen, tokens_seen), weights_bytes = @weightsBytes, config_json = @configJson
      WHERE id = @id`)
    const insert = this.db.prepare(`INSERT INTO checkpoint
      (step, name, path, model_type, supported, d_model, layers, heads, vocab_size, tokens_seen,
       weights_bytes, config_json, registered_at)
      VALUES (@step, @name, @path, @modelType, @supported, @dModel, @layers, @heads, @vocabSize,
       @tokensSeen, @weightsBytes, @configJson, @registeredAt)`)
    const added: Checkpoint[] = []
    const skipped: { path: string; reason: string }[] = []
    this.db.transaction(() => {
      for (const f of found) {
        const stored = this.paths.toStored(f.path)
        if (byPath.get(stored)) {
          skipped.push({ path: f.path, reason: 'already registered' })
          continue
        }
        const clash = byStep.get(f.step) as { id: number; path: string | null; d_model: number } | undefined
        if (clash && clash.path === null) {
          // An SAE-only checkpoint gets its weights: same step, and the width its SAEs were checked against.
          if (clash.d_model !== f.config.dModel) {
            skipped.push({
              path: f.path,
              reason: `step ${f.step} is an SAE-only checkpoint whose SAEs read d=${clash.d_model}, but this folder has d_model=${f.config.dModel}`
            })
            continue
          }
          fill.run({
            id: clash.id,
            name: f.name,
            path: stored,
            modelType: f.config.modelType,
            supported: f.config.supported ? 1 : 0,
            layers: f.config.layers,
            heads: f.config.heads,
            vocabSize: f.config.vocabSize,
            tokensSeen: tokensPerStep === undefined ? null : f.step * tokensPerStep,
            weightsBytes: f.weightsBytes,
            configJson: JSON.stringify(f.config.raw)
          })
          added.push(this.get(clash.id))
          continue
        }
        if (clash) {
          skipped.push({
            path: f.path,
            reason: `step ${f.step} is already registered from ${clash.path === null ? 'its SAEs' : this.paths.resolve(clash.path)}`
          })
          continue
        }
        const info = insert.run({
          step: f.step,
          name: f.name,
          path: stored,
          modelType: f.config.modelType,
          supported: f.config.supported ? 1 : 0,
          dModel: f.config.dModel,
          layers: f.config.layers,
          heads: f.config.heads,
          vocabSize: f.config.vocabSize,
          tokensSeen: tokensPerStep === undefined ? null : f.step * tokensPerStep,
          weightsBytes: f.weightsBytes,
          configJson: this.paths.storedJson(f.config.raw),
          registeredAt: new Date().toISOString()
        })
        added.push(this.get(Number(info.lastInsertRowid)))
      }
    })()
    return { added, skipped }
  }

  update(id: number, change: { step?: number | undefined; tokensSeen?: number | null | undefined }): Checkpoint {
    const current = this.get(id)
    if (change.step !== undefined && change.step !== current.step) {
      const clash = this.db.prepare('SELECT name FROM checkpoint WHERE step = ? AND id != ?').get(change.step, id) as { name: string } | undefined
      if (clash) throw new UserError(`Step ${change.step} already belongs to checkpoint ${clash.name}.`)
      this.db.prepare('UPDATE checkpoint SET step = ? WHERE id = ?').run(change.step, id)
    }
    if (change.tokensSeen !== undefined) {
      this.db.prepare('UPDATE checkpoint SET tokens_seen = ? WHERE id = ?').run(change.tokensSeen, id)
    }
    return this.get(id)
  }

  /** Points a checkpoint at its folder's new place (relocation checks the folder first). */
  setPath(id: number, path: string): void {
    this.db.prepare('UPDATE checkpoint SET path = ? WHERE id = ?').run(this.paths.toStored(path), id)
  }

  /** Verified checkpoints holding this one's tensors byte for byte (by the content hashes of their verify reports). */
  sameWeights(id: number): SameWeights[] {
    const rows = this.db.prepare('SELECT id, step, verify_report_json FROM checkpoint WHERE verify_report_json IS NOT NULL').all() as {
      id: number
      step: number
      verify_report_json: string
    }[]
    const verified = rows.map((r) => ({
      checkpointId: r.id,
      step: r.step,
      tensors: storedJson(VerifyReportSchema, r.verify_report_json, `the verification report of checkpoint ${r.id}`).tensors ?? []
    }))
    const one = verified.find((v) => v.checkpointId === id)
    return one ? sameWeightsAs(one, verified) : []
  }

  saveVerifyReport(report: VerifyReport): void {
    this.db
      .prepare('UPDATE checkpoint SET verify_status = ?, verify_report_json = ? WHERE id = ?')
      .run(report.ok ? 'ok' : 'problems', this.paths.storedJson(report), report.checkpointId)
  }
}

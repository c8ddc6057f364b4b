// The verify-checkpoints job: reads every weight file of each checkpoint once, checks its safetensors
// header against the file and hashes it, so a truncated download is caught before a long harvest.
import { createHash } from 'node:crypto'
import { createReadStream, existsSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { JobRequest, VerifyReport } from '../../shared/api'
import { UserError } from '../../shared/api'
import { readSafetensorsHeader } from '../io/safetensors'
import { JobCancelled, type JobContext, type JobKindDefinition } from '../jobs/job'
import { ProgressMeter } from '../jobs/progress'
import type { Project } from '../project'
import { readCheckpointConfig, weightFiles } from './discover'
import { parseModelConfig, type ModelType } from '../lm/model-config'
import { isSaeOnly, saeOnlyRefusal } from './sae-only'

type VerifyRequest = Extract<JobRequest, { kind: 'verify-checkpoints' }>
interface VerifyInput {
  checkpoints: { id: number; path: string; name: string }[]
}
interface VerifyOutput {
  reports: VerifyReport[]
}

async function hashFile(file: string, signal: AbortSignal, onBytes: (n: number) => void): Promise<string> {
  const hash = createHash('sha256')
  const stream = createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })
  const abort = (): void => void stream.destroy(new JobCancelled())
  signal.addEventListener('abort', abort, { once: true })
  try {
    for await (const chunk of stream) {
      hash.update(chunk as Buffer)
      onBytes((chunk as Buffer).length)
    }
  } finally {
    signal.removeEventListener('abort', abort)
  }
  if (signal.aborted) throw new JobCancelled()
  return hash.digest('hex')
}

async function verifyOne(c: VerifyInput['checkpoints'][number], ctx: JobContext, onBytes: (n: number) => void): Promise<VerifyReport> {
  const problems: string[] = []
  const files: VerifyReport['files'] = []
  try {
    // An architecture FeatureTrace runs is read through its key table here too, so a refused key shows before a harvest.
    const config = readCheckpointConfig(c.path)
    if (config.supported) parseModelConfig(config.modelType as ModelType, config.raw, join(c.path, 'config.json'))
  } catch (err) {
    if (!(err instanceof UserError)) throw err
    problems.push(err.message)
  }
  let weights: string[] = []
  try {
    weights = weightFiles(c.path)
  } catch (err) {
    problems.push((err as Error).message)
  }
  if (weights.length === 0 && problems.length === 0) {
    problems.push(
      `No model.safetensors or model.safetensors.index.json in ${c.path}. FeatureTrace reads safetensors only: ` +
        'load the model in Python and call save_pretrained(folder, safe_serialization=True).'
    )
  }
  for (const file of weights) {
    if (!existsSync(file)) {
      problems.push(`Missing weight shard ${file} named by the index.`)
      continue
    }
    const bytes = statSync(file).size
    let tensors: number | null = null
    try {
      tensors = (await readSafetensorsHeader(file)).tensors.size
    } catch (err) {
      if (!(err instanceof UserError)) throw err
      problems.push(err.message)
    }
    const sha256 = await hashFile(file, ctx.signal, onBytes)
    files.push({ file: basename(file), bytes, sha256, tensors })
  }
  return { checkpointId: c.id, ok: problems.length === 0, files, problems }
}

export const verifyCheckpointsJob: JobKindDefinition<VerifyRequest, VerifyInput, VerifyOutput> = {
  kind: 'verify-checkpoints',
  prepare(project: Project, request: VerifyRequest): VerifyInput {
    const all = project.checkpoints.list()
    const wanted = request.checkpointIds.length ? new Set(request.checkpointIds) : null
    // Unasked, SAE-only checkpoints are left out: they have no files to verify.
    const chosen = wanted ? all.filter((c) => wanted.has(c.id)) : all.filter((c) => !isSaeOnly(c))
    if (wanted && chosen.length !== wanted.size) {
      const missing = [...wanted].filter((id) => !all.some((c) => c.id === id))
      throw new UserError(`No checkpoint with id ${missing.join(', ')} in this project.`, 'not-found')
    }
    const weightless = chosen.filter(isSaeOnly)
    if (weightless.length)
      throw saeOnlyRefusal(
        weightless.map((c) => c.step),
        'verifying weight files'
      )
    if (chosen.length === 0)
      throw new UserError(
        all.length
          ? 'There are no checkpoints with weights to verify: every registered checkpoint is SAE-only.'
          : 'There are no checkpoints to verify; register some first.'
      )
    return { checkpoints: chosen.map((c) => ({ id: c.id, path: c.path!, name: c.name })) }
  },
  async run(input: VerifyInput, ctx: JobContext): Promise<VerifyOutput> {
    const totalBytes = input.checkpoints.reduce((sum, c) => {
      try {
        return (
          sum +
          weightFiles(c.path)
            .filter(existsSync)
            .reduce((s, f) => s + statSync(f).size, 0)
        )
      } catch {
        // Only the progress total: verifying this checkpoint below reports what cannot be read.
        return sum
      }
    }, 0)
    const meter = new ProgressMeter(totalBytes, 'B')
    let done = 0
    const reports: VerifyReport[] = []
    for (const [i, c] of input.checkpoints.entries()) {
      const label = `checkpoint ${i + 1}/${input.checkpoints.length}: ${c.name}`
      ctx.progress(meter.update(done, label))
      reports.push(
        await verifyOne(c, ctx, (n) => {
          done += n
          ctx.progress(meter.update(done, label))
        })
      )
    }
    return { reports }
  },
  apply(project: Project, output: VerifyOutput) {
    for (const report of output.reports) project.checkpoints.saveVerifyReport(report)
    const bad = output.reports.filter((r) => !r.ok).length
    return { checked: output.reports.length, 'with problems': bad }
  }
}

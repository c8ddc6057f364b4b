// The verify-checkpoints job: reads every weight file of each checkpoint once, checks its safetensors
// header against the file and hashes it, so a truncated download is caught before a long harvest; hashes each
// tensor's content too, so a step serving another step's weights is caught (same-weights.ts).
import { createHash } from 'node:crypto'
import { createReadStream, existsSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { JobRequest, TensorDigest, VerifyReport } from '../../shared/api'
import { UserError } from '../../shared/api'
import { readSafetensorsHeader, type SafetensorsHeader } from '../io/safetensors'
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

/**
 * One pass over a weight file: the sha256 of the whole file, and with a readable header a content hash per
 * tensor, sha256 over `dtype`, `shape` (JSON) and the tensor's raw little-endian bytes, fed in the file's
 * chunks (`chunkBytes`, 4 MiB) so no tensor is held in memory. The per-tensor hash ignores the header's order,
 * metadata and the shard a tensor sits in, so a re-saved copy of the same weights hashes the same. `header`
 * null (unreadable): the file hash alone. Throws JobCancelled when `signal` aborts.
 */
export async function hashWeightFile(
  file: string,
  header: SafetensorsHeader | null,
  signal: AbortSignal,
  onBytes: (n: number) => void,
  chunkBytes = 4 * 1024 * 1024
): Promise<{ sha256: string; tensors: TensorDigest[] }> {
  const hash = createHash('sha256')
  const ranges = [...(header?.tensors.values() ?? [])]
    .sort((a, b) => a.begin - b.begin || a.end - b.end)
    .map((t) => ({ t, hash: createHash('sha256').update(`${t.dtype}|${JSON.stringify(t.shape)}|`) }))
  let next = 0
  let pos = 0
  const stream = createReadStream(file, { highWaterMark: chunkBytes })
  const abort = (): void => void stream.destroy(new JobCancelled())
  signal.addEventListener('abort', abort, { once: true })
  try {
    for await (const chunk of stream) {
      const buf = chunk as Buffer
      hash.update(buf)
      const end = pos + buf.length
      // Feed each tensor whose byte range meets this chunk; ranges are sorted and do not overlap (checked with the header).
      for (let r = next; r < ranges.length && ranges[r]!.t.begin < end; r++) {
        const { t, hash: h } = ranges[r]!
        const a = Math.max(t.begin, pos)
        const b = Math.min(t.end, end)
        if (b > a) h.update(buf.subarray(a - pos, b - pos))
        if (t.end <= end) next = r + 1
      }
      pos = end
      onBytes(buf.length)
    }
  } finally {
    signal.removeEventListener('abort', abort)
  }
  if (signal.aborted) throw new JobCancelled()
  return {
    sha256: hash.digest('hex'),
    tensors: ranges.map(({ t, hash: h }) => ({ name: t.name, dtype: t.dtype, shape: t.shape, sha256: h.digest('hex') }))
  }
}

async function verifyOne(c: VerifyInput['checkpoints'][number], ctx: JobContext, onBytes: (n: number) => void): Promise<VerifyReport> {
  const problems: string[] = []
  const files: VerifyReport['files'] = []
  const tensors: TensorDigest[] = []
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
    let header: SafetensorsHeader | null = null
    try {
      header = await readSafetensorsHeader(file)
    } catch (err) {
      if (!(err instanceof UserError)) throw err
      problems.push(err.message)
    }
    const hashed = await hashWeightFile(file, header, ctx.signal, onBytes)
    files.push({ file: basename(file), bytes, sha256: hashed.sha256, tensors: header ? header.tensors.size : null })
    tensors.push(...hashed.tensors)
  }
  return { checkpointId: c.id, ok: problems.length === 0, files, problems, tensors }
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
    // Against every verified checkpoint, not only this job's: one re-verified step can equal one verified earlier.
    const same = output.reports.filter((r) => project.checkpoints.sameWeights(r.checkpointId).some((s) => s.kind === 'all')).length
    return { checked: output.reports.length, 'with problems': bad, 'same weights as another step': same }
  }
}

// The SAE import as a job: the worker reads, checks and converts every SAE found (the heavy part: whole weight
// files) into temporary folders, with progress and cancel; the host moves them into place and registers them.
// It lives here, not in sae/, while sae/ is being reworked into one Sae; it belongs beside sae/import.ts.
import type { JobRequestOf } from '../../shared/api'
import { commitSaeImport, type StagedSae } from '../sae/import'
import { rmSync } from 'node:fs'
import { JobCancelled, type JobKindDefinition } from './job'

type ImportRequest = JobRequestOf<'sae-import'>

interface ImportInput {
  request: ImportRequest
  projectPath: string
}

export const saeImportJob: JobKindDefinition<ImportRequest, ImportInput, { staged: StagedSae[] }> = {
  kind: 'sae-import',
  prepare(project, request) {
    return { request, projectPath: project.path }
  },
  async run(input, ctx) {
    const { stageSaeImport } = await import('../sae/import')
    const { Project } = await import('../project')
    // The worker reads the project (which checkpoints and SAEs exist) but writes nothing to it.
    const project = Project.open(input.projectPath)
    try {
      const staged = await stageSaeImport(project, input.request, ctx)
      // Cancelled while the last one was written: what was staged goes, nothing is imported.
      if (ctx.signal.aborted) {
        for (const s of staged) rmSync(s.tmp, { recursive: true, force: true })
        throw new JobCancelled()
      }
      return { staged }
    } finally {
      project.close()
    }
  },
  apply(project, output) {
    const infos = commitSaeImport(project, output.staged)
    return { imported: infos.length, steps: [...new Set(infos.map((s) => s.step))].sort((a, b) => a - b), saeIds: infos.map((s) => s.id) }
  },
  announce(project) {
    // An import can make SAE-only checkpoints too.
    return [
      { event: 'saes.changed', payload: { count: project.saes.count() } },
      { event: 'checkpoints.changed', payload: { count: project.checkpoints.count() } }
    ]
  }
}

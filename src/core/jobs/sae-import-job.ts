// The SAE import as a job: the worker reads, checks and converts every SAE found (the heavy part: whole weight
// files) into temporary folders, with progress and cancel; the host moves them into place and registers them.
// It lives here, not in sae/, while sae/ is being reworked into one Sae; it belongs beside sae/import.ts.
import type { JobRequestOf } from '../../shared/api'
import { commitSaeImport, type StagedSae } from '../sae/import'
import type { JobKindDefinition } from './job'

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
      return { staged: await stageSaeImport(project, input.request, ctx) }
    } finally {
      project.close()
    }
  },
  apply(project, output) {
    const infos = commitSaeImport(project, output.staged)
    return { imported: infos.length, steps: [...new Set(infos.map((s) => s.step))].sort((a, b) => a - b), saeIds: infos.map((s) => s.id) }
  }
}

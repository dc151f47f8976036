#!/usr/bin/env node
// Thin launcher: the CLI lives in src/cli (built to dist/ by `npm run build`, which `npm ci` runs via `prepare`).
import { main } from '../dist/cli/main.js'

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code
  },
  (err) => {
    process.stderr.write(`turnout: ${err?.stack ?? err}\n`)
    process.exitCode = 1
  },
)

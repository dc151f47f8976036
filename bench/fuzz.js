#!/usr/bin/env node
// Differential fuzz, long run: random valid requests straight to an echo upstream and through Turnout
// (in-process, from dist/), differences classified against bench/lib/fuzz/known.js.
//   npm run build && node bench/fuzz.js --requests 100000 [--seed N] [--concurrency 8]
// Exit code: 0 when every difference is a known class, 1 when a new class showed up, 2 on bad usage.
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { formatReport, runFuzz, unexplained } from './lib/fuzz/index.js'
import { ROOT } from './lib/targets.js'

const HELP = `usage: node bench/fuzz.js [--requests N] [--seed N] [--concurrency N] [--timeout-ms N] [--session K]

  --requests N      requests to send (default 100000)
  --seed N          PRNG seed (default: random; FUZZ_SEED also sets it)
  --concurrency N   sessions in flight (default 8)
  --timeout-ms N    deadline for each answer (default 15000)
  --session K[,K]   replay only these sessions of --seed (from a report's example) and print each
                    request, both upstream views, both client answers and every difference
`

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      requests: { type: 'string', default: '100000' },
      seed: { type: 'string', default: process.env.FUZZ_SEED },
      concurrency: { type: 'string', default: '8' },
      'timeout-ms': { type: 'string', default: '15000' },
      session: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) {
    process.stdout.write(HELP)
    process.exit(0)
  }
  const int = (name, v, min) => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${v}`)
    return n
  }
  return {
    requests: int('requests', values.requests, 1),
    seed: values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : int('seed', values.seed, 0),
    concurrency: int('concurrency', values.concurrency, 1),
    timeoutMs: int('timeout-ms', values['timeout-ms'], 1),
    sessions:
      values.session === undefined ? undefined : values.session.split(',').map((k) => int('session', k, 0)),
  }
}

async function startTurnoutFromDist(upstreamUrl) {
  const dist = path.join(ROOT, 'dist')
  if (!fs.existsSync(path.join(dist, 'app.js'))) throw new Error('dist/ missing: run npm run build first')
  const { startTurnout } = await import(path.join(dist, 'app.js'))
  const { parseConfig } = await import(path.join(dist, 'config', 'load.js'))
  const { pino } = await import('pino')
  const config = {
    listen: '127.0.0.1:0',
    admin: { listen: '127.0.0.1:0' },
    accessLog: { enabled: false },
    routes: [{ name: 'fuzz', primary: { endpoints: [upstreamUrl] } }],
  }
  const turnout = await startTurnout({
    config: parseConfig(JSON.stringify(config), 'bench/fuzz.js'),
    logger: pino({ level: 'silent' }),
    watch: false,
  })
  return { url: turnout.url, close: () => turnout.close() }
}

function printExchange(ex, atoms) {
  const latin1 = (b) => JSON.stringify(b.toString('latin1'))
  const view = (r) => (r === undefined ? 'nothing' : JSON.stringify({ ...r, body: `${r.body.length} bytes` }))
  const answer = (r) =>
    r.error ? `error: ${r.error}` : JSON.stringify({ ...r.answer, body: `${r.answer.body.length} bytes` })
  const out = [
    `\n=== x-fuzz-id ${ex.req.id}`,
    `request: ${latin1(ex.req.bytes)}`,
    `upstream, direct:  ${view(ex.direct.records?.[0])}`,
    `upstream, proxied: ${view(ex.proxy.records?.[0])}`,
    `client, direct:    ${answer(ex.direct.result)}`,
    `client, proxied:   ${answer(ex.proxy.result)}`,
    ...atoms.map((a) => `  [${a.class}] ${JSON.stringify({ ...a, class: undefined })}`),
  ]
  process.stdout.write(`${out.join('\n')}\n`)
}

async function main() {
  let opts
  try {
    opts = parseCli(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${err.message}\n\n${HELP}`)
    process.exit(2)
  }
  process.stderr.write(
    `fuzz: seed ${opts.seed} (replay with --seed ${opts.seed}), ${opts.requests} requests\n`,
  )
  const started = performance.now()
  let lastShown = 0
  const report = await runFuzz({
    ...opts,
    startProxy: startTurnoutFromDist,
    onExchange: opts.sessions === undefined ? undefined : printExchange,
    onProgress: (done) => {
      if (done - lastShown >= 5000) {
        lastShown = done
        const s = ((performance.now() - started) / 1000).toFixed(0)
        process.stderr.write(`  ${done} requests, ${s} s\n`)
      }
    },
  })
  process.stdout.write(`${formatReport(report)}\n`)
  const seconds = (performance.now() - started) / 1000
  process.stderr.write(`fuzz: ${report.requests} requests in ${seconds.toFixed(1)} s\n`)
  const fresh = unexplained(report)
  if (fresh.length > 0) {
    process.stderr.write(`fuzz: ${fresh.length} unexplained difference classes (seed ${opts.seed})\n`)
    process.exit(1)
  }
}

main().catch((err) => {
  process.stderr.write(`fuzz: ${err.stack ?? err}\n`)
  process.exit(1)
})

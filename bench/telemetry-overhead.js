#!/usr/bin/env node
// What Turnout's telemetry costs, measured side by side in one run:
//   metrics-off   metrics.enabled: false, tracing off
//   metrics-on    metrics on (the default), tracing off
//   tracing-100   metrics on, tracing on at 100% sampling, exporting OTLP/protobuf to a local sink
// Access log off everywhere, so only metrics and traces differ. Each target is a separate Turnout
// process in front of the same upstream process (the upstream also hosts the OTLP sink); autocannon
// runs here. Rounds alternate the targets (A B C, B C A, C A B, ...) so drift on a shared machine
// hits all of them alike; the report gives the median of the rounds per target and the ratios, for
// throughput and for the Turnout process's CPU time per request (steadier when the machine is busy).
//
// Usage: npx tsc -p tsconfig.build.json && node bench/telemetry-overhead.js
//          [--duration 10] [--rounds 3] [--connections 50] [--warmup 3] [--json FILE]
// Uses dist/ (the built Turnout). Exit code 1 when a target fails its check or a run sees errors.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const SELF = fileURLToPath(import.meta.url)
const BODY = Buffer.from('{"ok":true,"service":"bench-upstream","items":[1,2,3]}\n')

// ---- child roles ---------------------------------------------------------------------------------

/** The upstream (GET anything → small JSON) and an OTLP/HTTP sink on /v1/traces, in one process. */
async function upstreamRole() {
  let exports = 0
  let exportBytes = 0
  const server = http.createServer((req, res) => {
    if (req.url === '/v1/traces') {
      req.on('data', (c) => {
        exportBytes += c.length
      })
      req.on('end', () => {
        exports++
        res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 })
        res.end()
      })
      return
    }
    if (req.url === '/__sink') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ exports, exportBytes }))
      return
    }
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length })
    res.end(BODY)
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  process.send({ ready: true, url: `http://127.0.0.1:${server.address().port}` })
  process.on('disconnect', () => process.exit(0))
}

/** One Turnout from dist/, configured by the parent. */
async function turnoutRole(configJson) {
  const { startTurnout } = await import('../dist/app.js')
  const { parseConfig } = await import('../dist/config/load.js')
  const { pino } = await import('pino')
  const turnout = await startTurnout({
    config: parseConfig(configJson, 'bench'),
    logger: pino({ level: 'warn' }),
    env: {},
  })
  process.send({ ready: true, url: turnout.url, adminUrl: turnout.adminUrl })
  // CPU time of this process, so the parent can report CPU per request (robust on a busy machine).
  process.on('message', (m) => {
    if (m === 'cpu') {
      const u = process.cpuUsage()
      process.send({ cpu: u.user + u.system })
    }
  })
  process.on('disconnect', async () => {
    await turnout.close()
    process.exit(0)
  })
}

// ---- parent --------------------------------------------------------------------------------------

function start(args) {
  const child = fork(SELF, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ child, ...m }))
    child.once('exit', (code) => reject(new Error(`${args[1]} exited with ${code} before it was ready`)))
  })
}

async function fetchText(url) {
  const res = await fetch(url)
  return { status: res.status, headers: res.headers, text: await res.text() }
}

/** Microseconds of CPU the Turnout child has used so far. */
function cpuOf(child) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (m && typeof m.cpu === 'number') {
        child.off('message', on)
        resolve(m.cpu)
      }
    }
    child.on('message', on)
    child.send('cpu')
  })
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

async function parent(opts) {
  const { default: autocannon } = await import('autocannon')
  const upstream = await start(['--role', 'upstream'])
  const base = {
    listen: '127.0.0.1:0',
    admin: { listen: '127.0.0.1:0' },
    accessLog: { enabled: false },
    routes: [
      {
        name: 'bench',
        primary: { endpoints: [upstream.url] },
        canary: { endpoints: [upstream.url] },
        split: { canary: 10 },
      },
    ],
  }
  const targets = [
    { name: 'metrics-off', config: { ...base, metrics: { enabled: false } } },
    { name: 'metrics-on', config: base },
    {
      name: 'tracing-100',
      config: { ...base, tracing: { enabled: true, endpoint: upstream.url, sampleRatio: 1 } },
    },
  ]
  for (const t of targets)
    Object.assign(t, await start(['--role', 'turnout', '--config', JSON.stringify(t.config)]))

  // Check each target before timing it: it proxies, and its telemetry is what its name says.
  for (const t of targets) {
    const r = await fetchText(`${t.url}/check`)
    if (r.status !== 200 || !r.headers.get('x-turnout-variant'))
      throw new Error(`${t.name}: check failed (${r.status})`)
    const m = await fetchText(`${t.adminUrl}/metrics`)
    const hasMetrics = m.status === 200 && m.text.includes('turnout_requests_total{route="bench"')
    if (hasMetrics !== (t.name !== 'metrics-off')) throw new Error(`${t.name}: /metrics answered ${m.status}`)
  }

  const run = (t, duration) =>
    autocannon({ url: `${t.url}/item`, connections: opts.connections, duration, pipelining: 1 })

  for (const t of targets) await run(t, opts.warmup)
  const sinkBefore = JSON.parse((await fetchText(`${upstream.url}/__sink`)).text)

  const rounds = Object.fromEntries(targets.map((t) => [t.name, []]))
  let failed = false
  for (let i = 0; i < opts.rounds; i++) {
    // rotate the order each round so no target always runs first (or right after another)
    for (const t of [...targets.slice(i % targets.length), ...targets.slice(0, i % targets.length)]) {
      const cpuBefore = await cpuOf(t.child)
      const r = await run(t, opts.duration)
      const cpuUs = (await cpuOf(t.child)) - cpuBefore
      const errors = r.errors + r.timeouts + r.non2xx
      if (errors > 0) failed = true
      rounds[t.name].push({
        rps: r.requests.average,
        p50: r.latency.p50,
        p99: r.latency.p99,
        errors,
        total: r.requests.total,
        cpuUsPerRequest: cpuUs / r.requests.total,
      })
      process.stderr.write(
        `round ${i + 1} ${t.name.padEnd(12)} ${r.requests.average.toFixed(0).padStart(7)} req/s  p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms  ${(cpuUs / r.requests.total).toFixed(1)} µs CPU/req  errors ${errors}\n`,
      )
    }
  }
  const sinkAfter = JSON.parse((await fetchText(`${upstream.url}/__sink`)).text)
  const tracingMetrics = await fetchText(`${targets[2].adminUrl}/metrics`)
  const dropped = Number(
    /^turnout_telemetry_dropped_spans_total (\S+)$/m.exec(tracingMetrics.text)?.[1] ?? Number.NaN,
  )

  const summary = Object.fromEntries(
    targets.map((t) => [
      t.name,
      {
        rps: median(rounds[t.name].map((r) => r.rps)),
        p50: median(rounds[t.name].map((r) => r.p50)),
        p99: median(rounds[t.name].map((r) => r.p99)),
        cpuUsPerRequest: median(rounds[t.name].map((r) => r.cpuUsPerRequest)),
        rounds: rounds[t.name],
      },
    ]),
  )
  const off = summary['metrics-off'].rps
  const on = summary['metrics-on'].rps
  const traced = summary['tracing-100'].rps
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    options: opts,
    summary,
    ratios: {
      metricsOnVsOff: on / off,
      tracing100VsMetricsOn: traced / on,
      tracing100VsOff: traced / off,
      cpuPerRequestMetricsOnVsOff:
        summary['metrics-on'].cpuUsPerRequest / summary['metrics-off'].cpuUsPerRequest,
      cpuPerRequestTracing100VsMetricsOn:
        summary['tracing-100'].cpuUsPerRequest / summary['metrics-on'].cpuUsPerRequest,
    },
    tracing: {
      exportsDuringRun: sinkAfter.exports - sinkBefore.exports,
      exportBytesDuringRun: sinkAfter.exportBytes - sinkBefore.exportBytes,
      droppedSpans: dropped,
    },
  }

  const pct = (x) => `${((x - 1) * 100).toFixed(1)}%`
  console.log(
    `\nTurnout telemetry overhead (${opts.rounds} rounds × ${opts.duration}s, ${opts.connections} connections, median of rounds)`,
  )
  console.log('target        req/s     p50 ms  p99 ms  CPU µs/req')
  for (const t of targets) {
    const s = summary[t.name]
    console.log(
      `${t.name.padEnd(12)} ${s.rps.toFixed(0).padStart(7)}  ${String(s.p50).padStart(7)} ${String(s.p99).padStart(7)}  ${s.cpuUsPerRequest.toFixed(1).padStart(10)}`,
    )
  }
  console.log(
    `metrics on vs off:          ${report.ratios.metricsOnVsOff.toFixed(3)}× (${pct(report.ratios.metricsOnVsOff)})`,
  )
  console.log(
    `tracing 100% vs metrics on: ${report.ratios.tracing100VsMetricsOn.toFixed(3)}× (${pct(report.ratios.tracing100VsMetricsOn)})`,
  )
  console.log(
    `CPU per request: metrics on vs off ${pct(report.ratios.cpuPerRequestMetricsOnVsOff)}, tracing 100% vs metrics on ${pct(report.ratios.cpuPerRequestTracing100VsMetricsOn)}`,
  )
  console.log(
    `tracing: ${report.tracing.exportsDuringRun} OTLP exports, ${(report.tracing.exportBytesDuringRun / 1e6).toFixed(1)} MB, ${dropped} spans dropped`,
  )
  if (opts.json) writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`)

  // Turnouts first (their last spans flush to the sink), then the upstream.
  for (const t of targets) t.child.disconnect()
  await Promise.all(targets.map((t) => once(t.child, 'exit')))
  upstream.child.disconnect()
  await once(upstream.child, 'exit')
  if (failed) {
    console.error('some runs saw errors, timeouts or non-2xx answers')
    process.exitCode = 1
  }
}

const { values } = parseArgs({
  options: {
    role: { type: 'string' },
    config: { type: 'string' },
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '3' },
    json: { type: 'string' },
  },
})
if (values.role === 'upstream') await upstreamRole()
else if (values.role === 'turnout') await turnoutRole(values.config)
else {
  await parent({
    duration: Number(values.duration),
    rounds: Number(values.rounds),
    connections: Number(values.connections),
    warmup: Number(values.warmup),
    json: values.json,
  })
}

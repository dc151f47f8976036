#!/usr/bin/env node
// Client latency through Turnout with mirroring off vs 100% mirroring to a bad canary: one that
// answers after 3 s, one that never answers, one that is down. Fixed request rate (open loop), so p99
// shows what the mirror adds to a client's request, not how the proxy behaves when saturated.
// Interleaved rounds (A B C D A B C D ...); per case the median of the rounds' percentiles.
// Also reads each run's mirror counters from /metrics (answered, dropped by reason).
//
// Needs dist/ (`npm run build`). Usage:
//   node bench/mirror-latency.js [--rate 1000] [--duration 10] [--rounds 3] [--connections 50]
//                                [--canary-delay 3000] [--warmup 2] [--cases off,slow,silent,down]
// Markdown table on stdout, progress on stderr.
import { parseArgs } from 'node:util'
import { runLoad } from './lib/load.js'
import { stopAll } from './lib/proc.js'
import { REQUESTS } from './lib/scenarios.js'
import { fmtMs, fmtNum, markdownTable, median } from './lib/stats.js'
import { freePort, prerequisiteMissing, startTarget, startUpstream } from './lib/targets.js'

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    'canary-delay': { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '2' },
    cases: { type: 'string', default: 'off,slow,silent,down' },
  },
})
const rate = Number(values.rate)
const duration = Number(values.duration)
const rounds = Number(values.rounds)
const connections = Number(values.connections)
const canaryDelay = Number(values['canary-delay'])
const warmup = Number(values.warmup)
const log = (s) => process.stderr.write(`${s}\n`)

const missing = prerequisiteMissing('turnout')
if (missing) {
  log(`cannot run: ${missing}`)
  process.exit(2)
}

async function mirrorCounters(adminUrl) {
  if (!adminUrl) return null
  try {
    const text = await (await fetch(`${adminUrl}/metrics`)).text()
    const sum = (re) => {
      let n = 0
      for (const m of text.matchAll(re)) n += Number(m[1])
      return n
    }
    return {
      answered: sum(/^turnout_mirror_requests_total\{[^}]*variant="canary"[^}]*\} (\S+)$/gm),
      inFlightLimit: sum(/^turnout_mirror_dropped_total\{[^}]*reason="in_flight_limit"[^}]*\} (\S+)$/gm),
      timeout: sum(/^turnout_mirror_dropped_total\{[^}]*reason="timeout"[^}]*\} (\S+)$/gm),
      upstreamError: sum(/^turnout_mirror_dropped_total\{[^}]*reason="upstream_error"[^}]*\} (\S+)$/gm),
    }
  } catch {
    return null
  }
}

async function main() {
  const primary = await startUpstream('primary')
  const slow = await startUpstream('slow-canary', { delayMs: canaryDelay })
  const silent = await startUpstream('silent-canary', { delayMs: 3_600_000 })
  const downPort = await freePort()
  const down = { name: 'down-canary', url: `http://127.0.0.1:${downPort}`, host: `127.0.0.1:${downPort}` }
  const cases = [
    { id: 'off', label: 'mirror off', variant: 'nomirror', canary: slow },
    {
      id: 'slow',
      label: `mirror 100% → canary answering in ${canaryDelay} ms`,
      variant: 'mirror',
      canary: slow,
    },
    { id: 'silent', label: 'mirror 100% → canary never answering', variant: 'mirror', canary: silent },
    { id: 'down', label: 'mirror 100% → canary down', variant: 'mirror', canary: down },
  ].filter((c) => c.id === 'off' || values.cases.split(',').includes(c.id))
  const results = new Map(cases.map((c) => [c.id, []]))
  const counters = new Map()
  for (let round = 0; round < rounds; round++) {
    for (const c of cases) {
      const row = { id: `turnout-${c.id}`, base: 'turnout', variant: c.variant }
      const target = await startTarget(row, { upstreams: { primary, slow: c.canary }, cpus: null })
      try {
        const load = (d) =>
          runLoad({
            loadgen: 'autocannon',
            url: target.url,
            request: REQUESTS.small,
            connections,
            duration: d,
            cpus: null,
            threads: 1,
            rate,
          })
        if (warmup > 0) await load(warmup)
        const r = await load(duration)
        results.get(c.id).push(r)
        counters.set(c.id, await mirrorCounters(target.adminUrl))
        log(
          `round ${round + 1}/${rounds} ${c.id}: ${fmtNum(r.rps)} rps, p99 ${fmtMs(r.p99)}, errors ${r.errors}`,
        )
      } finally {
        await target.stop()
      }
    }
  }

  const baseP99 = median(results.get('off').map((r) => r.p99))
  const rows = cases.map((c) => {
    const rs = results.get(c.id)
    const p99 = median(rs.map((r) => r.p99))
    const k = counters.get(c.id)
    return [
      c.label,
      fmtNum(median(rs.map((r) => r.rps))),
      fmtMs(median(rs.map((r) => r.p50))),
      fmtMs(p99),
      c.id === 'off' ? '' : `${p99 - baseP99 >= 0 ? '+' : ''}${fmtMs(p99 - baseP99)}`,
      fmtMs(median(rs.map((r) => r.p999))),
      String(rs.reduce((n, r) => n + r.errors, 0)),
      k && c.id !== 'off'
        ? `${k.answered} answered; dropped ${k.inFlightLimit} in_flight_limit, ${k.timeout} timeout, ${k.upstreamError} upstream_error`
        : '',
    ]
  })
  process.stdout.write(
    `Client latency, ${rate} req/s fixed rate, ${connections} connections, ${duration} s x ${rounds} rounds (median of rounds); small GET; mirror defaults (maxInFlight 64, timeout 5s); counters of the last round\n\n`,
  )
  process.stdout.write(
    `${markdownTable(
      ['case', 'req/s', 'p50', 'p99', 'p99 vs off', 'p99.9', 'client errors', 'mirrors'],
      rows,
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    )}\n`,
  )
}

try {
  await main()
} finally {
  await stopAll()
}

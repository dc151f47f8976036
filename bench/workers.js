#!/usr/bin/env node
// Scaling of `workers: N`: the `turnout` bench target (90/10 split, metrics and access log on) with
// workers: 1 and workers: N, interleaved rounds in one run, small GETs. Nothing is pinned: N workers
// need N CPUs, so on a small machine the load generator and the upstreams compete with them (that is
// the point of reporting CPU time per request next to requests/s).
//
//   node bench/workers.js                         # 1 vs 2 workers, 3 rounds x 10 s, wrk when installed
//   node bench/workers.js --workers 1,2,4 --rounds 5 --duration 15 --connections 100
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { routingCheck } from './lib/check.js'
import { runLoad } from './lib/load.js'
import { machineInfo } from './lib/machine.js'
import { hasCommand, stopAll } from './lib/proc.js'
import { REQUESTS } from './lib/scenarios.js'
import { fmtMs, fmtNum, fmtRatio, markdownTable, median } from './lib/stats.js'
import { BENCH_DIR, startTarget, startUpstreams } from './lib/targets.js'

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,2' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    loadgen: { type: 'string' },
    out: { type: 'string' },
  },
})
const counts = values.workers.split(',').map(Number)
const rounds = Number(values.rounds)
const duration = Number(values.duration)
const warmup = Number(values.warmup)
const connections = Number(values.connections)
const loadgen = values.loadgen ?? (hasCommand('wrk') ? 'wrk' : 'autocannon')
const log = (s) => process.stderr.write(`${s}\n`)
const TICK = 100 // USER_HZ on Linux

/** User + system CPU seconds of a process and its descendants (Linux /proc). */
function treeCpuSeconds(pid) {
  let ticks = 0
  const stack = [pid]
  const seen = new Set()
  while (stack.length > 0 && seen.size < 1000) {
    const p = stack.pop()
    if (seen.has(p)) continue
    seen.add(p)
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12]) // utime, stime
      for (const t of fs.readdirSync(`/proc/${p}/task`)) {
        const kids = fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim()
        if (kids) for (const k of kids.split(/\s+/)) stack.push(Number(k))
      }
    } catch {
      // gone
    }
  }
  return ticks / TICK
}

const machine = machineInfo()
const upstreams = await startUpstreams(null)
const rows = []
for (const n of counts) {
  const row = {
    id: n === 1 ? 'turnout' : `turnout-${n}w`,
    base: 'turnout',
    variant: 'split',
    label: `workers: ${n}`,
  }
  const running = await startTarget(row, { upstreams, cpus: null, turnoutExtraYaml: `workers: ${n}\n` })
  const check = await routingCheck(running.url, REQUESTS.small, 40)
  if (!check.ok) throw new Error(`${row.label}: routing check failed: ${check.reason}`)
  log(`${row.label}: ${running.url}, routing check ok (${JSON.stringify(check.upstreams)})`)
  rows.push({ n, row, running, rounds: [] })
}

const round = async (r, seconds) => {
  const cpu0 = treeCpuSeconds(r.running.pid)
  const res = await runLoad({
    loadgen,
    url: r.running.url,
    request: REQUESTS.small,
    connections,
    duration: seconds,
    cpus: null,
    threads: 1,
  })
  res.proxyCpuSeconds = treeCpuSeconds(r.running.pid) - cpu0
  res.cpuUsPerRequest = res.ok > 0 ? (res.proxyCpuSeconds / res.ok) * 1e6 : null
  return res
}
if (warmup > 0) for (const r of rows) await round(r, warmup)
for (let i = 1; i <= rounds; i++) {
  for (const r of rows) {
    const res = await round(r, duration)
    r.rounds.push(res)
    log(
      `round ${i}/${rounds} ${r.row.label}: ${fmtNum(res.rps)} req/s, p50 ${fmtMs(res.p50)} ms, p99 ${fmtMs(res.p99)} ms, errors ${res.errors}, proxy CPU ${res.proxyCpuSeconds.toFixed(1)} s (${fmtNum(res.cpuUsPerRequest)} µs/req)`,
    )
  }
}
await Promise.all(rows.map((r) => r.running.stop()))
await stopAll()

const base = rows[0]
const summary = (r) => ({
  rps: median(r.rounds.map((x) => x.rps)),
  p50: median(r.rounds.map((x) => x.p50)),
  p99: median(r.rounds.map((x) => x.p99)),
  cpu: median(r.rounds.map((x) => x.cpuUsPerRequest)),
  cores: median(r.rounds.map((x) => x.proxyCpuSeconds / x.durationS)),
  errors: r.rounds.reduce((a, x) => a + x.errors, 0),
})
const b = summary(base)
console.log(
  `# workers scaling, ${new Date().toISOString()}\n\n- ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}; load average before: ${os.loadavg()[0].toFixed(2)}`,
)
console.log(
  `- ${loadgen} (1 thread), ${connections} connections, small GET, ${rounds} interleaved rounds x ${duration} s after a ${warmup} s warm-up; medians; nothing pinned\n`,
)
console.log(
  markdownTable(
    [
      'target',
      'req/s',
      'p50 ms',
      'p99 ms',
      'errors',
      'proxy CPU µs/req',
      'proxy cores busy',
      `req/s vs ${base.row.label}`,
    ],
    rows.map((r) => {
      const s = summary(r)
      return [
        r.row.label,
        fmtNum(s.rps),
        fmtMs(s.p50),
        fmtMs(s.p99),
        String(s.errors),
        fmtNum(s.cpu),
        s.cores.toFixed(2),
        fmtRatio(s.rps / b.rps),
      ]
    }),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  ),
)
const outFile =
  values.out ??
  path.join(BENCH_DIR, 'results', `workers-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
fs.mkdirSync(path.dirname(outFile), { recursive: true })
fs.writeFileSync(
  outFile,
  `${JSON.stringify({ machine, loadgen, connections, rows: rows.map(({ running, ...r }) => r) }, null, 2)}\n`,
)
console.log(`\nresults: ${path.relative(process.cwd(), outFile)}`)

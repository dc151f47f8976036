#!/usr/bin/env node
// Turnout benchmark harness. See bench/README.md.
//   npm run bench                         headline scenario (small-get), all targets, 3 interleaved rounds
//   npm run bench -- --scenario all       every scenario
//   npm run bench -- --smoke              one short round per target (CI)
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { routingCheck, upstreamCount } from './lib/check.js'
import { runLoad } from './lib/load.js'
import { machineInfo, pinPlan } from './lib/machine.js'
import { hasCommand, stopAll } from './lib/proc.js'
import { ALL_TARGETS, HEADLINE, REQUESTS, SCENARIOS } from './lib/scenarios.js'
import { fmtMs, fmtNum, fmtRatio, markdownTable, median } from './lib/stats.js'
import { BENCH_DIR, prerequisiteMissing, startTarget, startUpstreams } from './lib/targets.js'

const HELP = `usage: node bench/run.js [options]   (npm run bench -- [options])

  --scenario NAME[,NAME]  ${Object.keys(SCENARIOS).join(', ')} or all (default: ${HEADLINE})
  --targets a,b,c         subset of ${ALL_TARGETS.join(', ')} (default: all)
  --duration S            seconds per timed round (default 10; smoke 1.5)
  --warmup S              seconds of discarded warm-up per target (default 3; smoke 0)
  --rounds N              interleaved timed rounds (default 3; smoke 1)
  --connections N         client connections (default: per scenario)
  --loadgen NAME          autocannon (default) or wrk
  --baseline ID           row the ratios compare to (default: direct)
  --profile               run Turnout with --cpu-prof --cpu-prof-dir bench/results
  --smoke                 one short round per target; exit 1 if a target fails its routing check
  --no-pin                do not pin processes to CPUs with taskset
  --out FILE              JSON results file (default: bench/results/<kind>-<time>.json)
  --help
`

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string' },
      targets: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      connections: { type: 'string' },
      loadgen: { type: 'string', default: 'autocannon' },
      baseline: { type: 'string', default: 'direct' },
      profile: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      'no-pin': { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) {
    process.stdout.write(HELP)
    process.exit(0)
  }
  const num = (name, v, def, { min = 0, integer = false } = {}) => {
    if (v === undefined) return def
    const n = Number(v)
    if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n)))
      usage(`--${name} must be a number >= ${min}`)
    return n
  }
  const smoke = values.smoke
  const scenarioArg = values.scenario ?? HEADLINE
  const scenarios =
    scenarioArg === 'all' ? Object.keys(SCENARIOS) : scenarioArg.split(',').map((s) => s.trim())
  for (const s of scenarios) if (!SCENARIOS[s]) usage(`unknown scenario ${s}`)
  const targets = values.targets ? values.targets.split(',').map((s) => s.trim()) : ALL_TARGETS
  for (const t of targets) if (!ALL_TARGETS.includes(t)) usage(`unknown target ${t}`)
  if (!['autocannon', 'wrk'].includes(values.loadgen)) usage('--loadgen must be autocannon or wrk')
  if (values.loadgen === 'wrk' && !hasCommand('wrk')) usage('--loadgen wrk: wrk is not installed')
  return {
    scenarios,
    targets,
    smoke,
    duration: num('duration', values.duration, smoke ? 1.5 : 10, { min: 0.5 }),
    warmup: num('warmup', values.warmup, smoke ? 0 : 3),
    rounds: num('rounds', values.rounds, smoke ? 1 : 3, { min: 1, integer: true }),
    connections: num('connections', values.connections, null, { min: 1, integer: true }),
    loadgen: values.loadgen,
    baseline: values.baseline,
    profile: values.profile,
    pin: !values['no-pin'],
    out: values.out,
  }
}

function usage(msg) {
  process.stderr.write(`bench: ${msg}\n\n${HELP}`)
  process.exit(2)
}

const log = (s) => process.stderr.write(`${s}\n`)
const print = (s = '') => process.stdout.write(`${s}\n`)

function header(machine, opts, pins, startedAt) {
  const p = machine.peers
  const found = []
  const missing = []
  for (const [name, v] of [
    ['nginx', p.nginx],
    ['wrk', p.wrk],
    ['taskset', machine.tools.taskset],
    ['setpriv', machine.tools.setpriv],
  ]) {
    ;(v ? found : missing).push(name)
  }
  const versions = Object.entries(p)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')
  print(`# Turnout bench, ${startedAt}`)
  print()
  print(
    `- machine: ${machine.cpuModel}, ${machine.cores} cores (${machine.allowedCpus} usable), ${machine.arch}, ${machine.platform}, ${machine.memoryGiB} GiB`,
  )
  print(`- node ${machine.node}; peers: ${versions}`)
  print(`- optional peers found: ${found.join(', ') || 'none'}; missing: ${missing.join(', ') || 'none'}`)
  print(
    `- turnout ${machine.turnout.version}${machine.turnout.commit ? ` @ ${machine.turnout.commit}` : ''}: ${
      machine.turnout.built
        ? 'dist/ built'
        : 'dist/cli/main.js missing (run npm run build); turnout rows unavailable'
    }`,
  )
  print(
    pins.pinned
      ? `- pinning (taskset): proxy on CPU ${pins.proxy}; load generator on CPU ${pins.loadgen}; upstreams on CPU ${pins.upstream}`
      : `- pinning: off (${pins.why}); proxy, load generator and upstreams share all CPUs`,
  )
  const rounds = opts.smoke
    ? `smoke: ${opts.rounds} round(s) of ${opts.duration} s per target`
    : `${opts.rounds} interleaved rounds x ${opts.duration} s per target after a ${opts.warmup} s warm-up (discarded)`
  print(`- load: ${opts.loadgen}; ${rounds}; values are medians over rounds`)
  if (opts.profile) print('- profiling: turnout runs with --cpu-prof (numbers are slower than usual)')
  const load = os.loadavg()[0]
  const busy = load > 0.5 * machine.allowedCpus
  print(
    `- load average before the run: ${load.toFixed(2)}${busy ? ' (busy machine: expect noisy numbers)' : ''}`,
  )
}

async function runScenario(name, opts, ctx) {
  const sc = SCENARIOS[name]
  const connections = opts.connections ?? sc.connections
  const request = REQUESTS[sc.request]
  const rows = sc.rows
    .filter((r) => opts.targets.includes(r.base))
    .map((r) => ({
      ...r,
      status: 'pending',
      reason: null,
      rounds: [],
      warmup: null,
      check: null,
      running: null,
    }))
  log(`\n== ${name}: ${sc.description}; ${connections} connections`)

  // start targets (fail soft: a target that cannot start is reported, the run goes on)
  for (const row of rows) {
    const missing = prerequisiteMissing(row.base)
    if (missing) {
      row.status = row.base === 'nginx' ? 'missing' : 'unavailable'
      row.reason = missing
      log(`  ${row.label}: ${row.status}: ${missing}`)
      continue
    }
    try {
      row.running = await startTarget(row, { ...ctx, scenario: name })
      log(
        `  ${row.label}: started at ${row.running.url}${row.running.notes.length ? ` (${row.running.notes.join(', ')})` : ''}`,
      )
    } catch (err) {
      row.status = 'unavailable'
      row.reason = err.message
      row.failed = true
      log(`  ${row.label}: unavailable: ${err.message}`)
    }
  }

  // routing check before anything is timed; smoke also checks the other request kinds
  const kinds = opts.smoke ? [...new Set([sc.request, 'small', 'big', 'upload'])] : [sc.request]
  for (const row of rows.filter((r) => r.running)) {
    row.check = { upstreams: {} }
    for (const kind of kinds) {
      const res = await routingCheck(row.running.url, REQUESTS[kind], kind === sc.request ? 40 : 3)
      for (const [k, v] of Object.entries(res.upstreams))
        row.check.upstreams[k] = (row.check.upstreams[k] ?? 0) + v
      if (!res.ok) {
        row.status = 'failed'
        row.reason = `routing check failed: ${res.reason}`
        row.failed = true
        break
      }
    }
    if (row.status !== 'failed') row.status = 'ok'
    const seen = Object.entries(row.check.upstreams)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')
    log(
      `  ${row.label}: routing check ${row.status === 'ok' ? 'ok' : row.reason} (answered by: ${seen || '-'})`,
    )
  }

  const live = rows.filter((r) => r.status === 'ok')
  const round = async (row, duration) => {
    const before = sc.slowCanary ? await upstreamCount(ctx.upstreams.slow.url) : null
    const res = await runLoad({
      loadgen: opts.loadgen,
      url: row.running.url,
      request,
      connections,
      duration,
      cpus: ctx.pins.loadgen,
      threads: ctx.pins.loadgenCount,
    })
    if (sc.slowCanary) {
      // let in-flight mirror copies land before counting them
      await new Promise((r) => setTimeout(r, 300))
      const after = await upstreamCount(ctx.upstreams.slow.url)
      res.mirrored = before !== null && after !== null ? after - before : null
    }
    return res
  }

  if (opts.warmup > 0) {
    for (const row of live) {
      try {
        row.warmup = await round(row, opts.warmup)
        log(`  warm-up ${row.label}: ${fmtNum(row.warmup.rps)} req/s (discarded)`)
      } catch (err) {
        log(`  warm-up ${row.label}: ${err.message}`)
      }
    }
  }
  for (let r = 1; r <= opts.rounds; r++) {
    for (const row of live) {
      if (row.status !== 'ok') continue
      try {
        const res = await round(row, opts.duration)
        row.rounds.push(res)
        log(
          `  round ${r}/${opts.rounds} ${row.label}: ${fmtNum(res.rps)} req/s, p50 ${fmtMs(res.p50)} ms, p99 ${fmtMs(res.p99)} ms, p99.9 ${fmtMs(res.p999)} ms, errors ${res.errors}${res.mirrored !== undefined ? `, mirrored ${res.mirrored ?? '?'}` : ''}`,
        )
      } catch (err) {
        row.status = 'failed'
        row.reason = `load run failed: ${err.message}`
        row.failed = true
        log(`  round ${r}/${opts.rounds} ${row.label}: ${row.reason}`)
      }
    }
  }

  // stop this scenario's targets (graceful, so --cpu-prof profiles get written)
  await Promise.all(rows.filter((r) => r.running).map((r) => r.running.stop()))

  for (const row of rows) {
    if (row.rounds.length === 0) continue
    const pick = (k) => median(row.rounds.map((x) => x[k]))
    const rpss = row.rounds.map((x) => x.rps)
    const rps = pick('rps')
    row.summary = {
      rps,
      spreadPct: rps ? ((Math.max(...rpss) - Math.min(...rpss)) / rps) * 100 : null,
      p50: pick('p50'),
      p99: pick('p99'),
      p999: pick('p999'),
      errors: row.rounds.reduce((a, x) => a + x.errors, 0),
      ok: row.rounds.reduce((a, x) => a + x.ok, 0),
      mirrored: sc.slowCanary ? row.rounds.reduce((a, x) => a + (x.mirrored ?? 0), 0) : undefined,
    }
    if (opts.smoke && row.summary.ok === 0) {
      row.status = 'failed'
      row.reason = 'no successful response under load'
      row.failed = true
    }
  }

  const measured = rows.filter((r) => r.summary)
  const base =
    measured.find((r) => r.id === opts.baseline) ??
    measured.find((r) => r.id === 'direct') ??
    measured[0] ??
    null
  return {
    name,
    description: sc.description,
    connections,
    request: sc.request,
    baseline: base?.id ?? null,
    rows,
  }
}

function report(result, opts) {
  const { rows } = result
  const base = rows.find((r) => r.id === result.baseline)
  print()
  print(`## ${result.name}: ${result.description} (${result.connections} connections)`)
  print()
  const mirror = SCENARIOS[result.name].slowCanary
  const header = [
    'target',
    'req/s',
    'spread',
    'p50 ms',
    'p99 ms',
    'p99.9 ms',
    'errors',
    ...(mirror ? ['mirrored'] : []),
    `req/s vs ${base?.id ?? '-'}`,
    `p99 vs ${base?.id ?? '-'}`,
  ]
  const table = rows
    .filter((r) => r.summary)
    .map((r) => {
      const s = r.summary
      return [
        r.label,
        fmtNum(s.rps),
        opts.rounds > 1 ? `${fmtNum(s.spreadPct, 1)}%` : '-',
        fmtMs(s.p50),
        fmtMs(s.p99),
        fmtMs(s.p999),
        fmtNum(s.errors),
        ...(mirror ? [fmtNum(s.mirrored)] : []),
        base ? fmtRatio(s.rps / base.summary.rps) : '-',
        base ? fmtRatio(s.p99 / base.summary.p99) : '-',
      ]
    })
  if (table.length > 0) print(markdownTable(header, table, ['l', ...header.slice(1).map(() => 'r')]))
  else print('(nothing measured)')
  const notRun = rows.filter((r) => !r.summary)
  if (notRun.length > 0) {
    print()
    for (const r of notRun) print(`- ${r.label}: ${r.status}${r.reason ? `: ${r.reason}` : ''}`)
  }
  const noisy = rows.filter((r) => r.summary && r.summary.spreadPct > 20)
  if (noisy.length > 0 && opts.rounds > 1) {
    print()
    print(
      `- noisy: req/s varied more than 20% between rounds for ${noisy.map((r) => r.label).join(', ')}; something else was using the CPUs, rerun on a quiet machine`,
    )
  }
  const failedLate = rows.filter((r) => r.summary && r.status !== 'ok')
  for (const r of failedLate) print(`- ${r.label}: ${r.status}: ${r.reason}`)
  if (mirror) {
    for (const r of rows.filter((x) => x.summary && x.variant === 'mirror' && x.summary.mirrored === 0)) {
      print(`- warning: ${r.label}: no mirror copy reached the slow canary`)
    }
  }
}

async function main() {
  const opts = parseCli(process.argv.slice(2))
  const resultsDir = path.join(BENCH_DIR, 'results')
  fs.mkdirSync(resultsDir, { recursive: true })
  if (opts.smoke) {
    const limitS = 60 + 60 * opts.scenarios.length
    const watchdog = setTimeout(() => {
      log(`bench: smoke run exceeded ${limitS} s, giving up`)
      process.exit(1)
    }, limitS * 1000)
    watchdog.unref()
  }
  const startedAt = new Date().toISOString()
  const machine = machineInfo()
  const pins = pinPlan(opts.pin)
  header(machine, opts, pins, startedAt)

  const upstreams = await startUpstreams(pins.upstream)
  log(
    `upstreams: primary ${upstreams.primary.url}, canary ${upstreams.canary.url}, slow canary ${upstreams.slow.url}`,
  )
  const tag = `${opts.smoke ? 'smoke' : 'bench'}-${new Date().toISOString().replace(/[:.]/g, '-')}`
  const ctx = { upstreams, pins, cpus: pins.proxy, profile: opts.profile, resultsDir, tag }

  const results = []
  for (const name of opts.scenarios) {
    const res = await runScenario(name, opts, ctx)
    results.push(res)
    report(res, opts)
  }
  await stopAll()

  const failed = results.flatMap((s) => s.rows.filter((r) => r.failed).map((r) => `${s.name}/${r.id}`))
  const outFile = opts.out ? path.resolve(opts.out) : path.join(resultsDir, `${tag}.json`)
  const json = {
    startedAt,
    finishedAt: new Date().toISOString(),
    loadAverageAtEnd: os.loadavg(),
    machine,
    pinning: pins,
    options: opts,
    scenarios: results.map((s) => ({
      ...s,
      rows: s.rows.map(({ running, ...r }) => ({ ...r, url: running?.url ?? null })),
    })),
    failed,
  }
  fs.mkdirSync(path.dirname(outFile), { recursive: true })
  fs.writeFileSync(outFile, `${JSON.stringify(json, null, 2)}\n`)
  print()
  if (opts.profile) {
    const profiles = fs.readdirSync(resultsDir).filter((f) => f.startsWith(tag) && f.endsWith('.cpuprofile'))
    print(
      profiles.length > 0
        ? `CPU profiles: ${profiles.map((f) => path.relative(process.cwd(), path.join(resultsDir, f))).join(', ')}`
        : 'CPU profiles: none written (turnout not run, or it did not exit cleanly on SIGTERM)',
    )
  }
  print(`results: ${path.relative(process.cwd(), outFile)}`)
  if (failed.length > 0) {
    print(`FAILED: ${failed.join(', ')}`)
    process.exitCode = 1
  }
}

await main()

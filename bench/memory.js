#!/usr/bin/env node
// Memory of a proxy target (RSS of its process tree, from /proc). Loopback only, bounded in time.
//   node bench/memory.js [--target turnout] [--connections 10000]
//       opens N idle keep-alive client connections (each serves one request, then idles) and reports
//       RSS before/after and the overhead per connection
//   node bench/memory.js --soak MINUTES [--target turnout] [--connections 50] [--rate R] [--interval 10]
//       steady load for MINUTES, RSS sampled every 10 s, printed as a curve
import net from 'node:net'
import { parseArgs } from 'node:util'
import { routingCheck } from './lib/check.js'
import { runLoad } from './lib/load.js'
import { stopAll, treeRss } from './lib/proc.js'
import { ALL_TARGETS, REQUESTS, SMALL_BODY } from './lib/scenarios.js'
import { fmtNum } from './lib/stats.js'
import { prerequisiteMissing, startTarget, startUpstreams } from './lib/targets.js'

const HELP = `usage: node bench/memory.js [options]
  --target NAME        ${ALL_TARGETS.filter((t) => t !== 'direct').join(', ')} (default turnout)
  --connections N      idle connections to open (default 10000), or load connections with --soak (default 50)
  --batch N            connections opened concurrently while ramping up (default 250)
  --hold S             keep the idle connections open S more seconds and sample again (default 0)
  --soak MINUTES       steady load for MINUTES (max 240), RSS sampled every --interval seconds
  --interval S         soak sampling interval (default 10)
  --rate R             soak: cap the load at R requests/s (default: as fast as it goes)
`

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'turnout' },
    connections: { type: 'string' },
    batch: { type: 'string', default: '250' },
    hold: { type: 'string', default: '0' },
    soak: { type: 'string' },
    interval: { type: 'string', default: '10' },
    rate: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (values.help) {
  process.stdout.write(HELP)
  process.exit(0)
}
const target = values.target
if (!ALL_TARGETS.includes(target)) fail(`unknown target ${target}`, 2)
const soakMinutes = values.soak === undefined ? null : Number(values.soak)
if (soakMinutes !== null && !(soakMinutes > 0 && soakMinutes <= 240))
  fail('--soak must be 0 < MINUTES <= 240', 2)
const connections = Number(values.connections ?? (soakMinutes ? 50 : 10_000))
if (!(Number.isInteger(connections) && connections > 0 && connections <= 100_000))
  fail('--connections out of range', 2)

const MiB = 2 ** 20
const mib = (b) => (b === null ? '?' : (b / MiB).toFixed(1))
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function fail(msg, code = 1) {
  process.stderr.write(`memory: ${msg}\n`)
  process.exit(code)
}

/** One idle keep-alive connection: connect, one GET, wait for the whole answer, keep the socket open. */
function openIdle(port, sockets) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    let got = ''
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error('no answer within 10 s'))
    }, 10_000)
    s.setEncoding('latin1')
    s.once('connect', () => s.write('GET /small HTTP/1.1\r\nhost: bench\r\n\r\n'))
    s.on('data', function onData(d) {
      got += d
      if (got.endsWith(SMALL_BODY)) {
        clearTimeout(timer)
        s.off('data', onData)
        s.on('data', () => {})
        sockets.add(s)
        s.once('close', () => sockets.delete(s))
        resolve()
      }
    })
    s.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

async function idleMode(t, pid) {
  const port = Number(new URL(t.url).port)
  const sockets = new Set()
  await sleep(1000)
  const before = treeRss(pid)
  console.log(`RSS before: ${mib(before)} MiB`)
  const batch = Number(values.batch)
  const started = Date.now()
  let failed = 0
  let lastErr = null
  for (let i = 0; i < connections; i += batch) {
    const n = Math.min(batch, connections - i)
    const res = await Promise.allSettled(Array.from({ length: n }, () => openIdle(port, sockets)))
    for (const r of res) {
      if (r.status === 'rejected') {
        failed++
        lastErr = r.reason
      }
    }
    if (lastErr?.code === 'EMFILE' || lastErr?.code === 'ENFILE') {
      console.log(
        `stopped at ${sockets.size} connections: ${lastErr.code} (too many open files). Raise the limit, e.g. \`ulimit -n 65536\`, and run again (the proxy needs it too).`,
      )
      break
    }
    if (failed > connections / 10) {
      console.log(`stopped: ${failed} connections failed, last error: ${lastErr?.message}`)
      break
    }
  }
  const rampS = (Date.now() - started) / 1000
  await sleep(1000)
  const open = sockets.size
  const after = treeRss(pid)
  console.log(
    `opened ${open} idle keep-alive connections in ${rampS.toFixed(1)} s (${failed} failed${lastErr ? `, last: ${lastErr.code ?? lastErr.message}` : ''})`,
  )
  console.log(`RSS after:  ${mib(after)} MiB`)
  if (before !== null && after !== null && open > 0) {
    console.log(
      `overhead:   ${mib(after - before)} MiB, ${fmtNum((after - before) / open / 1024, 1)} KiB per connection`,
    )
  }
  const hold = Number(values.hold)
  if (hold > 0) {
    await sleep(hold * 1000)
    const later = treeRss(pid)
    console.log(
      `after ${hold} s more: ${sockets.size} still open (the proxy may close idle ones), RSS ${mib(later)} MiB`,
    )
  }
  for (const s of sockets) s.destroy()
}

async function soakMode(t, pid) {
  const seconds = soakMinutes * 60
  const interval = Math.max(1, Number(values.interval))
  const rate = values.rate ? Number(values.rate) : null
  console.log(
    `soak: ${soakMinutes} min, ${connections} connections${rate ? `, ${rate} req/s` : ', unthrottled'}, RSS every ${interval} s`,
  )
  const samples = [{ t: 0, rss: treeRss(pid) }]
  console.log(`  t=${'0'.padStart(5)} s  RSS ${mib(samples[0].rss).padStart(7)} MiB`)
  const load = runLoad({
    loadgen: 'autocannon',
    url: t.url,
    request: REQUESTS.small,
    connections,
    duration: seconds,
    cpus: null,
    threads: 1,
    rate,
  })
  let finished = false
  load.finally(() => {
    finished = true
  })
  const t0 = Date.now()
  while (!finished && Date.now() - t0 < (seconds + 40) * 1000) {
    await Promise.race([sleep(interval * 1000), load.catch(() => {})])
    if (finished) break
    const s = { t: Math.round((Date.now() - t0) / 1000), rss: treeRss(pid) }
    samples.push(s)
    const bar = '#'.repeat(Math.min(100, Math.max(1, Math.round((s.rss ?? 0) / MiB / 4))))
    console.log(`  t=${String(s.t).padStart(5)} s  RSS ${mib(s.rss).padStart(7)} MiB  ${bar}`)
  }
  const res = await load
  const rss = samples.map((s) => s.rss).filter((x) => x !== null)
  console.log(`load: ${fmtNum(res.rps)} req/s, p99 ${res.p99?.toFixed(2)} ms, errors ${res.errors}`)
  console.log(
    `RSS: start ${mib(rss[0])}, min ${mib(Math.min(...rss))}, max ${mib(Math.max(...rss))}, end ${mib(rss.at(-1))} MiB`,
  )
  // least-squares slope over the second half (after warm-up growth) as a leak indicator
  const half = samples.slice(Math.floor(samples.length / 2)).filter((s) => s.rss !== null)
  if (half.length >= 3) {
    const n = half.length
    const mx = half.reduce((a, s) => a + s.t, 0) / n
    const my = half.reduce((a, s) => a + s.rss, 0) / n
    const num = half.reduce((a, s) => a + (s.t - mx) * (s.rss - my), 0)
    const den = half.reduce((a, s) => a + (s.t - mx) ** 2, 0)
    if (den > 0)
      console.log(
        `slope over the second half: ${((num / den) * 60) / MiB >= 0 ? '+' : ''}${(((num / den) * 60) / MiB).toFixed(2)} MiB/min`,
      )
  }
}

async function main() {
  if (target === 'direct') fail('memory needs a proxy target (direct has none)', 2)
  const missing = prerequisiteMissing(target)
  if (missing) fail(`${target} unavailable: ${missing}`)
  const deadline = setTimeout(
    () => fail('took too long, giving up'),
    ((soakMinutes ?? 0) * 60 + Number(values.hold) + 300) * 1000,
  )
  deadline.unref()
  const upstreams = await startUpstreams(null)
  const row = { id: target, base: target, label: target, variant: 'split' }
  const t = await startTarget(row, {
    upstreams,
    cpus: null,
    profile: false,
    nginxWorkerConnections: connections + 4096,
    // room for all the idle connections: longer keep-alive and a higher connection cap than the defaults
    turnoutExtraYaml: `limits: { keepAliveTimeout: 120s, maxConnections: ${connections + 1000} }\n`,
  })
  const pid = t.pid
  const check = await routingCheck(t.url, REQUESTS.small, 200)
  if (!check.ok) fail(`${target}: routing check failed: ${check.reason}`)
  console.log(
    `target ${target} at ${t.url}, pid ${pid}${t.workerPid ? ` (worker ${t.workerPid})` : ''}; RSS is the whole process tree`,
  )
  if (soakMinutes) await soakMode(t, pid)
  else await idleMode(t, pid)
  await t.stop()
  await stopAll()
}

await main()

#!/usr/bin/env node
// Load generator child process (autocannon, programmatic API). Runs in its own process, pinned to
// its own CPU by the bench, so it never shares the proxy's CPU.
// Input: one JSON argument { url, method, path, bodySize, connections, duration, timeout, rate? }.
// Output: one IPC message { result } (or JSON on stdout when run by hand).
import autocannon from 'autocannon'
import { exitWithParent } from './lib/proc.js'
import { LatencyHistogram } from './lib/stats.js'

const opts = JSON.parse(process.argv[2] ?? '{}')
exitWithParent(() => process.exit(1))

const hist = new LatencyHistogram()
const instance = autocannon({
  url: opts.url + opts.path,
  method: opts.method,
  body: opts.bodySize > 0 ? Buffer.alloc(opts.bodySize, 120) : undefined,
  headers: opts.bodySize > 0 ? { 'content-type': 'application/octet-stream' } : undefined,
  connections: opts.connections,
  duration: opts.duration,
  timeout: opts.timeout ?? 10,
  pipelining: 1,
  overallRate: opts.rate || undefined,
})
instance.on('response', (_client, statusCode, _bytes, responseTime) => {
  if (statusCode >= 200 && statusCode < 300) hist.recordMs(responseTime)
})

const r = await instance
const seconds = r.duration || opts.duration
const result = {
  loadgen: 'autocannon',
  durationS: seconds,
  ok: r['2xx'],
  requests: r.requests.total,
  rps: r['2xx'] / seconds,
  p50: hist.percentileMs(50),
  p99: hist.percentileMs(99),
  p999: hist.percentileMs(99.9),
  max: hist.max,
  errors: r.errors + r.non2xx, // autocannon counts timeouts inside errors
  errorDetail: {
    socketAndTimeouts: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    statusCodes: r.statusCodeStats,
  },
  bytesPerSec: r.throughput.average,
}
if (process.send) process.send({ result }, () => process.exit(0))
else {
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  process.exit(0)
}

// Runs one timed load round against a URL with autocannon (child process) or wrk, and normalises the
// result to { loadgen, durationS, ok, requests, rps, p50, p99, p999, max, errors, errorDetail } (ms).
import path from 'node:path'
import { startChild, stopChild, waitForMessage } from './proc.js'
import { BENCH_DIR } from './targets.js'

/**
 * @param {{ loadgen: 'autocannon' | 'wrk', url: string, request: { method: string, path: string, bodySize: number },
 *   connections: number, duration: number, cpus: string | null, threads: number }} o
 */
export async function runLoad(o) {
  return o.loadgen === 'wrk' ? runWrk(o) : runAutocannon(o)
}

async function runAutocannon(o) {
  const input = {
    url: o.url,
    method: o.request.method,
    path: o.request.path,
    bodySize: o.request.bodySize,
    connections: o.connections,
    duration: o.duration,
    timeout: 10,
    rate: o.rate ?? null,
  }
  const child = startChild(process.execPath, [path.join(BENCH_DIR, 'loadgen.js'), JSON.stringify(input)], {
    name: 'loadgen',
    ipc: true,
    cpus: o.cpus,
  })
  try {
    const m = await waitForMessage(child, (x) => x?.result, (o.duration + 30) * 1000, 'autocannon')
    return m.result
  } finally {
    await stopChild(child, 2000)
  }
}

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Parse the "Latency Distribution" block that `wrk --latency` prints; values in ms. */
export function parseWrkLatency(text) {
  const out = {}
  const block = text.split('Latency Distribution')[1] ?? ''
  for (const m of block.matchAll(/^\s*(\d+(?:\.\d+)?)%\s+(\d+(?:\.\d+)?)(us|ms|s|m|h)\s*$/gm)) {
    out[m[1]] = Number(m[2]) * UNIT_MS[m[3]]
  }
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text)
  return { percentiles: out, rps: rps ? Number(rps[1]) : null }
}

async function runWrk(o) {
  const seconds = Math.max(1, Math.round(o.duration))
  const threads = Math.max(1, Math.min(o.threads, o.connections))
  const args = [
    '-t',
    String(threads),
    '-c',
    String(o.connections),
    '-d',
    `${seconds}s`,
    '--timeout',
    '10s',
    '--latency',
    '-s',
    path.join(BENCH_DIR, 'wrk-report.lua'),
    o.url + o.request.path,
  ]
  const env = { ...process.env, BENCH_METHOD: o.request.method, BENCH_BODY_SIZE: String(o.request.bodySize) }
  const child = startChild('wrk', args, { name: 'wrk', cpus: o.cpus, stdout: 'pipe', env })
  let stdout = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (s) => {
    stdout += s
  })
  const timer = setTimeout(() => stopChild(child, 1000), (seconds + 30) * 1000)
  const [code] = await new Promise((resolve) => child.on('close', (...a) => resolve(a)))
  clearTimeout(timer)
  const line = /^BENCH_JSON (.*)$/m.exec(stdout)
  if (code !== 0 || !line) {
    const why = `${child.entry?.stderrTail ?? ''}${stdout}`.trim().split('\n').slice(-3).join(' | ')
    throw new Error(`wrk failed (exit ${code}): ${why}`)
  }
  const j = JSON.parse(line[1])
  const parsed = parseWrkLatency(stdout)
  const durationS = j.duration_us / 1e6
  const ok = j.requests - j.status
  return {
    loadgen: 'wrk',
    durationS,
    ok,
    requests: j.requests,
    rps: ok / durationS,
    // p50/p99 from wrk's --latency text, p99.9 from the Lua done() hook (wrk does not print it)
    p50: parsed.percentiles['50'] ?? j.p50_us / 1000,
    p99: parsed.percentiles['99'] ?? j.p99_us / 1000,
    p999: j.p999_us / 1000,
    max: j.max_us / 1000,
    errors: j.connect + j.read + j.write + j.status + j.timeout,
    errorDetail: {
      connect: j.connect,
      read: j.read,
      write: j.write,
      non2xx3xx: j.status,
      timeouts: j.timeout,
    },
    wrkRps: parsed.rps,
  }
}

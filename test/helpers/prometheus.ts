// A real Prometheus server (Debian's `prometheus` package, /usr/bin/prometheus) for tests: temporary
// storage, loopback only, scraping the given targets' /metrics every second. `available` is false
// when the binary is missing, so a test can skip with a clear reason instead of failing.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Test } from 'tap'
import { request } from 'undici'
import { freePort } from './upstream.js'

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus'
export const prometheusAvailable = existsSync(PROMETHEUS_BIN)

export interface PrometheusServer {
  url: string
  /** Runs an instant query; the parsed `data` of a successful answer (throws on any other). */
  query(q: string): Promise<{ resultType: string; result: unknown }>
  /** The process's exit code: null while it runs. */
  readonly exitCode: number | null
  /** The end of what it wrote to stderr. */
  readonly stderr: string
}

/** Starts Prometheus scraping `targets` (host:port) at 1 s; stopped in the test's teardown. */
export async function startPrometheus(
  t: Test,
  targets: string[],
  opts: { scrapeInterval?: string; metricsPath?: string } = {},
): Promise<PrometheusServer> {
  const dir = t.testdir({})
  const config = join(dir, 'prometheus.yml')
  const interval = opts.scrapeInterval ?? '1s'
  await writeFile(
    config,
    `global:
  scrape_interval: ${interval}
  evaluation_interval: ${interval}
scrape_configs:
  - job_name: turnout
    metrics_path: ${opts.metricsPath ?? '/metrics'}
    static_configs:
      - targets: [${targets.map((x) => `'${x}'`).join(', ')}]
`,
  )
  const port = await freePort()
  const child = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4000)
  })
  const exited = once(child, 'exit')
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${stderr}`)
    try {
      const res = await request(`${url}/-/ready`)
      await res.body.dump()
      if (res.statusCode === 200) break
    } catch {}
    if (Date.now() > deadline) throw new Error(`prometheus did not become ready: ${stderr}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    url,
    async query(q) {
      const res = await request(`${url}/api/v1/query?query=${encodeURIComponent(q)}`)
      const body = (await res.body.json()) as {
        status: string
        data?: { resultType: string; result: unknown }
      }
      if (body.status !== 'success' || body.data === undefined) {
        throw new Error(`query ${q}: ${JSON.stringify(body)}`)
      }
      return body.data
    },
    get exitCode() {
      return child.exitCode
    },
    get stderr() {
      return stderr
    },
  }
}

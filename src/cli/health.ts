// `turnout health [--config FILE]`: the container health check. Reads the same config file the
// proxy runs with (--config, else TURNOUT_CONFIG), asks GET /healthz on its admin.listen (a wildcard
// bind is asked on loopback) and sends admin.token when admin.protectHealth is on.
// Exit 0 healthy, 1 not (or no answer within --timeout ms, default 2000), 2 bad usage.
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { loadConfigFile } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { parseHostPort } from '../net/address.js'

export interface HealthIo {
  out: (text: string) => void
  err: (text: string) => void
  env: NodeJS.ProcessEnv
}

export class HealthUsage extends Error {}

/** The URL of the health endpoint for a config's admin listener. */
export function healthUrl(config: Config): string {
  const { host, port } = parseHostPort(config.admin.listen)
  const ask = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  return `http://${ask.includes(':') ? `[${ask}]` : ask}:${port}/healthz`
}

export async function health(argv: string[], io: HealthIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, timeout: { type: 'string' } },
  })
  if (positionals.length > 0) throw new HealthUsage(`health takes no arguments (got ${positionals[0]})`)
  const file = values.config ?? io.env.TURNOUT_CONFIG
  if (!file) throw new HealthUsage('health needs the config: --config FILE (or TURNOUT_CONFIG)')
  const timeout = Number(values.timeout ?? 2000)
  if (!Number.isInteger(timeout) || timeout <= 0) {
    throw new HealthUsage(`--timeout ${values.timeout}: a whole number of milliseconds above 0`)
  }
  const config = await loadConfigFile(file, io.env)
  const url = healthUrl(config)
  const headers: Record<string, string> = {}
  if (config.admin.protectHealth && config.admin.token) headers.authorization = `Bearer ${config.admin.token}`
  try {
    const res = await request(url, { headers, headersTimeout: timeout, bodyTimeout: timeout })
    await res.body.dump()
    if (res.statusCode === 200) {
      io.out(`healthy: ${url}`)
      return 0
    }
    io.err(`unhealthy: ${url} answered ${res.statusCode}`)
  } catch (err) {
    io.err(`unhealthy: ${url}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  return 1
}

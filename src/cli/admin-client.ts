// The CLI over the admin API: `turnout status [--json]`, `turnout set-weight ROUTE N`,
// `turnout rollout start|pause|resume|promote|abort ROUTE`, each with `--admin URL` and `--token`
// (or TURNOUT_ADMIN, TURNOUT_TOKEN). Exit codes: 0 ok, 1 the API refused or is unreachable, 2 bad usage.
import { parseArgs } from 'node:util'
import { request } from 'undici'
import type { RouteView } from '../admin/api.js'
import { ROLLOUT_ACTIONS } from '../admin/api.js'

export const DEFAULT_ADMIN = 'http://127.0.0.1:9901'

export interface ClientIo {
  out: (text: string) => void
  err: (text: string) => void
  env: NodeJS.ProcessEnv
}

export const ADMIN_COMMANDS = ['status', 'set-weight', 'rollout'] as const
export type AdminCommand = (typeof ADMIN_COMMANDS)[number]

class Usage extends Error {}
class Failed extends Error {}

/** Runs one admin command; returns the exit code. */
export async function adminCommand(command: AdminCommand, argv: string[], io: ClientIo): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        admin: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean' },
      },
    })
    const client = new AdminClient(
      adminUrl(values.admin ?? io.env.TURNOUT_ADMIN ?? DEFAULT_ADMIN),
      values.token ?? io.env.TURNOUT_TOKEN ?? null,
    )
    if (values.json && command !== 'status') throw new Usage('--json only goes with status')
    switch (command) {
      case 'status': {
        if (positionals.length > 0) throw new Usage('status takes no arguments')
        const body = (await client.call('GET', '/api/routes')) as { routes: RouteView[] }
        io.out(values.json ? JSON.stringify(body, null, 2) : statusTable(body.routes))
        return 0
      }
      case 'set-weight': {
        if (positionals.length !== 2) throw new Usage('set-weight needs ROUTE and a weight from 0 to 100')
        const [route, raw] = positionals as [string, string]
        const weight = Number(raw.replace(/%$/, ''))
        if (raw.trim() === '' || !Number.isFinite(weight) || weight < 0 || weight > 100) {
          throw new Usage(`set-weight ${route} ${raw}: the weight must be a number from 0 to 100`)
        }
        const view = (await client.call('PUT', `/api/routes/${encodeURIComponent(route)}/weight`, {
          canary: weight,
        })) as RouteView
        io.out(describe(view))
        return 0
      }
      case 'rollout': {
        const [action, route, ...extra] = positionals
        if (
          !action ||
          !(ROLLOUT_ACTIONS as readonly string[]).includes(action) ||
          !route ||
          extra.length > 0
        ) {
          throw new Usage(`rollout needs an action (${ROLLOUT_ACTIONS.join('|')}) and a ROUTE`)
        }
        const view = (await client.call(
          'POST',
          `/api/routes/${encodeURIComponent(route)}/rollout/${action}`,
        )) as RouteView
        io.out(describe(view))
        return 0
      }
    }
  } catch (err) {
    if (err instanceof Usage || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`turnout: ${(err as Error).message}\nRun 'turnout --help' for usage.`)
      return 2
    }
    if (err instanceof Failed) {
      io.err(`turnout: ${err.message}`)
      return 1
    }
    throw err
  }
}

/** `127.0.0.1:9901`, `:9901` and `9901` are accepted for http://127.0.0.1:9901. */
function adminUrl(raw: string): URL {
  let text = raw.trim()
  if (/^:?\d+$/.test(text)) text = `127.0.0.1:${text.replace(/^:/, '')}`
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = `http://${text}`
  try {
    const u = new URL(text)
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme')
    return u
  } catch {
    throw new Usage(`--admin ${raw}: expected the admin listener's URL, like ${DEFAULT_ADMIN}`)
  }
}

class AdminClient {
  constructor(
    readonly base: URL,
    readonly token: string | null,
  ) {}

  async call(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const url = new URL(path, this.base)
    const headers: Record<string, string> = { accept: 'application/json' }
    if (this.token) headers.authorization = `Bearer ${this.token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    let status: number
    let text: string
    try {
      const res = await request(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      })
      status = res.statusCode
      text = await res.body.text()
    } catch (err) {
      const e = err as Error & { code?: string }
      throw new Failed(
        `cannot reach the admin API at ${this.base.origin} (${e.code ?? e.message}): is Turnout running? ` +
          'Point --admin (or TURNOUT_ADMIN) at its admin listener.',
      )
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      throw new Failed(
        `the admin API at ${this.base.origin} answered ${status} with something other than JSON`,
      )
    }
    if (status === 401) {
      throw new Failed(
        `the admin API refused the request (401): ${this.token ? 'wrong' : 'missing'} token; pass --token or set TURNOUT_TOKEN`,
      )
    }
    if (status < 200 || status >= 300) {
      const e = json as { error?: string; field?: string }
      throw new Failed(
        `${e.error ?? `HTTP ${status}`}${e.field ? ` (field: ${e.field})` : ''} [HTTP ${status}]`,
      )
    }
    return json
  }
}

/** One line per route under `ROUTE  WEIGHT  PHASE  STEP`. */
export function statusTable(routes: readonly RouteView[]): string {
  const rows = [
    ['ROUTE', 'WEIGHT', 'PHASE', 'STEP'],
    ...routes.map((r) => [
      r.name,
      `${r.split.canary}%`,
      r.rollout?.phase ?? '-',
      r.rollout ? String(r.rollout.step) : '-',
    ]),
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

function describe(view: RouteView): string {
  const r = view.rollout
  const head = `route ${view.name}: canary weight ${view.split.canary}%`
  return r ? `${head}, rollout ${r.phase} at step ${r.step} (${r.reason})` : head
}

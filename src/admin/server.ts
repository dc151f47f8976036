// The admin listener: health, readiness, and a small JSON router that other concerns register on
// (telemetry adds /metrics, the control plane adds /api/...). With admin.token set, every /api call
// needs `Authorization: Bearer <token>` (constant-time compare); /healthz, /readyz and /metrics stay
// open unless admin.protectHealth / admin.protectMetrics say otherwise.

import { timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import { TurnoutError } from '../core/errors.js'
import { reply } from '../core/reply.js'

export interface AdminRequest {
  req: IncomingMessage
  res: ServerResponse
  /** Path parameters captured from `:name` segments. */
  params: Record<string, string>
  /** Parsed JSON body for methods with a body; undefined when empty. */
  body: unknown
  url: URL
}

export type AdminHandler = (r: AdminRequest) => void | Promise<void>

/** An admin API call Turnout refuses; answered with `status` and `{"error": message}`. */
export class AdminError extends TurnoutError {
  constructor(
    status: number,
    message: string,
    readonly field?: string,
  ) {
    super('TURNOUT_ERR_ADMIN', message, status)
  }
}

interface Route {
  /** An HTTP method, or '*' for any (prefix routes). */
  method: string
  parts: string[]
  handler: AdminHandler
}

interface Found {
  route: Route
  params: Record<string, string>
}

export interface AdminOptions {
  token: string | null
  protectHealth: boolean
  protectMetrics: boolean
  logger: Logger
  ready: () => boolean
}

const MAX_BODY = 64 * 1024

export class AdminServer {
  readonly server: Server
  readonly #routes: Route[] = []
  readonly #prefixes: Route[] = []
  #token: Buffer | null

  constructor(readonly opts: AdminOptions) {
    this.#token = opts.token === null ? null : Buffer.from(opts.token)
    this.server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
      this.#handle(req, res).catch((err) => {
        opts.logger.error({ err: (err as Error).message }, 'admin handler failed')
        if (!res.headersSent) sendJson(res, 500, { error: 'internal_error' })
        else res.destroy()
      })
    })
    this.server.on('clientError', (_err, socket) => socket.destroy())
    this.route('GET', '/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }))
    this.route('GET', '/readyz', ({ res }) =>
      opts.ready() ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'draining' }),
    )
  }

  setToken(token: string | null): void {
    this.#token = token === null ? null : Buffer.from(token)
  }

  /** Registers a handler; `:name` segments become params. */
  route(method: string, pattern: string, handler: AdminHandler): void {
    this.#routes.push({ method, parts: pattern.split('/').filter(Boolean), handler })
  }

  /**
   * Registers a handler for every path under `prefix` (whole segments: `/api` matches `/api` and
   * `/api/x/y`, not `/apix`), for `method` or, with '*', any method. Exact routes match first.
   */
  prefix(method: string, prefix: string, handler: AdminHandler): void {
    this.#prefixes.push({ method, parts: prefix.split('/').filter(Boolean), handler })
  }

  #authorized(req: IncomingMessage): boolean {
    if (this.#token === null) return true
    const header = req.headers.authorization ?? ''
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '')
    // Compare in constant time; a length mismatch still costs one comparison of equal length.
    const ok = given.length === this.#token.length && timingSafeEqual(given, this.#token)
    if (!ok && given.length !== this.#token.length) timingSafeEqual(this.#token, this.#token)
    return ok
  }

  #needsAuth(path: string): boolean {
    if (path === '/healthz' || path === '/readyz') return this.opts.protectHealth
    if (path === '/metrics') return this.opts.protectMetrics
    return true
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin')
    if (this.#needsAuth(url.pathname) && !this.#authorized(req)) {
      this.opts.logger.warn(
        { method: req.method, path: url.pathname, client: req.socket.remoteAddress },
        'admin request refused: missing or wrong token',
      )
      sendJson(res, 401, { error: 'unauthorized', message: 'missing or wrong bearer token' }, [
        'www-authenticate',
        'Bearer',
      ])
      return
    }
    const segments = decodeSegments(url.pathname)
    if (segments === null) {
      sendJson(res, 400, {
        error: 'bad_request',
        message: 'the path has a malformed percent-encoding',
        path: url.pathname,
      })
      return
    }
    const found = this.#find(req.method ?? 'GET', segments)
    if (found === 'method') return sendJson(res, 405, { error: 'method not allowed' })
    if (found === null) return sendJson(res, 404, { error: 'not found', path: url.pathname })
    try {
      const body = await readJsonBody(req)
      await found.route.handler({ req, res, params: found.params, body, url })
    } catch (err) {
      if (!(err instanceof AdminError)) throw err
      sendJson(res, err.status, { error: err.message, ...(err.field ? { field: err.field } : {}) })
    }
  }

  /** The exact route first, then the first prefix route; 'method' when only the method did not match. */
  #find(method: string, segments: string[]): Found | 'method' | null {
    let pathMatched = false
    for (const route of this.#routes) {
      const params = matchParts(route.parts, segments)
      if (params === null) continue
      pathMatched = true
      if (methodMatches(route.method, method)) return { route, params }
    }
    for (const route of this.#prefixes) {
      const params = matchParts(route.parts, segments.slice(0, route.parts.length))
      if (params === null) continue
      pathMatched = true
      if (methodMatches(route.method, method)) return { route, params }
    }
    return pathMatched ? 'method' : null
  }
}

function methodMatches(routeMethod: string, method: string): boolean {
  return routeMethod === '*' || routeMethod === method || (routeMethod === 'GET' && method === 'HEAD')
}

/** The path's segments, percent-decoded; null when an escape is malformed (`%E0%A4%A`, `%zz`). */
function decodeSegments(pathname: string): string[] | null {
  try {
    return pathname.split('/').filter(Boolean).map(decodeURIComponent)
  } catch {
    return null
  }
}

function matchParts(parts: string[], segments: string[]): Record<string, string> | null {
  if (parts.length !== segments.length) return null
  const params: Record<string, string> = {}
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!
    if (p.startsWith(':')) params[p.slice(1)] = segments[i]!
    else if (p !== segments[i]) return null
  }
  return params
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  if (req.method === 'GET' || req.method === 'HEAD') return undefined
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new AdminError(413, 'body too large')
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return undefined
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (err) {
    throw new AdminError(400, `malformed JSON body: ${(err as Error).message}`, 'body')
  }
}

/** The admin API's JSON answer (through the one local-answer writer, with a trailing newline). */
export function sendJson(res: ServerResponse, status: number, body: unknown, extra: string[] = []): void {
  reply(res, status, body, extra, true)
}

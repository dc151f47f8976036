// The proxy listener's node:http server: its options from `limits`, the request handler behind a
// last-resort guard, and the connection-level parts (connection limit, custom methods, client
// errors, CONNECT, upgrades). New listeners (TLS, HTTP/2) plug into the same handlers.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Config } from '../config/schema.js'
import type { Observer } from '../core/pipeline.js'
import { reply } from '../core/reply.js'
import type { RefusalKind } from '../proxy/admit.js'
import { createRequestHandler } from '../proxy/handle.js'
import { createUpgradeHandler, type UpgradeHandler } from '../proxy/upgrade.js'
import type { TableHolder } from '../routing/holder.js'
import type { LogLine } from '../telemetry/failure-log.js'
import type { Logger } from '../telemetry/logger.js'
import type { Metrics } from '../telemetry/metrics.js'
import { createClientErrorHandler } from './client-errors.js'
import { limitConnections } from './connection-limit.js'
import { customMethods, isInjected } from './custom-methods.js'
import { TrackedResponse } from './open-responses.js'
import { refuseConnect } from './protocol-guards.js'

const DEFAULT_HEADERS_TIMEOUT = 10_000
const DEFAULT_REQUEST_TIMEOUT = 300_000

/** Node refuses headersTimeout > requestTimeout; a config that sets one of them still starts. */
export function clientTimeouts(limits: Config['limits']): { headersTimeout: number; requestTimeout: number } {
  const requestTimeout =
    limits.requestTimeout ?? Math.max(DEFAULT_REQUEST_TIMEOUT, limits.headersTimeout ?? 0)
  const headersTimeout = limits.headersTimeout ?? Math.min(DEFAULT_HEADERS_TIMEOUT, requestTimeout)
  return { headersTimeout, requestTimeout }
}

export interface ProxyServerDeps {
  config: Config
  holder: TableHolder
  observer: Observer
  metrics: Metrics
  logger: Logger
  /** The rate-limited warn line for requests refused because of the client. */
  clientErrorLine: LogLine
  draining: () => boolean
}

export interface ProxyServer {
  server: Server
  /** Open upgrade tunnels (cut at the end of a drain). */
  upgrades: UpgradeHandler
}

export function createProxyServer(deps: ProxyServerDeps): ProxyServer {
  const { config, metrics, logger } = deps
  const limits = config.limits
  const refused = (kind: RefusalKind, req: IncomingMessage, detail: string) => {
    metrics.clientError(kind)
    deps.clientErrorLine(
      { client: req.socket.remoteAddress, method: req.method, path: req.url, kind, err: detail },
      'bad client request',
    )
  }
  const { headersTimeout, requestTimeout } = clientTimeouts(limits)
  const handler = createRequestHandler({
    holder: deps.holder,
    observer: deps.observer,
    trustForwarded: config.trustForwardedHeaders,
    maxBodySize: limits.maxBodySize ?? null,
    bodyIdleTimeout: limits.bodyIdleTimeout,
    draining: deps.draining,
    refused,
  })
  const server = createServer(
    {
      headersTimeout,
      requestTimeout,
      keepAliveTimeout: limits.keepAliveTimeout,
      // How often Node checks headersTimeout/requestTimeout (its default, 30 s, lets slow clients linger).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 4))),
      maxHeaderSize: limits.maxHeaderSize,
      insecureHTTPParser: false,
      joinDuplicateHeaders: false,
      ServerResponse: TrackedResponse as unknown as typeof ServerResponse,
    },
    guardRequests(handler, logger),
  )
  limitConnections(
    server,
    () => limits.maxConnections,
    (socket) => {
      metrics.connectionRejected()
      logger.warn(
        { client: socket.remoteAddress, maxConnections: limits.maxConnections },
        'connection refused: overloaded',
      )
    },
    isInjected,
  )
  const methods = customMethods(server)
  server.on('connection', methods.onConnection)
  const upgrades = createUpgradeHandler({
    holder: deps.holder,
    observer: deps.observer,
    trustForwarded: config.trustForwardedHeaders,
    refused,
  })
  server.on('upgrade', guardUpgrades(upgrades, logger))
  server.on(
    'clientError',
    createClientErrorHandler({ metrics, logger, warn: deps.clientErrorLine, takeOver: methods.takeOver }),
  )
  server.on(
    'connect',
    refuseConnect((kind) => metrics.clientError(kind)),
  )
  return { server, upgrades }
}

/**
 * The last line of defence: a bug that throws inside the request path answers that one request with
 * a 500 and a log line instead of taking the process (and every other connection) down.
 */
function guardRequests(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  logger: Logger,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    try {
      handle(req, res)
    } catch (err) {
      logger.error(
        { err: (err as Error).stack ?? String(err), method: req.method, path: req.url },
        'internal error',
      )
      if (!res.headersSent) {
        res.shouldKeepAlive = false
        reply(res, 500, { error: 'internal_error' }, ['connection', 'close'])
      } else {
        res.destroy()
      }
    }
  }
}

function guardUpgrades(upgrades: UpgradeHandler, logger: Logger) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    try {
      upgrades(req, socket, head)
    } catch (err) {
      logger.error(
        { err: (err as Error).stack ?? String(err), path: req.url },
        'internal error in an upgrade',
      )
      socket.destroy()
    }
  }
}

// Wires one Turnout instance: config → compiled table → listeners, with telemetry and the admin
// listener around it. Everything that changes at runtime goes through `holder.swap()`.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { mountRoutesApi } from './admin/api.js'
import { AdminServer } from './admin/server.js'
import { assertAdminToken } from './admin/token-rule.js'
import { compile } from './config/compile.js'
import { ConfigError, formatProblem, loadConfigFile } from './config/load.js'
import type { Config, RouteConfig } from './config/schema.js'
import { type ConfigWatcher, watchConfigFile } from './config/watch.js'
import { Mirror } from './mirror/index.js'
import { formatAddress, parseHostPort } from './proxy/address.js'
import { combineObservers } from './proxy/context.js'
import { createRequestHandler } from './proxy/handle.js'
import { createUpgradeHandler } from './proxy/upgrade.js'
import { RolloutManager } from './rollout/controller.js'
import { compileFaults } from './routing/faults.js'
import { TableHolder } from './routing/holder.js'
import type { RouteTable } from './routing/table.js'
import { rateLimitedWarn } from './telemetry/failure-log.js'
import { createTelemetry } from './telemetry/index.js'
import { createLogger, flushLogger, type Logger } from './telemetry/logger.js'
import type { ClientErrorKind, Metrics } from './telemetry/metrics.js'
import { HealthRegistry } from './upstream/health.js'
import { HealthChecker } from './upstream/health-check.js'
import { Pools } from './upstream/pools.js'

export interface TurnoutOptions {
  config: Config
  /** Where the config came from; reload() re-reads it. */
  configFile?: string
  logger?: Logger
  /** Watch configFile and reload on change (default true when configFile is set); debounce in ms. */
  watch?: boolean | { debounceMs: number }
  /** Environment for OTEL_* tracing settings (default process.env). */
  env?: NodeJS.ProcessEnv
  /** Bind admin.listen (default true). Cluster workers pass false: the cluster primary owns it. */
  adminListener?: boolean
  /** Applied to the config at start and to every reloaded one (cluster workers adjust theirs). */
  prepare?: (config: Config) => Config
  /** Bind the proxy listener with SO_REUSEPORT, exclusively (cluster workers, where Node supports it). */
  reusePort?: boolean
}

export interface Turnout {
  readonly config: Config
  readonly holder: TableHolder
  readonly admin: AdminServer
  readonly logger: Logger
  /** `http://127.0.0.1:PORT` of the proxy listener. */
  readonly url: string
  readonly adminUrl: string
  readonly proxyAddress: AddressInfo
  readonly adminAddress: AddressInfo
  /** Every route's rollout controller (admin API, CLI, demo). */
  readonly rollouts: RolloutManager
  /** The recording handle (a TurnoutMetrics, whose registry cluster workers report, when enabled). */
  readonly metrics: Metrics
  /** Re-reads the config file, validates and swaps it in; throws ConfigError and changes nothing if invalid. */
  reload(): Promise<void>
  /** Applies an already validated config. */
  apply(config: Config): void
  /** Graceful stop: stop accepting, finish in-flight requests (bounded by drainTimeout), close. */
  close(): Promise<void>
}

const CLIENT_ERROR_STATUS: Record<ClientErrorKind, [number, string]> = {
  bad_request: [400, 'Bad Request'],
  headers_too_large: [431, 'Request Header Fields Too Large'],
  request_timeout: [408, 'Request Timeout'],
  not_implemented: [501, 'Not Implemented'],
  version_not_supported: [505, 'HTTP Version Not Supported'],
}

const DEFAULT_HEADERS_TIMEOUT = 10_000
const DEFAULT_REQUEST_TIMEOUT = 300_000

/** Node refuses headersTimeout > requestTimeout; a config that sets one of them still starts. */
export function clientTimeouts(limits: Config['limits']): { headersTimeout: number; requestTimeout: number } {
  const requestTimeout =
    limits.requestTimeout ?? Math.max(DEFAULT_REQUEST_TIMEOUT, limits.headersTimeout ?? 0)
  const headersTimeout = limits.headersTimeout ?? Math.min(DEFAULT_HEADERS_TIMEOUT, requestTimeout)
  return { headersTimeout, requestTimeout }
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
        res.writeHead(500, { 'content-type': 'application/json', connection: 'close' })
        res.end('{"error":"internal_error"}')
      } else {
        res.destroy()
      }
    }
  }
}

/** Active health checks for the live table, following every swap; transitions are logged. */
function startHealthChecks(holder: TableHolder, logger: Logger): HealthChecker {
  const checker = new HealthChecker({
    changed: (h, down) => {
      const where = { route: h.route, variant: h.variant, endpoint: h.url }
      if (down) logger.warn(where, 'endpoint down: health checks failing')
      else logger.info(where, 'endpoint up again: health checks passing')
    },
  })
  checker.sync(holder.current.routes)
  holder.onSwap((next) => checker.sync(next.routes))
  return checker
}

export async function startTurnout(opts: TurnoutOptions): Promise<Turnout> {
  const prepare = opts.prepare ?? ((c: Config) => c)
  let config = prepare(opts.config)
  const logger = opts.logger ?? createLogger()
  assertAdminToken(config, opts.configFile ?? '<config>')

  const pools = new Pools()
  // Endpoint health (ejections, active checks, in flight) outlives every table, like the pools.
  const health = new HealthRegistry()
  // The weight gauge reads the live table at scrape time (holder is assigned below, before any scrape).
  const telemetry = createTelemetry(config, logger, { table: () => holder.current, env: opts.env, health })
  const mirror = new Mirror({
    recorder: telemetry.mirrorRecorder,
    trustForwarded: config.trustForwardedHeaders,
    onInternalError: (err) => logger.warn({ err: (err as Error).message }, 'mirror internal error'),
  })
  const compileTable = (c: Config, previous?: RouteTable): RouteTable =>
    compile(c, {
      pools,
      health,
      // A reload keeps a weight changed at runtime unless the config changed that route's weight.
      weightFor: previous
        ? (r: RouteConfig) => {
            const old = previous.byName.get(r.name)
            return old && old.config.split.canary === r.split.canary ? old.weight.canary : r.split.canary
          }
        : undefined,
      phases: { faults: compileFaults, mirror: mirror.phase },
    })
  const holder = new TableHolder(compileTable(config))
  const checker = startHealthChecks(holder, logger)
  // Rollouts keep their own per-route state across table swaps and feed on every finished request.
  const metrics: Metrics = telemetry.metrics
  const rollouts = new RolloutManager({ holder, logger, metrics })
  const configReloaded = (result: 'success' | 'error') => metrics.configReload(result)
  const observer = combineObservers([telemetry.observer, rollouts.observer])

  const clientErrorLine = rateLimitedWarn(logger, metrics, 'client_error')
  let draining = false
  let ready = false
  const limits = config.limits
  const { headersTimeout, requestTimeout } = clientTimeouts(limits)
  const proxy: Server = createServer(
    {
      headersTimeout,
      requestTimeout,
      keepAliveTimeout: limits.keepAliveTimeout,
      // How often Node checks headersTimeout/requestTimeout (its default, 30 s, lets slow clients linger).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 4))),
      maxHeaderSize: limits.maxHeaderSize,
      insecureHTTPParser: false,
      joinDuplicateHeaders: false,
    },
    guardRequests(
      createRequestHandler({
        holder,
        observer,
        trustForwarded: config.trustForwardedHeaders,
        maxBodySize: limits.maxBodySize ?? null,
        bodyIdleTimeout: limits.bodyIdleTimeout,
        draining: () => draining,
        refused: (kind, req, detail) => {
          metrics.clientError(kind)
          clientErrorLine(
            { client: req.socket.remoteAddress, method: req.method, path: req.url, kind, err: detail },
            'bad client request',
          )
        },
      }),
      logger,
    ),
  )
  proxy.maxConnections = limits.maxConnections
  const upgrades = createUpgradeHandler({ holder, observer, trustForwarded: config.trustForwardedHeaders })
  proxy.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    try {
      upgrades(req, socket, head)
    } catch (err) {
      logger.error(
        { err: (err as Error).stack ?? String(err), path: req.url },
        'internal error in an upgrade',
      )
      socket.destroy()
    }
  })
  proxy.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const code = err.code ?? ''
    if (code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    const kind: ClientErrorKind =
      code === 'HPE_HEADER_OVERFLOW'
        ? 'headers_too_large'
        : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_TIMEOUT'
          ? 'request_timeout'
          : 'bad_request'
    const [status, reason] = CLIENT_ERROR_STATUS[kind]
    metrics.clientError(kind)
    logger.warn(
      { client: (socket as import('node:net').Socket).remoteAddress, code, status, err: err.message },
      'bad client request',
    )
    const body = JSON.stringify({ error: kind })
    // Close for real once the answer is flushed: the server's sockets are half-open by default.
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      () => socket.destroy(),
    )
  })

  const admin = new AdminServer({
    token: config.admin.token ?? null,
    protectHealth: config.admin.protectHealth,
    protectMetrics: config.admin.protectMetrics,
    logger,
    ready: () => ready && !draining,
  })
  telemetry.mount(admin)
  mirror.mount(admin, holder)
  mountRoutesApi(admin, { holder, rollouts, logger })
  // Resume rollouts from their state files before the first request.
  await rollouts.ready()

  const listen = async (server: Server, address: string, name: string): Promise<AddressInfo> => {
    const { host, port } = parseHostPort(address)
    if (name === 'proxy' && opts.reusePort) {
      // Typed locally: @types/node 20 predates the option (Node 22.12+/23.1+).
      const options: import('node:net').ListenOptions & { reusePort: boolean } = {
        port,
        host,
        exclusive: true,
        reusePort: true,
      }
      server.listen(options)
    } else server.listen(port, host)
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => {
        throw new Error(`cannot listen on ${address} for the ${name} listener: ${(err as Error).message}`)
      }),
    ])
    const info = server.address() as AddressInfo
    logger.info({ listener: name, address: formatAddress(info) }, 'listening')
    return info
  }

  let proxyAddress: AddressInfo
  let adminAddress: AddressInfo
  try {
    proxyAddress = await listen(proxy, config.listen, 'proxy')
    adminAddress =
      opts.adminListener === false
        ? { address: '', family: '', port: 0 }
        : await listen(admin.server, config.admin.listen, 'admin')
  } catch (err) {
    checker.close()
    proxy.close()
    admin.server.close()
    await pools.destroy()
    await mirror.close()
    throw err
  }
  ready = true

  let watcher: ConfigWatcher | null = null
  if (opts.configFile && opts.watch !== false) {
    const file = opts.configFile
    watcher = await watchConfigFile(file, () => void turnout.reload().catch(() => {}), {
      debounceMs: typeof opts.watch === 'object' ? opts.watch.debounceMs : undefined,
      onError: (err) => logger.warn({ file, err: err.message }, 'config file watching failed'),
    })
  }
  // One reload at a time: a file change during a reload is read after it.
  let reloading: Promise<void> = Promise.resolve()

  const hostFor = (a: AddressInfo) =>
    a.address === '0.0.0.0' || a.address === '::'
      ? '127.0.0.1'
      : a.family === 'IPv6'
        ? `[${a.address}]`
        : a.address

  let closing: Promise<void> | null = null
  const turnout: Turnout = {
    get config() {
      return config
    },
    holder,
    admin,
    logger,
    url: `http://${hostFor(proxyAddress)}:${proxyAddress.port}`,
    adminUrl: opts.adminListener === false ? '' : `http://${hostFor(adminAddress)}:${adminAddress.port}`,
    proxyAddress,
    adminAddress,
    rollouts,
    metrics,
    apply(next: Config) {
      holder.swap(compileTable(next, holder.current))
      config = next
    },
    reload() {
      const run = async () => {
        if (!opts.configFile) throw new Error('no config file to reload')
        try {
          const next = prepare(await loadConfigFile(opts.configFile))
          // The admin listener is not restarted: a token it needs cannot be removed by a reload.
          if (opts.adminListener !== false) assertAdminToken(next, opts.configFile, adminAddress)
          for (const key of ['listen', 'admin.listen'] as const) {
            const [was, now] =
              key === 'listen' ? [config.listen, next.listen] : [config.admin.listen, next.admin.listen]
            if (was !== now)
              logger.warn({ [key]: now, current: was }, `${key} changes take effect at restart`)
          }
          turnout.apply(next)
          admin.setToken(next.admin.token ?? null)
          configReloaded('success')
          logger.info({ file: opts.configFile, routes: next.routes.length }, 'config reloaded')
        } catch (err) {
          configReloaded('error')
          if (err instanceof ConfigError) {
            for (const p of err.problems)
              logger.error({ problem: formatProblem(p) }, 'config reload rejected')
          } else {
            logger.error({ err: (err as Error).message }, 'config reload failed')
          }
          throw err
        }
      }
      const result = reloading.then(run)
      reloading = result.catch(() => {})
      return result
    },
    close() {
      closing ??= (async () => {
        draining = true
        watcher?.close()
        checker.close()
        logger.info({ drainTimeout: config.shutdown.drainTimeout }, 'draining')
        const closed = once(proxy, 'close')
        proxy.close()
        proxy.closeIdleConnections()
        // Connections that finish their last response while draining become idle: close them too.
        const sweep = setInterval(() => proxy.closeIdleConnections(), 250)
        // Tunnels (WebSockets) have no request boundary to drain at: they get the drain period, then are cut.
        const deadline = setTimeout(() => {
          proxy.closeAllConnections()
          for (const socket of upgrades.open) socket.destroy()
        }, config.shutdown.drainTimeout)
        await closed
        clearInterval(sweep)
        clearTimeout(deadline)
        admin.server.close()
        admin.server.closeAllConnections()
        await rollouts.close()
        await pools.close()
        await mirror.close()
        await telemetry.shutdown()
        logger.info('stopped')
        await flushLogger(logger)
      })()
      return closing
    },
  }
  return turnout
}
